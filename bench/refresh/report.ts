import { machineMeta } from '../common/driver';
import { table } from '../common/table';

import { RateLimitMode, TargetName } from './args';
import { LoadResult } from './load';

export interface CellResult {
  target: TargetName;
  chains: number;
  /** With --rounds N > 1: which round (1..N) this row ran in. */
  round?: number;
  /** token-ledger rows: with its default rate limits, or with all of them off. */
  rateLimits?: RateLimitMode;
  /** skipped: a prerequisite is missing here (no Java, no Redis); not a failure. */
  status: 'ok' | 'failed' | 'skipped';
  error?: string;
  /** The server's configuration worth stating (e.g. Redis durability). */
  note?: string;
  /** What the pre-flight check established about the server. */
  verification?: string;
  load?: LoadResult;
  /** This row divided by oidc-provider in memory at the same concurrency. */
  vsReference?: { rotationsPerSec: number; p99: number };
  /** This row divided by Keycloak at the same concurrency. */
  vsKeycloak?: { rotationsPerSec: number; p99: number };
  /** Embedded rows: divided by the PostgreSQL row of the same round, concurrency and rate limits. */
  vsPostgres?: { rotationsPerSec: number; p99: number };
}

export interface BenchMeta {
  startedAt: string;
  node: string;
  platform: string;
  cpu: string;
  cpus: number;
  /** How each warm-up ended (fixed seconds, or until steady with a cap). */
  warmup: string;
  durationSec: number;
  /** How many times every row ran (--rounds). */
  rounds: number;
  chains: number[];
  targets: TargetName[];
  rateLimits: RateLimitMode[];
  /** Tracing in the token-ledger servers: `off`, or how it was exported (--otlp-sink). */
  tracing: string;
  /** How token-ledger's /metrics was scraped during the load (--scrape), or `none`. */
  scrape: string;
}

export function benchMeta(o: { warmup: string; durationSec: number; rounds: number; chains: number[]; targets: TargetName[]; rateLimits: RateLimitMode[]; tracing: string; scrape: string }): BenchMeta {
  return { ...machineMeta(), ...o };
}

export function attachRatios(results: CellResult[]): void {
  const against = (row: CellResult, base: TargetName) => {
    // Within a round only: a ratio compares rows that ran minutes apart, not a row with another round's.
    // Against another token-ledger row, also with the same rate limits (--rate-limits both).
    const ref = results.find(
      (r) => r.target === base && r.chains === row.chains && r.round === row.round && r.status === 'ok' && r.load && (!r.rateLimits || r.rateLimits === row.rateLimits),
    );
    if (!ref?.load || !row.load) return undefined;
    return { rotationsPerSec: row.load.rotationsPerSec / ref.load.rotationsPerSec, p99: row.load.latencyMs.p99 / ref.load.latencyMs.p99 };
  };
  for (const row of results) {
    if (row.status !== 'ok' || !row.load) continue;
    if (row.target !== 'reference') row.vsReference = against(row, 'reference');
    if (row.target !== 'keycloak') row.vsKeycloak = against(row, 'keycloak');
    if (row.target === 'embedded') row.vsPostgres = against(row, 'postgres');
  }
}

/** Embedded ÷ PostgreSQL rotations/s and p99, round by round and their median (the embedded store's target is stated this way). */
function embeddedVsPostgres(results: CellResult[]): string[] {
  const lines: string[] = [];
  const groups = new Map<string, CellResult[]>();
  for (const r of results) {
    if (r.target !== 'embedded' || !r.vsPostgres) continue;
    const key = `×${r.chains}${r.rateLimits === 'off' ? ', limits off' : ''}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const [key, rows] of groups) {
    const each = rows.map((r) => `${r.vsPostgres!.rotationsPerSec.toFixed(2)}× (p99 ${r.vsPostgres!.p99.toFixed(2)}×)`).join(', ');
    const summary = rows.length > 1 ? `; median ${median(rows.map((r) => r.vsPostgres!.rotationsPerSec)).toFixed(2)}× (p99 ${median(rows.map((r) => r.vsPostgres!.p99)).toFixed(2)}×)` : '';
    lines.push(`  ${key}: ${each}${summary}`);
  }
  return lines.length === 0 ? [] : ['embedded ÷ postgres, rotations/s (p99), within each round:', ...lines];
}

const LABELS: Record<TargetName, string> = {
  embedded: 'token-ledger (embedded)',
  postgres: 'token-ledger (postgres)',
  reference: 'reference (oidc-provider)',
  'oidc-provider-redis': 'oidc-provider (redis)',
  keycloak: 'keycloak (postgres)',
};

function label(r: Pick<CellResult, 'target' | 'rateLimits' | 'round'>): string {
  const name = r.rateLimits === 'off' ? LABELS[r.target].replace(/\)$/, ', limits off)') : LABELS[r.target];
  return r.round === undefined ? name : `${name} #${r.round}`;
}

/** One row's figures over the rounds it ran in (--rounds N > 1): medians, and each round's rate. */
export interface RoundsMedian {
  target: TargetName;
  chains: number;
  rateLimits?: RateLimitMode;
  /** Rounds in which the row completed (failed or skipped ones are left out). */
  rounds: number;
  rotationsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  perRoundRotationsPerSec: number[];
  /** Medians of the per-round ratios (each taken within its round). */
  vsReference?: { rotationsPerSec: number; p99: number };
  vsKeycloak?: { rotationsPerSec: number; p99: number };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Per row (target, chains, rate limits): the median over its rounds of its figures and of its ratios. */
export function medianOverRounds(results: CellResult[]): RoundsMedian[] {
  const groups = new Map<string, CellResult[]>();
  for (const r of results) {
    if (r.status !== 'ok' || !r.load) continue;
    const key = `${r.target}|${r.chains}|${r.rateLimits ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const ratios = (rows: CellResult[], pick: (r: CellResult) => { rotationsPerSec: number; p99: number } | undefined) => {
    const found = rows.map(pick).filter((x): x is { rotationsPerSec: number; p99: number } => x !== undefined);
    return found.length === 0 ? undefined : { rotationsPerSec: median(found.map((x) => x.rotationsPerSec)), p99: median(found.map((x) => x.p99)) };
  };
  return [...groups.values()].map((rows) => ({
    target: rows[0].target,
    chains: rows[0].chains,
    ...(rows[0].rateLimits ? { rateLimits: rows[0].rateLimits } : {}),
    rounds: rows.length,
    rotationsPerSec: median(rows.map((r) => r.load!.rotationsPerSec)),
    p50Ms: median(rows.map((r) => r.load!.latencyMs.p50)),
    p99Ms: median(rows.map((r) => r.load!.latencyMs.p99)),
    perRoundRotationsPerSec: rows.map((r) => r.load!.rotationsPerSec),
    vsReference: ratios(rows, (r) => r.vsReference),
    vsKeycloak: ratios(rows, (r) => r.vsKeycloak),
  }));
}

/** Server CPU per rotation in µs (undefined without CPU figures). */
function cpuPerRotationUs(r: CellResult): number | undefined {
  const l = r.load;
  return l?.serverCpuPct === undefined || !(l.rotationsPerSec > 0) ? undefined : (l.serverCpuPct / 100) * 1e6 / l.rotationsPerSec;
}

/** Lines comparing each token-ledger row with limits on to the same row with them off. */
function rateLimitCost(results: CellResult[]): string[] {
  const lines: string[] = [];
  for (const on of results) {
    if (on.rateLimits !== 'on' || !on.load) continue;
    const off = results.find((r) => r.rateLimits === 'off' && r.target === on.target && r.chains === on.chains && r.load);
    if (!off?.load) continue;
    const pct = (a: number, b: number) => `${a >= b ? '+' : ''}${(((a - b) / b) * 100).toFixed(1)}%`;
    const cpuOn = cpuPerRotationUs(on);
    const cpuOff = cpuPerRotationUs(off);
    const cpu = cpuOn !== undefined && cpuOff !== undefined ? `, server CPU per rotation ${cpuOff.toFixed(0)} → ${cpuOn.toFixed(0)} µs (${pct(cpuOn, cpuOff)})` : '';
    lines.push(`  ${LABELS[on.target]} ×${on.chains}: rotations/s ${pct(on.load.rotationsPerSec, off.load.rotationsPerSec)}, p99 ${pct(on.load.latencyMs.p99, off.load.latencyMs.p99)}${cpu}`);
  }
  return lines;
}

/** The --rounds summary: each row's medians over its rounds, and the rate it ran at in each. */
function renderMedians(rounds: number, medians: RoundsMedian[]): string[] {
  const header = ['median over rounds', 'chains', 'rounds', 'rotations/s', 'per round', 'p50 ms', 'p99 ms', 'rot/s vs ref', 'p99 vs ref', 'rot/s vs KC', 'p99 vs KC'];
  const rows = medians.map((m) => [
    label(m),
    String(m.chains),
    `${m.rounds}/${rounds}`,
    fmt(m.rotationsPerSec, 1),
    m.perRoundRotationsPerSec.map((x) => x.toFixed(0)).join(' '),
    fmt(m.p50Ms, 2),
    fmt(m.p99Ms, 2),
    ratio(m.vsReference?.rotationsPerSec),
    ratio(m.vsReference?.p99),
    ratio(m.vsKeycloak?.rotationsPerSec),
    ratio(m.vsKeycloak?.p99),
  ]);
  return [
    ...table(header, rows),
    "median over rounds: the median of the row's rounds; its ratios are the medians of the ratios taken within each round.",
  ];
}

function fmt(value: number | undefined, digits: number): string {
  return value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(digits);
}

function ratio(value: number | undefined): string {
  return value === undefined || !Number.isFinite(value) ? '—' : `${value.toFixed(2)}×`;
}

export function renderTable(meta: BenchMeta, results: CellResult[]): string {
  const header = [
    'target',
    'chains',
    'rotations/s',
    'p50 ms',
    'p95 ms',
    'p99 ms',
    'errors',
    'last/first',
    'server CPU',
    'CPU µs/rot',
    'warm-up s',
    'rot/s vs ref',
    'p99 vs ref',
    'rot/s vs KC',
    'p99 vs KC',
  ];
  const rows: string[][] = [];
  const failures: string[] = [];
  const skipped: string[] = [];
  for (const r of results) {
    if (r.status !== 'ok' || !r.load) {
      const first = (r.error ?? 'failed').split('\n')[0];
      const status = r.status === 'skipped' ? 'SKIPPED' : 'FAILED';
      rows.push([label(r), String(r.chains), status, ...header.slice(3).map(() => '')]);
      (r.status === 'skipped' ? skipped : failures).push(`  ${label(r)} ×${r.chains}: ${first}`);
      continue;
    }
    const l = r.load;
    rows.push([
      label(r),
      String(r.chains),
      fmt(l.rotationsPerSec, 1),
      fmt(l.latencyMs.p50, 2),
      fmt(l.latencyMs.p95, 2),
      fmt(l.latencyMs.p99, 2),
      String(l.errors),
      fmt(l.trend, 2),
      l.serverCpuPct === undefined ? '—' : `${l.serverCpuPct.toFixed(0)}%`,
      fmt(cpuPerRotationUs(r), 0),
      `${l.warmupSec.toFixed(0)}${l.warmupSteady === false ? '*' : ''}`,
      ratio(r.vsReference?.rotationsPerSec),
      ratio(r.vsReference?.p99),
      ratio(r.vsKeycloak?.rotationsPerSec),
      ratio(r.vsKeycloak?.p99),
    ]);
  }
  const out: string[] = [];
  out.push(`refresh-token rotation benchmark — ${meta.startedAt}`);
  out.push(`${meta.cpu} × ${meta.cpus} CPUs, ${meta.platform}, Node ${meta.node}`);
  out.push(
    `closed loop, one connection per chain, warm-up ${meta.warmup} (discarded), measured ${meta.durationSec} s per row, ` +
      `fresh server per row${meta.rounds > 1 ? `, ${meta.rounds} rounds (every row once per round, in this order)` : ''}`,
  );
  out.push(`token-ledger tracing: ${meta.tracing}; metrics scrape: ${meta.scrape}`);
  for (const r of results) if (r.note && r.chains === results.find((x) => x.target === r.target)?.chains) out.push(`${label(r)}: ${r.note}`);
  out.push('');
  out.push(...table(header, rows));
  if (meta.rounds > 1) out.push('', ...renderMedians(meta.rounds, medianOverRounds(results)));
  const stores = embeddedVsPostgres(results);
  if (stores.length) out.push('', ...stores);
  out.push('');
  out.push('rotations/s: successful refreshes (200 + new refresh token) completed in the measured window / window length.');
  out.push('latency: one refresh request incl. response body, exact nearest-rank percentiles over every sample.');
  out.push('errors: non-200, malformed 200, token not rotated, or network errors inside the window.');
  out.push('last/first: rotations/s in the last fifth of the window ÷ in the first fifth (< 1: slows down as chains grow).');
  out.push('server CPU: CPU time of the server process over the window (100% = one core; the database / Redis is not included).');
  out.push('CPU µs/rot: server CPU ÷ rotations/s, in µs of one core per rotation (the database / Redis not included).');
  out.push('warm-up s: how long the discarded warm-up ran; * = it hit its cap before throughput was steady.');
  out.push('vs ref / vs KC: this row ÷ oidc-provider in memory / ÷ Keycloak at the same chain count (rot/s: higher is better; p99: lower is better).');
  const cost = rateLimitCost(results);
  if (cost.length) {
    out.push('');
    out.push('what the rate limits cost (limits on vs off, same target and chains; ±10% is run-to-run noise):');
    out.push(...cost);
  }
  const noisy = results.filter(
    (r) => !['postgres', 'keycloak', 'oidc-provider-redis'].includes(r.target) && r.load?.otherCpuPct !== undefined && r.load.otherCpuPct >= 25,
  );
  if (noisy.length) {
    out.push('');
    out.push('warning: other processes used CPU during these windows, so their figures are noisy:');
    for (const r of noisy) {
      out.push(`  ${label(r)} ×${r.chains}: ${r.load?.otherCpuPct?.toFixed(0)}% of a core`);
    }
  }
  if (skipped.length) {
    out.push('');
    out.push('skipped rows (a prerequisite is missing here):');
    out.push(...skipped);
  }
  if (failures.length) {
    out.push('');
    out.push('failed rows:');
    out.push(...failures);
  }
  return out.join('\n');
}
