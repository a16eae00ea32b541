import type { Writable } from 'node:stream';

export type OutStream = Writable & { isTTY?: boolean; columns?: number };

/**
 * A progress bar on stderr for long replays and verifications: percentage, count, events/s and
 * ETA. Redrawn in place (at most 10 times a second) on a terminal; with --progress on anything
 * else, one plain line every 2 seconds. Disabled, it costs nothing.
 */
export class ProgressBar {
  private readonly started = Date.now();
  private lastDraw = 0;
  private drawn = false;
  private done = 0;

  constructor(
    private readonly out: OutStream,
    readonly enabled: boolean,
    private readonly label: string,
    /** Expected count (events); 0 when unknown. */
    private total: number,
  ) {}

  static wanted(stderr: OutStream, forced: boolean): boolean {
    return forced || stderr.isTTY === true;
  }

  setTotal(total: number): void {
    this.total = total;
  }

  /** `done` events so far; `fraction` overrides done/total when the total is only approximate. */
  update(done: number, fraction?: number): void {
    this.done = done;
    if (!this.enabled) return;
    const now = Date.now();
    const tty = this.out.isTTY === true;
    if (now - this.lastDraw < (tty ? 100 : 2000)) return;
    this.lastDraw = now;
    this.draw(fraction, false);
  }

  finish(): void {
    if (!this.enabled) return;
    this.draw(1, true);
  }

  private draw(fraction: number | undefined, final: boolean): void {
    const elapsed = Math.max(0.001, (Date.now() - this.started) / 1000);
    const rate = this.done / elapsed;
    const f = Math.min(1, Math.max(0, fraction ?? (this.total > 0 ? this.done / this.total : 0)));
    const known = this.total > 0 || fraction !== undefined;
    const eta = known && rate > 0 && f > 0 ? elapsed * (1 - f) / f : undefined;
    const width = 24;
    const filled = Math.round(f * width);
    const bar = known ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(f * 100).toFixed(1).padStart(5)}% ` : '';
    const count = this.total > 0 ? `${fmt(this.done)}/${fmt(this.total)}` : fmt(this.done);
    const tail = final ? `in ${duration(elapsed)}` : `ETA ${eta === undefined ? '?' : duration(eta)}`;
    const line = `${this.label} ${bar}${count} events  ${fmt(Math.round(rate))} events/s  ${tail}`;
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
      this.drawn = !final;
    } else {
      this.out.write(`${line}\n`);
    }
  }

  /** Clears an unfinished bar line (before an error message). */
  clear(): void {
    if (this.drawn && this.out.isTTY) this.out.write('\r\x1b[2K');
    this.drawn = false;
  }
}

export function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

function duration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}
