/**
 * Progress and log lines on stderr for the bench drivers: a progress line redrawn in place on a
 * terminal (one line every 5 s elsewhere), and log lines that never collide with it.
 */
const isTty = process.stderr.isTTY === true;
let openProgressLine = false;
let lastProgress = 0;

export function log(line: string): void {
  if (openProgressLine) {
    process.stderr.write('\n');
    openProgressLine = false;
  }
  process.stderr.write(`${line}\n`);
}

export function progress(line: string, final = false): void {
  if (isTty) {
    process.stderr.write(`\r\x1b[2K${line}`);
    openProgressLine = !final;
    if (final) process.stderr.write('\n');
    return;
  }
  const now = Date.now();
  if (final || now - lastProgress >= 5000) {
    lastProgress = now;
    process.stderr.write(`${line}\n`);
  }
}
