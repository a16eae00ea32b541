/**
 * Exact percentile of an ascending-sorted sample, nearest-rank definition: the smallest sample such
 * that at least p% of all samples are <= it (p in (0, 100]). No interpolation, no histogram
 * bucketing, so p99 of 100 samples is the 99th smallest.
 */
export function percentile(sortedAscending: ArrayLike<number>, p: number): number {
  const n = sortedAscending.length;
  if (n === 0) return Number.NaN;
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  const rank = Math.ceil((p / 100) * n); // 1-based
  return sortedAscending[Math.min(n, Math.max(1, rank)) - 1];
}

/** Growable Float64 buffer: latency samples without boxing and without per-sample allocation. */
export class SampleBuffer {
  private data = new Float64Array(4096);
  private size = 0;

  push(value: number): void {
    if (this.size === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.size++] = value;
  }

  get length(): number {
    return this.size;
  }

  /** A sorted copy (Float64Array#sort is numeric). */
  sorted(): Float64Array {
    return this.data.slice(0, this.size).sort();
  }
}

export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function summarize(samples: SampleBuffer): LatencySummary {
  const sorted = samples.sorted();
  const n = sorted.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  return {
    count: n,
    min: n ? sorted[0] : Number.NaN,
    mean: n ? sum / n : Number.NaN,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: n ? sorted[n - 1] : Number.NaN,
  };
}

/**
 * True when the last `n` windows' rates are all positive and within ±tolerance of their mean, and
 * that mean is within ±tolerance of the mean of the `n` windows before (so a slow climb — a JIT
 * still warming — is not taken for steady): the warm-up's test for "throughput is steady".
 */
export function isSteady(windows: readonly number[], n: number, tolerance: number): boolean {
  if (windows.length < 2 * n) return false;
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const last = windows.slice(-n);
  const m = mean(last);
  const before = mean(windows.slice(-2 * n, -n));
  return m > 0 && last.every((x) => x > 0 && Math.abs(x - m) <= tolerance * m) && Math.abs(m - before) <= tolerance * m;
}
