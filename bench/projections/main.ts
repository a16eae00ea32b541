/**
 * `npm run bench:projections`: read-model rebuild throughput and read-model lag under refresh load,
 * on PostgreSQL. See bench/projections/README.md.
 */
import { machineMeta, parseCommandLine, postgresVersion, repoRoot, runMain, startDriver } from '../common/driver';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';


import { PostgresEventStore } from '@token-ledger/event-store';
import { migrateReadModels } from '@token-ledger/projections';

import { registerCleanup, runCleanups } from '../refresh/processes';
import { createDatabase } from '../refresh/targets';
import { parseOptions, USAGE, type ProjectionBenchOptions } from './args';
import { measureLag } from './lag';
import { bestRun, configLabel, lagPasses, renderReport, type LagPart, type ProjectionBenchMeta, type RebuildPart } from './report';
import { checkRebuild, profileReads, resetReadModels, timeRebuild } from './rebuild';
import { planSeed, seed } from './seed';
import { log, progress } from '../common/console';

const int = (n: number) => Math.round(n).toLocaleString('en-US');

async function runRebuild(opts: ProjectionBenchOptions): Promise<RebuildPart> {
  const part: RebuildPart = { status: 'ok', runs: [] };
  const runId = crypto.randomBytes(5).toString('hex');
  let db: { url: string; drop: () => Promise<void> } | undefined;
  let store: PostgresEventStore | undefined;
  let unregisterClose: (() => void) | undefined;
  try {
    db = await createDatabase(opts.databaseUrl, runId, (line) => log(`rebuild: ${line}`));
    store = await PostgresEventStore.open({ url: db.url });
    const opened = store;
    // Registered after the database's drop, so on Ctrl-C it runs first (cleanups run in reverse).
    unregisterClose = registerCleanup(() => Promise.race([opened.close(), new Promise<void>((r) => setTimeout(r, 2000).unref())]));
    await migrateReadModels(opened.sql);

    const plan = planSeed(opts.events);
    part.plan = plan;
    if (plan.events !== opts.events) log(`rebuild: --events ${opts.events} rounded down to ${plan.events} (10 events per family)`);
    log(`rebuild: seeding ${int(plan.events)} events (${int(plan.families)} families, ${int(plan.subjects)} subjects, ${plan.clients} clients) in SQL…`);
    const seedStart = Date.now();
    await seed(opened.sql, plan);
    part.seedSeconds = (Date.now() - seedStart) / 1000;
    log(`rebuild: seeded in ${part.seedSeconds.toFixed(1)} s`);

    for (const [i, config] of opts.rebuilds.entries()) {
      const label = `run ${i + 1}/${opts.rebuilds.length} (${configLabel(config)})`;
      await resetReadModels(opened.sql);
      log(`rebuild: ${label}: rebuilding…`);
      const timed = await timeRebuild(opened, plan, config, (p, sec) =>
        progress(`rebuild ${label}: ${p.phase ?? ''} ${int(p.done)}/${int(p.total)} events, ${sec.toFixed(1)} s, ${int(p.done / Math.max(sec, 1e-9))} events/s`),
      );
      progress(`rebuild ${label}: ${int(timed.events)} events in ${timed.seconds.toFixed(2)} s = ${int(timed.eventsPerSec)} events/s (${timed.used})`, true);
      log(`rebuild: ${label}: checking the read models…`);
      const check = await checkRebuild(opened, plan, timed.head);
      if (!check.ok) for (const p of check.problems.slice(0, 10)) log(`rebuild: WRONG: ${p}`);
      else log(`rebuild: ${label}: read models ok`);
      const { head: _head, ...run } = timed;
      part.runs.push({ ...run, check });
    }
    if (opts.profile) {
      const batchSize = opts.batchSizes[0];
      log(`rebuild: --profile: timing a bare read pass (batch ${batchSize})…`);
      part.readProfile = await profileReads(opened, plan.events, batchSize);
    }
  } catch (err) {
    part.status = 'failed';
    part.error = (err as Error).stack ?? String(err);
    log(`rebuild: FAILED: ${(err as Error).message}`);
  } finally {
    unregisterClose?.();
    await store?.close().catch(() => undefined);
    await db?.drop().catch((err: Error) => log(`rebuild: dropping the database failed: ${err.message}`));
  }
  return part;
}

async function runLagPart(opts: ProjectionBenchOptions, root: string, scratch: string): Promise<LagPart> {
  try {
    const result = await measureLag({
      root,
      scratch,
      chains: opts.chains,
      warmupSec: opts.warmupSec,
      durationSec: opts.durationSec,
      databaseUrl: opts.databaseUrl,
      ledgerCli: opts.ledgerCli,
      startTimeoutSec: opts.startTimeoutSec,
      requestTimeoutSec: opts.requestTimeoutSec,
      log,
      progress,
    });
    if (result.refreshErrors > 0) log(`lag: ${result.refreshErrors} refresh errors: ${JSON.stringify(result.load.errorKinds)}`);
    return { status: 'ok', result };
  } catch (err) {
    log(`lag: FAILED: ${(err as Error).message}`);
    return { status: 'failed', error: (err as Error).stack ?? String(err) };
  }
}

async function main(): Promise<number> {
  const opts = parseCommandLine<ProjectionBenchOptions>('bench:projections', USAGE, parseOptions);
  if (typeof opts === 'number') return opts;
  const { scratch, keepScratch } = startDriver('bench:projections', { dropsDatabases: true });
  const root = repoRoot();
  const meta: ProjectionBenchMeta = { ...machineMeta(), postgres: await postgresVersion(opts.databaseUrl) };

  const rebuild = opts.parts.includes('rebuild') ? await runRebuild(opts) : undefined;
  const lag = opts.parts.includes('lag') ? await runLagPart(opts, root, scratch) : undefined;

  const failed =
    rebuild?.status === 'failed' || rebuild?.runs.some((r) => !r.check.ok) === true || lag?.status === 'failed';
  if (lag?.status === 'failed') {
    keepScratch();
    log(`server logs kept in ${scratch}`);
  }
  await runCleanups();

  process.stdout.write(`\n${renderReport(meta, rebuild, lag)}\n`);
  if (opts.jsonFile) {
    const best = rebuild ? bestRun(rebuild.runs) : undefined;
    const summary = {
      rebuildBest: best && { method: best.used, parallelism: best.parallelism, batchSize: best.batchSize, eventsPerSec: best.eventsPerSec },
      lagP99Passes: lag?.result ? lagPasses(lag.result) : undefined,
    };
    fs.writeFileSync(
      opts.jsonFile,
      `${JSON.stringify({ meta, summary, rebuild, lag }, (_k, v: unknown) => (v === Infinity ? '+Inf' : v), 2)}\n`,
    );
    log(`results written to ${opts.jsonFile}`);
  }
  return failed ? 1 : 0;
}

runMain('bench:projections', main);
