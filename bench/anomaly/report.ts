import type { BucketPercentile } from '../projections/prom';
import type { BacktestSummary, CliRun } from './backtest';
import type { IpPool } from './ip-pool';
import type { Distribution, LatencyResult } from './latency';
import type { SeedPlan } from './seed';
import { table } from '../common/table';

export interface AnomalyBenchMeta {
  startedAt: string;
  node: string;
  platform: string;
  cpu: string;
  cpus: number;
  postgres: string | undefined;
  loadAverage: number[];
}

export interface LatencyPart {
  status: 'ok' | 'failed';
  error?: string;
  result?: LatencyResult;
}

export interface BacktestRun {
  wallSec: number;
  eventsPerSec: number;
  /** events ÷ (wall − the start-up run's wall): the rate of the replay itself. */
  eventsPerSecExclStartup: number | undefined;
  peakRssMb: number | undefined;
  rssSource: CliRun['rssSource'];
  cpuSec: number | undefined;
  summary: BacktestSummary;
}

export interface RuleCheck {
  rule: string;
  expected: { exact?: number; min?: number } | undefined;
  detected: number;
  /** zero = broken run; differs = an exact expectation not met (reported, not fatal). */
  status: 'ok' | 'differs' | 'zero';
}

export interface BacktestPart {
  status: 'ok' | 'failed';
  error?: string;
  plan?: SeedPlan;
  pool?: IpPool['stats'] & { home: number; travelPairs: number; countryOnlyUsed: number; attackers: number };
  poolSeconds?: number;
  seedSeconds?: number;
  databaseMb?: number;
  rulesFile?: string;
  startup?: { wallSec: number; peakRssMb: number | undefined };
  runs: BacktestRun[];
  checks: RuleCheck[];
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (v: number) => (v === Infinity ? '∞ (miss)' : Number.isNaN(v) ? '—' : `${v.toFixed(1)} ms`);
const bucketMs = (sec: number) => (sec === Infinity ? '∞' : `${+(sec * 1000).toFixed(1)}`);

/** "≤ 50 ms (bucket 30–50)": the bucket holding the percentile. */
function bucket(p: BucketPercentile | undefined): string {
  if (!p) return '—';
  if (p.upper === Infinity) return `> ${bucketMs(p.lower)} ms`;
  return `≤ ${bucketMs(p.upper)} ms (bucket ${bucketMs(p.lower)}–${bucketMs(p.upper)})`;
}

const dist = (d: Distribution) => `${ms(d.p50)} / ${ms(d.p95)} / ${ms(d.p99)} / ${ms(d.max)}`;

export function latencyPasses(r: LatencyResult, targetMs: number): boolean {
  return r.latencyMs.p99 < targetMs;
}

export function renderReport(meta: AnomalyBenchMeta, latency: LatencyPart | undefined, backtest: BacktestPart | undefined, targetMs: number): string {
  const out: string[] = [];
  out.push(`anomaly engine benchmark — ${meta.startedAt}`);
  out.push(
    `${meta.cpu} × ${meta.cpus} CPUs, ${meta.platform}, Node ${meta.node}, ${meta.postgres ?? 'PostgreSQL ?'}, load average at start ${meta.loadAverage.map((l) => l.toFixed(2)).join(' ')}`,
  );

  if (latency) {
    out.push('');
    const r = latency.result;
    out.push(
      r
        ? `1. detection latency under refresh load: token-ledger serve (postgres, anomaly engine ${r.mode === 'kafka' ? 'on Kafka: relay → events.v1 → consumer group' : 'in-process'}), ` +
            `${r.serverRules ? `rules ${r.serverRules}, ` : 'default rules, '}${r.chains} refresh chains, ${r.durationSec} s window; a reuse probe every ${r.probeIntervalMs} ms; ` +
            `latency = append → AnomalyDetected: the probe's TokenReuseDetected seen → its AnomalyDetected (reuse_detected) seen, by one store subscription in the bench`
        : '1. detection latency under refresh load',
    );
    if (!r) {
      out.push(`   FAILED: ${(latency.error ?? 'failed').split('\n')[0]}`);
    } else {
      const pass = latencyPasses(r, targetMs);
      const rows: string[][] = [
        ['rotations/s (load)', r.rotationsPerSec.toFixed(1), '—', '—'],
        ['refresh errors (load)', int(r.refreshErrors), '—', '—'],
        ['refresh p99 (load)', ms(r.refreshP99Ms), '—', '—'],
        ['probes (detected / missed / failed)', `${r.detected} / ${r.missed} / ${r.probeErrors}`, '—', '—'],
        ['latency p50', ms(r.latencyMs.p50), '—', '—'],
        ['latency p95', ms(r.latencyMs.p95), '—', '—'],
        ['latency p99', ms(r.latencyMs.p99), `< ${targetMs} ms`, pass ? 'PASS' : 'FAIL'],
        ['latency max', ms(r.latencyMs.max), '—', '—'],
        ['latency mean (detected)', ms(r.latencyMs.mean), '—', '—'],
        ['from the reuse response: p50 / p99', `${ms(r.fromResponseMs.p50)} / ${ms(r.fromResponseMs.p99)}`, '—', '—'],
        [`server histogram: observations (all rules)`, int(r.server.observations), '—', '—'],
        ['server histogram: mean (exact)', ms(r.server.meanMs), '—', '—'],
        ['server histogram: p50', bucket(r.server.p50), '—', '—'],
        ['server histogram: p99', bucket(r.server.p99), '—', '—'],
      ];
      out.push(...table(['metric', 'value', 'target', 'result'], rows));
      out.push('');
      out.push(`latency by quarter of the window (p50 / p95 / p99 / max, probes): ${r.quartersMs.map((q, i) => `Q${i + 1} ${dist(q)} (${q.count})`).join('; ')}`);
      out.push(`where the time goes (ms, p50 / p95 / p99 / max over ${r.stagesMs.engine.count} detected probes; T = the reuse event's occurredAt, stamped by the server):`);
      out.push(
        ...table(
          ['stage', 'p50 / p95 / p99 / max'],
          [
            ['T → reuse response at the bench', dist(r.stagesMs.response)],
            ['T → engine detected it (the server histogram)', dist(r.stagesMs.engine)],
            ['detected → AnomalyDetected append began (recorded_at)', dist(r.stagesMs.append)],
            ['recorded_at → seen by the bench (NOTIFY + read)', dist(r.stagesMs.observe)],
          ],
        ).map((l) => `  ${l}`),
      );
      const cpu = (v: number | undefined) => (v === undefined ? '?' : `${v.toFixed(0)}%`);
      out.push(
        `CPU during the window (100% = one core): server ${cpu(r.load.serverCpuPct)}, bench ${cpu(r.load.driverCpuPct)}, everything else (PostgreSQL${r.mode === 'kafka' ? ', Kafka' : ''}, other jobs) ${cpu(r.load.otherCpuPct)}`,
      );
      const behind = Object.entries(r.maxBehind).map(([name, n]) => `${name} ${int(n)}`);
      out.push(`most events behind the head (checkpoints sampled twice a second in the window): ${behind.length ? behind.join(', ') : '—'}`);
      const rules = Object.entries(r.server.anomaliesByRule).map(([rule, n]) => `${rule} ${int(n)}`);
      out.push(`anomalies recorded by the server in the window: ${rules.length ? rules.join(', ') : 'none'}; setup probe: ${ms(r.firstProbeMs)}`);
      if (r.beforeResponse > 0) out.push(`${r.beforeResponse} probe(s) saw the AnomalyDetected before the reuse response had been read (the engine beat the HTTP answer)`);
      if (r.probeErrorSamples.length) out.push(`probe failures: ${r.probeErrorSamples.join(' | ')}`);
    }
  }

  if (backtest) {
    out.push('');
    const plan = backtest.plan;
    out.push(
      plan
        ? `2. backtest throughput: token-ledger backtest --rules FILE --format json (child process, PostgreSQL) over ${int(plan.events)} events ` +
            `(${int(plan.families)} token families, ${int(plan.subjects)} subjects; seeded in ${backtest.seedSeconds?.toFixed(1)} s, not timed)`
        : '2. backtest throughput',
    );
    if (backtest.pool) {
      const p = backtest.pool;
      out.push(
        `   addresses: ${int(p.home)} city-located public IPv4 addresses from ${int(p.networks16)} /16 networks in ${p.countries} countries ` +
          `(${int(p.candidates)} random candidates, ${int(p.unlocated)} unknown to the database), ${p.countryOnlyUsed} country-only, ${p.attackers} attackers`,
      );
    }
    if (backtest.runs.length === 0) {
      out.push(`   FAILED: ${(backtest.error ?? 'failed').split('\n')[0]}`);
    } else {
      const rows = backtest.runs.map((run, i) => [
        String(i + 1),
        int(run.summary.events),
        run.wallSec.toFixed(2),
        int(run.eventsPerSec),
        run.eventsPerSecExclStartup === undefined ? '—' : int(run.eventsPerSecExclStartup),
        run.peakRssMb === undefined ? '?' : `${int(run.peakRssMb)} MB`,
        run.cpuSec === undefined ? '?' : run.cpuSec.toFixed(1),
        int(run.summary.detections),
      ]);
      out.push(...table(['run', 'events', 'seconds', 'events/s', 'events/s excl. start-up', 'peak RSS', 'CPU s', 'detections'], rows));
      if (backtest.startup) {
        out.push(
          `start-up (the same command with --to 1970-01-01T00:00:00Z: node, open the store, load the geo database, read one page): ` +
            `${backtest.startup.wallSec.toFixed(2)} s, peak RSS ${backtest.startup.peakRssMb === undefined ? '?' : `${int(backtest.startup.peakRssMb)} MB`}`,
        );
      }
      out.push('');
      out.push('detections by rule (default rules; expected from the seed):');
      out.push(
        ...table(
          ['rule', 'expected', 'detected', 'check'],
          backtest.checks.map((c) => [
            c.rule,
            c.expected?.exact !== undefined ? int(c.expected.exact) : c.expected?.min !== undefined ? `≥ ${int(c.expected.min)}` : '—',
            int(c.detected),
            c.status,
          ]),
        ).map((l) => `  ${l}`),
      );
      if (backtest.status === 'failed' && backtest.error) out.push(`   FAILED: ${backtest.error.split('\n')[0]}`);
    }
  }
  return out.join('\n');
}
