import type { Mark } from './state';

/** How many events a mark counts for. */
export function weightOf(mark: Mark): number {
  return mark[2] ?? 1;
}

/**
 * Adds `mark` to a sliding window and answers how many events (marks by weight) fall in the window
 * that ends at it. Marks stay sorted by time, a position already present is not counted twice, and
 * only the newest marks inside the window that together count `max + 1` are kept — enough to know
 * "more than max", bounded per key (at most max + 1 marks).
 */
export function slide(
  marks: readonly Mark[],
  mark: Mark,
  max: number,
  windowSeconds: number,
): { marks: Mark[]; count: number; duplicate: boolean } {
  if (marks.some((m) => m[1] === mark[1])) return { marks: [...marks], count: countIn(marks, mark[0], windowSeconds), duplicate: true };
  const next = [...marks, mark].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const newest = next[next.length - 1][0];
  const inWindow = next.filter((m) => m[0] > newest - windowSeconds * 1000);
  let from = inWindow.length;
  for (let sum = 0; from > 0 && sum < max + 1; ) sum += weightOf(inWindow[--from]);
  const kept = inWindow.slice(from);
  return { marks: kept, count: countIn(kept, mark[0], windowSeconds), duplicate: false };
}

/** Events (marks by weight) in (at - window, at]. */
export function countIn(marks: readonly Mark[], at: number, windowSeconds: number): number {
  return marks.filter((m) => m[0] <= at && m[0] > at - windowSeconds * 1000).reduce((n, m) => n + weightOf(m), 0);
}

/** A rule that fired at `firedAt` stays quiet for one window, so a sustained burst is one anomaly. */
export function quiet(firedAt: number | undefined, at: number, windowSeconds: number): boolean {
  return firedAt !== undefined && at - firedAt < windowSeconds * 1000;
}
