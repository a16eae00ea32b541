import type { SqlQueryable } from '@token-ledger/event-store';

/** Bucket widths of the overview series; each is a UTC date_trunc unit. */
export const OVERVIEW_BUCKETS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
export type OverviewBucket = keyof typeof OVERVIEW_BUCKETS;

/** More buckets than a chart can show is a mistake in the query: the caller is told to widen the bucket. */
export const MAX_OVERVIEW_BUCKETS = 1000;

export interface OverviewPoint {
  /** ISO-8601 start of the bucket (UTC). */
  at: string;
  refreshes: number;
  reuseDetections: number;
  revocations: number;
  anomalies: number;
}

/** Which audit events each series counts. A grace replay answers a refresh too. */
const SERIES = {
  refreshes: ['TokenRotated', 'TokenRotationReplayed'],
  reuseDetections: ['TokenReuseDetected'],
  revocations: ['TokenFamilyRevoked'],
  anomalies: ['AnomalyDetected'],
} as const;

/** Bucket starts from the one holding `from` up to (not including) `to`, epoch ms. */
export function overviewBuckets(from: number, to: number, bucket: OverviewBucket): number[] {
  const width = OVERVIEW_BUCKETS[bucket];
  const starts: number[] = [];
  for (let at = Math.floor(from / width) * width; at < to; at += width) {
    starts.push(at);
    if (starts.length > MAX_OVERVIEW_BUCKETS) break;
  }
  return starts;
}

/**
 * Refreshes, reuse detections, revocations and anomalies per bucket in [from, to), from the audit
 * view: one set-based GROUP BY over the occurred_at range (rm_audit_time), every bucket present
 * (zeros included) so a chart needs no gap filling. The caller bounds the bucket count.
 */
export async function overviewSeries(sql: SqlQueryable, q: { from: number; to: number; bucket: OverviewBucket }): Promise<OverviewPoint[]> {
  const starts = overviewBuckets(q.from, q.to, q.bucket);
  const count = (name: keyof typeof SERIES) => `count(*) filter (where type in (${SERIES[name].map((t) => `'${t}'`).join(', ')})) as "${name}"`;
  const rows = await sql.query<{ at: string | number } & Record<keyof typeof SERIES, string | number>>(
    `select extract(epoch from date_trunc($3, occurred_at at time zone 'UTC')) * 1000 as at,
            ${Object.keys(SERIES).map((name) => count(name as keyof typeof SERIES)).join(', ')}
       from rm_audit
      where occurred_at >= $1 and occurred_at < $2 and type in (${Object.values(SERIES).flat().map((t) => `'${t}'`).join(', ')})
      group by 1`,
    [new Date(q.from).toISOString(), new Date(q.to).toISOString(), q.bucket],
  );
  const byStart = new Map(rows.map((r) => [Math.round(Number(r.at)), r]));
  return starts.map((at) => {
    const r = byStart.get(at);
    return {
      at: new Date(at).toISOString(),
      refreshes: Number(r?.refreshes ?? 0),
      reuseDetections: Number(r?.reuseDetections ?? 0),
      revocations: Number(r?.revocations ?? 0),
      anomalies: Number(r?.anomalies ?? 0),
    };
  });
}
