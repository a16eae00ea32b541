/**
 * Just enough of the Prometheus text exposition format for the benchmark: samples by name and
 * labels, cumulative histogram buckets, and percentiles read off bucket bounds.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = SAMPLE_LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    samples.push({ name: m[1], labels, value });
  }
  return samples;
}

/** Sum of every sample of that name (all label sets), or undefined when there is none. */
export function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hits.length ? hits.reduce((a, s) => a + s.value, 0) : undefined;
}

export interface Histogram {
  /** Cumulative counts by upper bound, ascending; the last bound is +Inf. */
  buckets: Array<{ le: number; count: number }>;
  count: number;
  sum: number;
}

export function histogram(samples: Sample[], name: string): Histogram | undefined {
  const buckets = samples
    .filter((s) => s.name === `${name}_bucket` && s.labels.le !== undefined)
    .map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value }))
    .sort((a, b) => a.le - b.le);
  if (buckets.length === 0) return undefined;
  return { buckets, count: sampleValue(samples, `${name}_count`) ?? buckets[buckets.length - 1].count, sum: sampleValue(samples, `${name}_sum`) ?? 0 };
}

/** after − before, bucket by bucket (the observations made in between); before may be absent. */
export function histogramDelta(after: Histogram, before: Histogram | undefined): Histogram {
  if (!before) return after;
  return {
    buckets: after.buckets.map((b) => ({ le: b.le, count: b.count - (before.buckets.find((x) => x.le === b.le)?.count ?? 0) })),
    count: after.count - before.count,
    sum: after.sum - before.sum,
  };
}

export interface BucketPercentile {
  p: number;
  /** Upper bound of the bucket holding the p-th percentile observation (Infinity: above the last finite bound). */
  upper: number;
  /** Lower bound of that bucket (0 for the first). */
  lower: number;
}

/**
 * The bucket holding the nearest-rank p-th percentile (the ceil(p% · n)-th smallest observation):
 * the percentile lies in (lower, upper]. No interpolation; undefined without observations.
 */
export function bucketPercentile(h: Histogram, p: number): BucketPercentile | undefined {
  const total = h.buckets[h.buckets.length - 1]?.count ?? 0;
  if (total <= 0) return undefined;
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let lower = 0;
  for (const b of h.buckets) {
    if (b.count >= rank) return { p, upper: b.le, lower };
    lower = b.le;
  }
  return { p, upper: Infinity, lower };
}
