import * as os from 'node:os';

import { percentile } from '../refresh/stats';
import type { PropagationOptions } from './args';
import type { MeasureResult, Sample, Transport } from './measure';
import { table } from '../common/table';

export interface DelaySummary {
  /** Revocations measured on this transport (timed-out ones included). */
  count: number;
  timedOut: number;
  /** ms; Infinity when more samples timed out than the percentile leaves out. */
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** Mean over the samples that did not time out. */
  mean: number;
  min: number;
}

export interface Quantiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

function quantiles(values: number[]): Quantiles {
  const sorted = Float64Array.from(values).sort();
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? Number.NaN };
}

/** Stage durations of the Kafka path per revocation (see PropagationReport.kafkaStages). */
export function kafkaStages(samples: Sample[]): PropagationReport['kafkaStages'] {
  const relay: number[] = [];
  const propagator: number[] = [];
  const verifier: number[] = [];
  for (const s of samples) {
    if (s.relayedAt === undefined || s.propagatedAt === undefined || s.kafkaMs === null) continue;
    relay.push(s.relayedAt - s.answeredAt);
    propagator.push(s.propagatedAt - s.relayedAt);
    verifier.push(s.answeredAt + s.kafkaMs - s.propagatedAt);
  }
  if (relay.length === 0) return undefined;
  return { count: relay.length, relay: quantiles(relay), propagator: quantiles(propagator), verifier: quantiles(verifier) };
}

export interface PropagationReport {
  meta: {
    startedAt: string;
    node: string;
    platform: string;
    cpu: string;
    cpus: number;
    loadAverage1m: number;
    brokers: string[];
    options: Omit<PropagationOptions, 'databaseUrl'>;
  };
  transports: Record<Transport, DelaySummary>;
  /**
   * The Kafka path split at the two topics by the records' CreateTime (ms resolution; see
   * stages.ts), over the revocations whose records were both found and that did not time out.
   */
  kafkaStages?: { count: number; relay: Quantiles; propagator: Quantiles; verifier: Quantiles };
  revokeRoundTripMs: Quantiles;
  revokeErrors: string[];
  otherVerifyOutcomes: Record<string, number>;
  /** Whole measured phase, ms, and the revocations per second it amounts to. */
  wallMs: number;
  /** CPU during the measured phase, 100 = one core (Linux). */
  cpuPct: { driver: number; server: number | undefined; rest: number | undefined };
  target: { metric: 'kafka p99'; thresholdMs: number; valueMs: number; pass: boolean };
  /** The measurement stopped early because too many revocations timed out. */
  aborted: boolean;
  samples?: Sample[];
}

/**
 * Exact nearest-rank percentiles over every revocation; a timed-out one counts as +Infinity (it was
 * slower than the bound), so with more than 1% timed out the p99 is reported as "> bound".
 */
export function summarizeDelays(values: (number | null)[]): DelaySummary {
  const sorted = Float64Array.from(values.map((v) => (v === null ? Infinity : v))).sort();
  const finite = sorted.filter((v) => Number.isFinite(v));
  const n = sorted.length;
  return {
    count: n,
    timedOut: n - finite.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: n ? sorted[n - 1] : Number.NaN,
    mean: finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : Number.NaN,
    min: finite.length ? finite[0] : Number.NaN,
  };
}

export function buildReport(
  opts: PropagationOptions,
  result: MeasureResult,
  cpuPct: PropagationReport['cpuPct'],
  startedAt: string,
): PropagationReport {
  const kafka = summarizeDelays(result.samples.map((s) => s.kafkaMs));
  const sse = summarizeDelays(result.samples.map((s) => s.sseMs));
  const revoke = result.samples.map((s) => s.revokeMs);
  const cpus = os.cpus();
  const { databaseUrl: _omit, ...shown } = opts;
  return {
    meta: {
      startedAt,
      node: process.version,
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      cpu: cpus[0]?.model.trim() ?? 'unknown',
      cpus: cpus.length,
      loadAverage1m: os.loadavg()[0],
      brokers: opts.brokers,
      options: shown,
    },
    transports: { kafka, sse },
    kafkaStages: kafkaStages(result.samples),
    revokeRoundTripMs: quantiles(revoke),
    revokeErrors: result.revokeErrors,
    otherVerifyOutcomes: result.otherOutcomes,
    wallMs: result.wallMs,
    cpuPct,
    aborted: result.aborted,
    target: {
      metric: 'kafka p99',
      thresholdMs: opts.targetP99Ms,
      valueMs: kafka.p99,
      pass: !result.aborted && result.revokeErrors.length === 0 && kafka.count > 0 && kafka.p99 < opts.targetP99Ms,
    },
    samples: result.samples,
  };
}

function ms(value: number, bound: number): string {
  if (Number.isNaN(value)) return '—';
  if (!Number.isFinite(value)) return `>${bound}`;
  return value.toFixed(1);
}

export function renderReport(r: PropagationReport): string {
  const o = r.meta.options;
  const header = ['transport', 'revocations', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'mean ms', 'timed out'];
  const labels: Record<Transport, string> = { kafka: 'Kafka (revocations.v1)', sse: 'SSE (/v1/revocations/stream)' };
  const rows = (Object.keys(labels) as Transport[]).map((t) => {
    const s = r.transports[t];
    return [labels[t], String(s.count), ms(s.p50, o.timeoutMs), ms(s.p95, o.timeoutMs), ms(s.p99, o.timeoutMs), ms(s.max, o.timeoutMs), ms(s.mean, o.timeoutMs), String(s.timedOut)];
  });
  const out: string[] = [];
  out.push(`revocation propagation benchmark — ${r.meta.startedAt}`);
  out.push(`${r.meta.cpu} × ${r.meta.cpus} CPUs, ${r.meta.platform}, Node ${r.meta.node}, load average ${r.meta.loadAverage1m.toFixed(2)}`);
  out.push(
    `token-ledger serve (postgres store, Kafka ${r.meta.brokers.join(',')}), ${o.families} families revoked ` +
      `(${o.warmup} warm-up not counted), ${o.concurrency} at a time, verify() every ${o.pollMs === 0 ? 'setImmediate' : `${o.pollMs} ms`}, bound ${o.timeoutMs} ms`,
  );
  out.push('');
  out.push(...table(header, rows));
  out.push('');
  const st = r.kafkaStages;
  if (st) {
    const q = (x: Quantiles) => `p50 ${x.p50.toFixed(0)}, p95 ${x.p95.toFixed(0)}, p99 ${x.p99.toFixed(0)}, max ${x.max.toFixed(0)} ms`;
    out.push(`Kafka path by stage (record timestamps, ms resolution, ${st.count} revocations):`);
    out.push(`  revoke response → relay sent TokenFamilyRevoked to events.v1:     ${q(st.relay)}`);
    out.push(`  events.v1 → propagator sent the record to revocations.v1:       ${q(st.propagator)}`);
    out.push(`  revocations.v1 → the Kafka verifier's verify() rejected:        ${q(st.verifier)}`);
    out.push('  (stage percentiles are per stage, they do not add up to the end-to-end ones; negative = before the response)');
  }
  const rv = r.revokeRoundTripMs;
  out.push(`revoke request round trip: p50 ${rv.p50.toFixed(1)} ms, p95 ${rv.p95.toFixed(1)} ms, p99 ${rv.p99.toFixed(1)} ms, max ${rv.max.toFixed(1)} ms`);
  out.push(
    `measured phase ${(r.wallMs / 1000).toFixed(1)} s; CPU (100% = one core): driver+verifiers ${r.cpuPct.driver.toFixed(0)}%` +
      `${r.cpuPct.server === undefined ? '' : `, token-ledger ${r.cpuPct.server.toFixed(0)}%`}` +
      `${r.cpuPct.rest === undefined ? '' : `, everything else (broker, PostgreSQL, other jobs) ${r.cpuPct.rest.toFixed(0)}%`}`,
  );
  out.push('delay: from the revoke response to the first verify(access token) that rejects with token_revoked;');
  out.push('exact nearest-rank percentiles over every revocation, a timed-out one counting as slower than the bound.');
  if (r.aborted) {
    out.push('');
    out.push(`stopped early: only ${r.transports.kafka.count} of ${o.families} revocations measured, too many timed out`);
  }
  if (r.revokeErrors.length) {
    out.push('');
    out.push(`revoke requests that failed (${r.revokeErrors.length}), e.g. ${r.revokeErrors[0]}`);
  }
  const other = Object.entries(r.otherVerifyOutcomes);
  if (other.length) out.push(`other verify() outcomes while waiting: ${other.map(([k, v]) => `${k} ×${v}`).join(', ')}`);
  out.push('');
  out.push(
    `target: Kafka p99 < ${r.target.thresholdMs} ms — ${r.target.pass ? 'PASS' : 'FAIL'} ` +
      `(p99 ${ms(r.target.valueMs, o.timeoutMs)} ms${r.revokeErrors.length ? `, ${r.revokeErrors.length} revoke errors` : ''})`,
  );
  return out.join('\n');
}
