/**
 * `npm run bench:anomaly`: anomaly detection latency under refresh load, and backtest throughput,
 * on PostgreSQL. See bench/anomaly/README.md.
 */
import { machineMeta, parseCommandLine, postgresVersion, repoRoot, runMain, startDriver } from '../common/driver';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';


import { DEFAULT_RULES, openGeoLocator, RULE_NAMES, userAgentFamily } from '@token-ledger/anomaly';
import { PostgresEventStore } from '@token-ledger/event-store';

import { log, progress } from '../common/console';
import { registerCleanup, runCleanups } from '../refresh/processes';
import { createDatabase } from '../refresh/targets';
import { parseOptions, USAGE, type AnomalyBenchOptions } from './args';
import { readSummary, runCli } from './backtest';
import { buildIpPool } from './ip-pool';
import { measureLatency } from './latency';
import { latencyPasses, renderReport, type AnomalyBenchMeta, type BacktestPart, type BacktestRun, type LatencyPart, type RuleCheck } from './report';
import { DEVICE_SWITCH, planSeed, seed, USER_AGENTS, USER_AGENTS_UPDATED } from './seed';

const int = (n: number) => Math.round(n).toLocaleString('en-US');

/** The seed relies on these user-agent families: check them against the engine's own parser. */
function checkUserAgents(): void {
  for (let i = 0; i < USER_AGENTS.length; i++) {
    const family = userAgentFamily(USER_AGENTS[i]);
    const switched = userAgentFamily(USER_AGENTS[(i + DEVICE_SWITCH) % USER_AGENTS.length]);
    const updated = userAgentFamily(USER_AGENTS_UPDATED[i]);
    if (!family || family === switched || family !== updated) {
      throw new Error(`seed user agents: #${i} is "${family}", its switch "${switched}", its update "${updated}" (need a family, a different one, the same one)`);
    }
  }
}

async function runLatencyPart(opts: AnomalyBenchOptions, root: string, scratch: string): Promise<LatencyPart> {
  try {
    const result = await measureLatency({
      root,
      scratch,
      kafka: opts.kafka,
      brokers: opts.brokers,
      chains: opts.chains,
      warmupSec: opts.warmupSec,
      durationSec: opts.durationSec,
      probeIntervalMs: opts.probeIntervalMs,
      missTimeoutSec: opts.missTimeoutSec,
      serverRules: opts.serverRules,
      databaseUrl: opts.databaseUrl,
      ledgerCli: opts.ledgerCli,
      startTimeoutSec: opts.startTimeoutSec,
      requestTimeoutSec: opts.requestTimeoutSec,
      log,
      progress,
    });
    const r = result;
    log(
      `latency: ${r.detected} probes detected, ${r.missed} missed, ${r.probeErrors} failed; p50 ${r.latencyMs.p50.toFixed(1)} ms, ` +
        `p99 ${r.latencyMs.p99.toFixed(1)} ms; ${r.rotationsPerSec.toFixed(0)} rotations/s`,
    );
    if (r.refreshErrors > 0) log(`latency: ${r.refreshErrors} refresh errors: ${JSON.stringify(r.load.errorKinds)}`);
    return { status: 'ok', result };
  } catch (err) {
    log(`latency: FAILED: ${(err as Error).message}`);
    return { status: 'failed', error: (err as Error).stack ?? String(err) };
  }
}

async function runBacktestPart(opts: AnomalyBenchOptions, root: string, scratch: string): Promise<BacktestPart> {
  const part: BacktestPart = { status: 'ok', runs: [], checks: [] };
  const runId = crypto.randomBytes(5).toString('hex');
  const workDir = path.join(scratch, `backtest-${runId}`);
  fs.mkdirSync(workDir, { recursive: true });
  let db: { url: string; drop: () => Promise<void> } | undefined;
  let store: PostgresEventStore | undefined;
  let unregisterClose: (() => void) | undefined;
  try {
    checkUserAgents();
    // The addresses are located with the database the CLI will use (LEDGER_GEOIP_DB or the bundled one).
    const geoPath = process.env.LEDGER_GEOIP_DB ? path.resolve(process.env.LEDGER_GEOIP_DB) : undefined;
    const poolStart = performance.now();
    const geo = await openGeoLocator(geoPath ? { path: geoPath } : {});
    const pool = buildIpPool((ip) => geo.locate(ip));
    part.poolSeconds = (performance.now() - poolStart) / 1000;
    part.pool = {
      ...pool.stats,
      home: pool.home.length,
      travelPairs: pool.away.filter((j) => j >= 0).length,
      countryOnlyUsed: pool.countryOnly.length,
      attackers: pool.attackers.length,
    };
    log(
      `backtest: ${pool.home.length} city-located addresses from ${pool.stats.networks16} /16 networks in ${pool.stats.countries} countries ` +
        `(${int(pool.stats.candidates)} candidates, ${part.poolSeconds.toFixed(1)} s)`,
    );

    const plan = planSeed(opts.events, pool);
    part.plan = plan;
    db = await createDatabase(opts.databaseUrl, runId, (line) => log(`backtest: ${line}`));
    store = await PostgresEventStore.open({ url: db.url, poolSize: 2 });
    const opened = store;
    // Registered after the database's drop, so on Ctrl-C it runs first (cleanups run in reverse).
    unregisterClose = registerCleanup(() => Promise.race([opened.close(), new Promise<void>((r) => setTimeout(r, 2000).unref())]));
    log(`backtest: seeding ${int(plan.events)} events (${int(plan.families)} families, ${int(plan.subjects)} subjects) in SQL…`);
    const seedStart = performance.now();
    await seed(opened.sql, plan, pool);
    part.seedSeconds = (performance.now() - seedStart) / 1000;
    const [{ bytes }] = await opened.sql.query<{ bytes: string }>(`select pg_total_relation_size('tl_events') as bytes`);
    part.databaseMb = Number(bytes) / 1024 / 1024;
    log(`backtest: seeded in ${part.seedSeconds.toFixed(1)} s (tl_events ${int(part.databaseMb)} MB)`);
    unregisterClose();
    unregisterClose = undefined;
    await opened.close();
    store = undefined;

    const rulesFile = path.join(workDir, 'rules.json');
    fs.writeFileSync(rulesFile, `${JSON.stringify({ $comment: 'bench:anomaly: the default rules, spelled out', rules: DEFAULT_RULES }, null, 2)}\n`);
    part.rulesFile = rulesFile;
    const base = { root, ledgerCli: opts.ledgerCli, databaseUrl: db.url, workDir };

    log('backtest: start-up run (--to 1970-01-01T00:00:00Z)…');
    const startup = await runCli({ ...base, label: 'startup', args: ['--rules', rulesFile, '--format', 'json', '--to', '1970-01-01T00:00:00Z'] });
    readSummary(startup);
    part.startup = { wallSec: startup.wallSec, peakRssMb: startup.peakRssKb === undefined ? undefined : startup.peakRssKb / 1024 };
    log(`backtest: start-up ${startup.wallSec.toFixed(2)} s`);

    for (let i = 0; i < opts.backtestRuns; i++) {
      log(`backtest: run ${i + 1}/${opts.backtestRuns}: token-ledger backtest --rules ${rulesFile} --format json …`);
      const t = performance.now();
      const ticker = setInterval(() => progress(`backtest run ${i + 1}: ${((performance.now() - t) / 1000).toFixed(0)} s`), 1000);
      const run = await runCli({ ...base, label: `run-${i + 1}`, args: ['--rules', rulesFile, '--format', 'json'] }).finally(() => clearInterval(ticker));
      const summary = readSummary(run);
      if (summary.events !== plan.events) throw new Error(`the backtest read ${summary.events} events, the seed wrote ${plan.events}`);
      const result: BacktestRun = {
        wallSec: run.wallSec,
        eventsPerSec: summary.events / run.wallSec,
        eventsPerSecExclStartup: run.wallSec > startup.wallSec ? summary.events / (run.wallSec - startup.wallSec) : undefined,
        peakRssMb: run.peakRssKb === undefined ? undefined : run.peakRssKb / 1024,
        rssSource: run.rssSource,
        cpuSec: run.userCpuSec === undefined || run.sysCpuSec === undefined ? undefined : run.userCpuSec + run.sysCpuSec,
        summary,
      };
      part.runs.push(result);
      progress(
        `backtest run ${i + 1}: ${int(summary.events)} events in ${run.wallSec.toFixed(2)} s = ${int(result.eventsPerSec)} events/s, ` +
          `peak RSS ${result.peakRssMb === undefined ? '?' : int(result.peakRssMb)} MB, ${int(summary.detections)} detections`,
        true,
      );
    }

    const last = part.runs[part.runs.length - 1].summary;
    part.checks = RULE_NAMES.map((rule): RuleCheck => {
      const expected = plan.expected[rule];
      const detected = last.byRule[rule] ?? 0;
      const status: RuleCheck['status'] =
        detected === 0 ? 'zero' : expected?.exact !== undefined && expected.exact !== detected ? 'differs' : 'ok';
      return { rule, expected, detected, status };
    });
    const zero = part.checks.filter((c) => c.status === 'zero');
    for (const c of part.checks.filter((x) => x.status === 'differs')) log(`backtest: ${c.rule}: detected ${c.detected}, the seed expects exactly ${c.expected?.exact}`);
    if (zero.length > 0) {
      part.status = 'failed';
      part.error = `no detection for ${zero.map((c) => c.rule).join(', ')}, which the seed triggers`;
      log(`backtest: FAILED: ${part.error}`);
    }
  } catch (err) {
    part.status = 'failed';
    part.error = (err as Error).stack ?? String(err);
    log(`backtest: FAILED: ${(err as Error).message}`);
  } finally {
    unregisterClose?.();
    await store?.close().catch(() => undefined);
    await db?.drop().catch((err: Error) => log(`backtest: dropping the database failed: ${err.message}`));
  }
  return part;
}

async function main(): Promise<number> {
  const opts = parseCommandLine<AnomalyBenchOptions>('bench:anomaly', USAGE, parseOptions);
  if (typeof opts === 'number') return opts;
  const { scratch, keepScratch } = startDriver('bench:anomaly', { dropsDatabases: true });
  const root = repoRoot();
  const meta: AnomalyBenchMeta = { ...machineMeta(), postgres: await postgresVersion(opts.databaseUrl), loadAverage: os.loadavg() };

  const latency = opts.parts.includes('latency') ? await runLatencyPart(opts, root, scratch) : undefined;
  const backtest = opts.parts.includes('backtest') ? await runBacktestPart(opts, root, scratch) : undefined;

  const failed = latency?.status === 'failed' || backtest?.status === 'failed';
  if (failed || opts.keepLogs) {
    keepScratch();
    log(`server logs and CLI output kept in ${scratch}`);
  }
  await runCleanups();

  process.stdout.write(`\n${renderReport(meta, latency, backtest, opts.targetP99Ms)}\n`);
  if (opts.jsonFile) {
    const best = backtest?.runs.length ? backtest.runs.reduce((a, b) => (b.eventsPerSec > a.eventsPerSec ? b : a)) : undefined;
    const r = latency?.result;
    const summary = {
      latency: r && {
        mode: r.mode,
        p50Ms: r.latencyMs.p50,
        p95Ms: r.latencyMs.p95,
        p99Ms: r.latencyMs.p99,
        targetP99Ms: opts.targetP99Ms,
        passes: latencyPasses(r, opts.targetP99Ms),
        probes: r.probes,
        missed: r.missed,
        rotationsPerSec: r.rotationsPerSec,
      },
      backtest: best && { eventsPerSec: best.eventsPerSec, peakRssMb: best.peakRssMb, byRule: best.summary.byRule },
    };
    fs.writeFileSync(
      opts.jsonFile,
      `${JSON.stringify({ meta, options: opts, summary, latency, backtest }, (_k, v: unknown) => (v === Infinity ? '+Inf' : v), 2)}\n`,
    );
    log(`results written to ${opts.jsonFile}`);
  }
  return failed ? 1 : 0;
}

runMain('bench:anomaly', main);
