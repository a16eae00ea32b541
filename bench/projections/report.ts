import type { RebuildConfig } from './args';
import type { BucketPercentile } from './prom';
import type { LagResult } from './lag';
import type { ReadProfile, RebuildRun } from './rebuild';
import type { SeedPlan } from './seed';
import { table } from '../common/table';

export const REBUILD_TARGET_EVENTS_PER_SEC = 50_000;
export const LAG_P99_TARGET_SEC = 0.1;

export interface ProjectionBenchMeta {
  startedAt: string;
  node: string;
  platform: string;
  cpu: string;
  cpus: number;
  postgres: string | undefined;
}

export interface RebuildPart {
  status: 'ok' | 'failed';
  error?: string;
  plan?: SeedPlan;
  seedSeconds?: number;
  runs: RebuildRun[];
  readProfile?: ReadProfile;
}

export interface LagPart {
  status: 'ok' | 'failed';
  error?: string;
  result?: LagResult;
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (sec: number) => (sec === Infinity ? '∞' : `${+(sec * 1000).toFixed(1)} ms`);
const pct = (part: number, total: number) => `${((part / total) * 100).toFixed(0)}%`;

export function bestRun(runs: RebuildRun[]): RebuildRun | undefined {
  return runs.filter((r) => r.check.ok).sort((a, b) => b.eventsPerSec - a.eventsPerSec)[0];
}

/** "sql, parallel 2" / "replay, batch 5000" / "auto, parallel 2". */
export function configLabel(c: RebuildConfig): string {
  return c.method === 'replay' ? `replay, batch ${c.batchSize}` : `${c.method}, parallel ${c.parallelism}`;
}

function runLabel(r: RebuildRun): string {
  return r.method === 'auto' ? `auto→${r.used}, ${r.used === 'replay' ? `batch ${r.batchSize}` : `parallel ${r.parallelism}`}` : configLabel(r);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The set-based rebuild's steps, grouped: statement time per group and the wall-clock span of each phase. */
function stepBreakdown(run: RebuildRun): string[] {
  const out: string[] = [];
  const totalMs = run.seconds * 1000;
  const groups = new Map<string, { ms: number; count: number; lanes: Set<number> }>();
  const phases = new Map<string, { start: number; end: number }>();
  for (const st of run.steps) {
    const phase = st.name.split(' ')[0];
    const key = st.name.startsWith('fill ') ? st.name.replace(/ \(.*$/, '') : st.name.startsWith('catch up') ? 'catch up' : st.name;
    const g = groups.get(key) ?? { ms: 0, count: 0, lanes: new Set<number>() };
    g.ms += st.ms;
    g.count++;
    g.lanes.add(st.lane);
    groups.set(key, g);
    const ph = phases.get(phase) ?? { start: Infinity, end: 0 };
    ph.start = Math.min(ph.start, st.startMs);
    ph.end = Math.max(ph.end, st.startMs + st.ms);
    phases.set(phase, ph);
  }
  out.push(`where the time goes (${runLabel(run)}, ${int(totalMs)} ms wall clock):`);
  out.push(
    ...table(
      ['phase (wall clock)', 'from ms', 'to ms', 'ms', 'share'],
      [...phases].map(([name, ph]) => [name, int(ph.start), int(ph.end), int(ph.end - ph.start), pct(ph.end - ph.start, totalMs)]),
    ).map((l) => `  ${l}`),
  );
  const statementMs = [...groups.values()].reduce((a, g) => a + g.ms, 0);
  out.push(
    ...table(
      ['statements (summed over the connections)', 'count', 'ms', 'share', 'µs/event'],
      [...groups]
        .sort((a, b) => b[1].ms - a[1].ms)
        .map(([name, g]) => [name, String(g.count), int(g.ms), pct(g.ms, statementMs), ((g.ms * 1000) / run.events).toFixed(1)]),
    ).map((l) => `  ${l}`),
  );
  return out;
}

/** "≤ 50 ms (30–50 ms)": the bucket holding the percentile. */
function bucket(p: BucketPercentile | undefined): string {
  if (!p) return '—';
  if (p.upper === Infinity) return `> ${ms(p.lower)}`;
  return `≤ ${ms(p.upper)} (bucket ${ms(p.lower).replace(' ms', '')}–${ms(p.upper)})`;
}

export function lagPasses(r: LagResult): boolean {
  return r.p99 !== undefined && r.p99.upper <= LAG_P99_TARGET_SEC;
}

export function renderReport(meta: ProjectionBenchMeta, rebuild: RebuildPart | undefined, lag: LagPart | undefined): string {
  const out: string[] = [];
  out.push(`read-model (projection) benchmark — ${meta.startedAt}`);
  out.push(`${meta.cpu} × ${meta.cpus} CPUs, ${meta.platform}, Node ${meta.node}, ${meta.postgres ?? 'PostgreSQL ?'}`);

  if (rebuild) {
    out.push('');
    const plan = rebuild.plan;
    out.push(
      plan
        ? `1. rebuild: rebuildProjections(store, ALL_PROJECTIONS, options) over ${int(plan.events)} events ` +
            `(${int(plan.families)} token families × 10: link, issue, 7 rotations, revoke; seeded in ${rebuild.seedSeconds?.toFixed(1)} s, not timed)`
        : '1. rebuild',
    );
    if (rebuild.status !== 'ok' && rebuild.runs.length === 0) {
      out.push(`   FAILED: ${(rebuild.error ?? 'failed').split('\n')[0]}`);
    } else {
      const best = bestRun(rebuild.runs);
      const rows = rebuild.runs.map((r, i) => [
        String(i + 1) + (rebuild.runs.length > 1 && r === best ? ' *' : ''),
        runLabel(r),
        int(r.events),
        r.seconds.toFixed(2),
        int(r.eventsPerSec),
        `≥ ${int(REBUILD_TARGET_EVENTS_PER_SEC)}`,
        r.eventsPerSec >= REBUILD_TARGET_EVENTS_PER_SEC ? 'PASS' : 'FAIL',
        r.check.ok ? 'ok' : `WRONG (${r.check.problems.length})`,
        `${r.driverCpuPct.toFixed(0)}% / ${r.otherCpuPct === undefined ? '?' : `${r.otherCpuPct.toFixed(0)}%`}`,
        r.walMB === undefined ? '?' : int(r.walMB),
        r.checkpoints === undefined ? '?' : String(r.checkpoints),
      ]);
      out.push(
        ...table(
          ['run', 'method', 'events', 'seconds', 'events/s', 'target', 'result', 'read models', 'CPU node / rest', 'WAL MB', 'checkpoints'],
          rows,
          2,
        ),
      );
      out.push(
        'CPU: of this process / of everything else on the machine (PostgreSQL, and anything else running), 100% = one core. ' +
          'WAL MB, checkpoints: PostgreSQL WAL written and checkpoints run during the rebuild.',
      );
      if (rebuild.status !== 'ok') out.push(`   then FAILED: ${(rebuild.error ?? 'failed').split('\n')[0]}`);
      const byConfig = new Map<string, RebuildRun[]>();
      for (const r of rebuild.runs.filter((x) => x.check.ok)) byConfig.set(runLabel(r), [...(byConfig.get(runLabel(r)) ?? []), r]);
      for (const [label, runs] of byConfig) {
        if (runs.length < 2) continue;
        const rates = runs.map((r) => r.eventsPerSec);
        out.push(`${label}: ${runs.length} runs, median ${int(median(rates))} events/s (min ${int(Math.min(...rates))}, max ${int(Math.max(...rates))})`);
      }
      if (rebuild.runs.length > 1 && best) out.push(`* best run: ${runLabel(best)} (${int(best.eventsPerSec)} events/s)`);
      const shown = [...rebuild.runs].filter((r) => r.check.ok && r.steps.length > 0).sort((a, b) => b.eventsPerSec - a.eventsPerSec)[0];
      if (shown) {
        out.push('');
        out.push(...stepBreakdown(shown));
      }
      if (rebuild.readProfile) {
        const p = rebuild.readProfile;
        out.push(
          `bare read pass (batch ${p.batchSize}): readAll ${int(p.readAllEventsPerSec)} events/s; ` +
            `same query with data/metadata as text (no JSON.parse) ${int(p.textEventsPerSec)} events/s`,
        );
      }
      for (const r of rebuild.runs.filter((x) => !x.check.ok)) {
        out.push(`read models WRONG after ${runLabel(r)}:`);
        for (const p of r.check.problems.slice(0, 10)) out.push(`  ${p}`);
      }
      const ok = rebuild.runs.find((r) => r.check.ok);
      if (ok) {
        const c = ok.check;
        out.push(
          `checked after every run: rm_audit = ${int(c.counts.audit)} rows (= events, each matching its event), ` +
            `rm_families = ${int(c.counts.families)} (= families, all revoked at generation 8, each at its stream's last position), ` +
            `checkpoints at the head; ${c.spotChecked.length} families compared field by field with the seed`,
        );
      }
    }
  }

  if (lag) {
    out.push('');
    const r = lag.result;
    out.push(
      r
        ? `2. read-model lag under refresh load: token-ledger serve (postgres store), ${r.chains} refresh chains, ` +
            `${r.durationSec} s window (bench/refresh load driver)`
        : '2. read-model lag under refresh load',
    );
    if (lag.status !== 'ok' || !r) {
      out.push(`   FAILED: ${(lag.error ?? 'failed').split('\n')[0]}`);
    } else {
      const rows: string[][] = [
        ['rotations/s', r.rotationsPerSec.toFixed(1), '—', '—'],
        ['refresh errors', String(r.refreshErrors), '0', r.refreshErrors === 0 ? 'PASS' : 'FAIL'],
        ['events projected/s', int(r.eventsProjectedPerSec), '—', '—'],
        ['lag observations', int(r.observations), '—', '—'],
        ['lag mean (exact, sum/count)', Number.isFinite(r.meanLagMs) ? `${r.meanLagMs.toFixed(1)} ms` : '—', '—', '—'],
        ['lag p50', bucket(r.p50), '—', '—'],
        ['lag p95', bucket(r.p95), '—', '—'],
        ['lag p99', bucket(r.p99), `< ${ms(LAG_P99_TARGET_SEC)}`, lagPasses(r) ? 'PASS' : 'FAIL'],
        ['max behind (gauges, 1/s)', `${int(r.maxBehindEvents)} events, ${ms(r.maxBehindSeconds)}`, '—', '—'],
      ];
      out.push(...table(['metric', 'value', 'target', 'result'], rows));
      out.push(
        `lag = ${'token_ledger_projection_lag_seconds'} (event recorded → its batch committed to the read models), ` +
          'scraped at the start and end of the window and subtracted;',
      );
      out.push(
        'percentiles are the histogram bucket holding the nearest-rank percentile: the true value is within the bucket, ' +
          'at most its upper bound (p99 passes when that bound is ≤ 100 ms).',
      );
    }
  }
  return out.join('\n');
}
