/**
 * A progress line on stderr for long jobs: bar, percentage, counts, rate and ETA. Redrawn in place
 * on a terminal (at most 10 times a second); on a pipe or file, one plain line per 10 %.
 */
export class ProgressBar {
  private readonly started = Date.now();
  private lastDraw = 0;
  private lastDecile = -1;

  constructor(
    private readonly label: string,
    private readonly unit = 'events',
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  update(done: number, total: number): void {
    const now = Date.now();
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    if (this.stream.isTTY) {
      if (now - this.lastDraw < 100 && done < total) return;
      this.lastDraw = now;
      this.stream.write(`\r${this.line(done, total, fraction, now)}\x1b[K`);
    } else {
      const decile = Math.floor(fraction * 10);
      if (decile === this.lastDecile) return;
      this.lastDecile = decile;
      this.stream.write(`${this.line(done, total, fraction, now)}\n`);
    }
  }

  finish(done: number): void {
    const seconds = (Date.now() - this.started) / 1000;
    if (this.stream.isTTY) this.stream.write('\n');
    this.stream.write(`${this.label}: ${done.toLocaleString('en-US')} ${this.unit} in ${seconds.toFixed(1)} s (${rate(done, seconds)} ${this.unit}/s)\n`);
  }

  private line(done: number, total: number, fraction: number, now: number): string {
    const width = 24;
    const filled = Math.round(fraction * width);
    const seconds = (now - this.started) / 1000;
    const perSecond = seconds > 0 ? done / seconds : 0;
    const eta = perSecond > 0 ? Math.ceil((total - done) / perSecond) : 0;
    return `${this.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} ${this.unit} · ${rate(done, seconds)}/s · ETA ${eta}s`;
  }
}

function rate(done: number, seconds: number): string {
  return seconds > 0 ? Math.round(done / seconds).toLocaleString('en-US') : '–';
}
