/**
 * `npm run bench:store`: the ceiling of one event store — appends/s and append latency with group
 * commit at 1…256 concurrent streams, with and without a competing subscriber, on the embedded
 * store (PGlite) and PostgreSQL. See bench/store/README.md.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { openEventStore, type EventStore, type NewEvent, type OpenedStore, type Subscription } from '@token-ledger/event-store';
import { Client as PgClient } from 'pg';

import { ProgressBar } from '../../apps/cli/src/commands/progress';
import { log } from '../common/console';
import { machineMeta, parseCommandLine, postgresVersion, runMain, startDriver } from '../common/driver';
import { machineBusyCpuSeconds, selfCpuSeconds } from '../refresh/cpu';
import { runCleanups } from '../refresh/processes';
import { SampleBuffer, summarize, type LatencySummary } from '../refresh/stats';
import { createDatabase } from '../refresh/targets';
import { parseOptions, StoreBenchOptions, StoreName, USAGE } from './args';
import { table } from '../common/table';

interface CellResult {
  store: StoreName;
  streams: number;
  subscriber: boolean;
  status: 'ok' | 'failed';
  error?: string;
  appends?: number;
  appendsPerSec?: number;
  latencyMs?: LatencySummary;
  conflicts?: number;
  /** Events the subscriber handled per second during the window, and how far behind it was at the end. */
  subscriberPerSec?: number;
  subscriberLag?: number;
  /** PostgreSQL: committed transactions/s in the bench database during the window (all sessions). */
  commitsPerSec?: number;
  /** CPU of this process (the embedded store runs in it) and of the whole machine, 100 = one core. */
  processCpuPct?: number;
  machineCpuPct?: number;
}

/** What one rotation appends, roughly: a TokenRotated event with hashes, and the family's snapshot. */
function rotationEvent(i: number): NewEvent {
  const hash = () => crypto.randomBytes(32).toString('base64url');
  return {
    eventId: crypto.randomUUID(),
    type: 'TokenRotated',
    data: { familyId: 'f', presentedTokenHash: hash(), newTokenHash: hash(), generation: i, clientId: 'bench-client', occurredAt: new Date().toISOString() },
    metadata: { correlationId: crypto.randomUUID(), schemaVersion: 1, prevHash: hash(), headMac: hash() },
  };
}

function snapshotAt(i: number): unknown {
  return { status: 'active', generation: i, currentTokenHash: crypto.randomBytes(32).toString('base64url'), subject: 'bench-user', clientId: 'bench-client', scope: 'api:read' };
}

async function openStore(store: StoreName, opts: StoreBenchOptions, scratch: string, runId: string): Promise<{ store: OpenedStore; dbUrl?: string; cleanup: () => Promise<void> }> {
  if (store === 'embedded') {
    const dataDir = path.join(scratch, `embedded-${runId}`);
    fs.mkdirSync(dataDir, { recursive: true });
    const opened = await openEventStore({ store: 'embedded', dataDir });
    return { store: opened, cleanup: async () => fs.rmSync(dataDir, { recursive: true, force: true }) };
  }
  const db = await createDatabase(opts.databaseUrl, runId, log, 'tl_store_bench_');
  try {
    const opened = await openEventStore({ store: 'postgres', url: db.url, poolSize: 10 });
    return { store: opened, dbUrl: db.url, cleanup: db.drop };
  } catch (err) {
    await db.drop();
    throw err;
  }
}

async function commitCount(client: PgClient | undefined): Promise<number | undefined> {
  if (!client) return undefined;
  // counters reach pg_stat_database when a backend reports (≤ 1 s after its transaction)
  const { rows } = await client.query<{ c: string }>('select xact_commit::text as c from pg_stat_database where datname = current_database()');
  return Number(rows[0]?.c);
}

async function runCell(storeName: StoreName, streams: number, withSubscriber: boolean, opts: StoreBenchOptions, scratch: string): Promise<CellResult> {
  const label = `${storeName} ×${streams}${withSubscriber ? ' + subscriber' : ''}`;
  const runId = crypto.randomBytes(5).toString('hex');
  let opened: Awaited<ReturnType<typeof openStore>> | undefined;
  let statsClient: PgClient | undefined;
  let subscription: Subscription | undefined;
  try {
    opened = await openStore(storeName, opts, scratch, runId);
    const store: EventStore = opened.store;
    if (opened.dbUrl) {
      statsClient = new PgClient({ connectionString: opened.dbUrl });
      await statsClient.connect();
    }

    let handled = 0;
    if (withSubscriber) {
      // what a consumer does at the least: look at every event, in order
      subscription = store.subscribeToAll(async (e) => {
        if (e.position > 0) handled++;
      });
    }

    const samples = new SampleBuffer();
    let appends = 0;
    let warmupAppends = 0;
    let conflicts = 0;
    const t0 = Date.now();
    const measureStart = t0 + opts.warmupSec * 1000;
    const measureEnd = measureStart + opts.durationSec * 1000;
    let handledAtStart = 0;
    let cpuStart: { self: number; machine?: number; at: number } | undefined;
    let commitsStart: Promise<number | undefined> | undefined;
    const bar = new ProgressBar(process.stderr, true, label, 0);
    let lastTick = 0;
    // Called after every append as well as from a timer: an in-process store (PGlite) can resolve
    // appends without ever yielding to the timer phase, so timers alone may not fire in time.
    const tick = () => {
      const now = Date.now();
      if (!cpuStart && now >= measureStart) {
        handledAtStart = handled;
        cpuStart = { self: selfCpuSeconds(), machine: machineBusyCpuSeconds(), at: now };
        commitsStart = commitCount(statsClient);
      }
      if (now - lastTick >= 250) {
        lastTick = now;
        bar.update(appends + warmupAppends, Math.min(1, (now - t0) / (measureEnd - t0)));
      }
    };
    const progressTimer = setInterval(tick, 250);

    const worker = async (w: number) => {
      const streamId = `bench-${runId}-${w}`;
      let revision = -1;
      while (Date.now() < measureEnd) {
        const start = process.hrtime.bigint();
        try {
          const res = await store.append(streamId, [rotationEvent(revision + 1)], {
            expectedRevision: revision < 0 ? 'no_stream' : revision,
            snapshot: snapshotAt(revision + 1),
          });
          if (res.nextExpectedRevision !== revision + 1) throw new Error(`${streamId}: revision ${res.nextExpectedRevision}, expected ${revision + 1}`);
          revision = res.nextExpectedRevision;
        } catch (err) {
          // each worker owns its stream: a conflict here is a store bug, so count it and re-read
          if ((err as Error).name !== 'WrongExpectedRevisionError') throw err;
          conflicts++;
          revision = (await store.loadStream(streamId)).revision ?? -1;
          continue;
        }
        const finish = Date.now();
        tick();
        if (finish < measureStart) warmupAppends++;
        else if (finish <= measureEnd) {
          appends++;
          samples.push(Number(process.hrtime.bigint() - start) / 1e6);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: streams }, (_, w) => worker(w)));
    } finally {
      clearInterval(progressTimer);
    }
    const end = { self: selfCpuSeconds(), machine: machineBusyCpuSeconds(), at: Date.now() };
    const handledAtEnd = handled;
    const head = await store.headPosition();
    const subscriberLag = withSubscriber && subscription ? Math.max(0, head - subscription.position) : undefined;
    bar.update(appends + warmupAppends, 1);
    bar.finish();

    let commitsPerSec: number | undefined;
    const commitsAtStart = await commitsStart;
    if (statsClient && commitsAtStart !== undefined) {
      await new Promise((r) => setTimeout(r, 1500));
      const commitsEnd = await commitCount(statsClient);
      if (commitsEnd !== undefined) commitsPerSec = (commitsEnd - commitsAtStart) / opts.durationSec;
    }
    const wall = cpuStart ? (end.at - cpuStart.at) / 1000 : opts.durationSec;
    const result: CellResult = {
      store: storeName,
      streams,
      subscriber: withSubscriber,
      status: 'ok',
      appends,
      appendsPerSec: appends / opts.durationSec,
      latencyMs: summarize(samples),
      conflicts,
      subscriberPerSec: withSubscriber ? (handledAtEnd - handledAtStart) / opts.durationSec : undefined,
      subscriberLag,
      commitsPerSec,
      processCpuPct: cpuStart ? ((end.self - cpuStart.self) / wall) * 100 : undefined,
      machineCpuPct: cpuStart?.machine !== undefined && end.machine !== undefined ? ((end.machine - cpuStart.machine) / wall) * 100 : undefined,
    };
    log(
      `${label}: ${result.appendsPerSec?.toFixed(0)} appends/s, p50 ${result.latencyMs?.p50.toFixed(2)} ms, p99 ${result.latencyMs?.p99.toFixed(2)} ms` +
        (withSubscriber ? `, subscriber ${result.subscriberPerSec?.toFixed(0)} events/s, ${subscriberLag} behind at the end` : ''),
    );
    return result;
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    log(`${label}: FAILED: ${message}`);
    return { store: storeName, streams, subscriber: withSubscriber, status: 'failed', error: message };
  } finally {
    await subscription?.close().catch(() => undefined);
    await statsClient?.end().catch(() => undefined);
    await opened?.store.close().catch(() => undefined);
    await opened?.cleanup().catch((err: Error) => log(`${label}: cleanup failed: ${err.message}`));
  }
}

function fmt(v: number | undefined, digits: number): string {
  return v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits);
}

function renderTable(meta: ReturnType<typeof machineMeta> & { postgres?: string }, opts: StoreBenchOptions, results: CellResult[]): string {
  const header = ['store', 'streams', 'subscriber', 'appends/s', 'p50 ms', 'p99 ms', 'appends/commit', 'subscriber ev/s', 'lag at end', 'bench CPU', 'machine CPU'];
  const rows = results.map((r) =>
    r.status !== 'ok'
      ? [r.store, String(r.streams), r.subscriber ? 'yes' : 'no', 'FAILED', ...header.slice(4).map(() => '')]
      : [
          r.store,
          String(r.streams),
          r.subscriber ? 'yes' : 'no',
          fmt(r.appendsPerSec, 0),
          fmt(r.latencyMs?.p50, 2),
          fmt(r.latencyMs?.p99, 2),
          // without a subscriber, commits are (almost only) append batches
          r.commitsPerSec && !r.subscriber ? fmt((r.appendsPerSec ?? 0) / r.commitsPerSec, 1) : '—',
          fmt(r.subscriberPerSec, 0),
          r.subscriberLag === undefined ? '—' : String(r.subscriberLag),
          r.processCpuPct === undefined ? '—' : `${r.processCpuPct.toFixed(0)}%`,
          r.machineCpuPct === undefined ? '—' : `${r.machineCpuPct.toFixed(0)}%`,
        ],
  );
  const out = [
    `event-store benchmark — ${meta.startedAt}`,
    `${meta.cpu} × ${meta.cpus} CPUs, ${meta.platform}, Node ${meta.node}${meta.postgres ? `, ${meta.postgres}` : ''}`,
    `one event + snapshot per append, each worker on its own stream with the exact expected revision; warm-up ${opts.warmupSec} s, measured ${opts.durationSec} s per row, fresh store per row`,
    '',
    ...table(header, rows),
    '',
    'appends/s: acknowledged appends (one event each) completed in the window / window length; p50/p99: one append() call.',
    'appends/commit: appends/s ÷ PostgreSQL transactions committed per second in the bench database (the group-commit batch size).',
    'subscriber ev/s: events a subscribeToAll handler saw per second in the window; lag at end: events it had not seen when the workers stopped.',
    'bench CPU: this process (for embedded: the store itself); machine CPU: every process on the machine, 100% = one core.',
  ];
  const failed = results.filter((r) => r.status !== 'ok');
  if (failed.length) out.push('', 'failed rows:', ...failed.map((r) => `  ${r.store} ×${r.streams}${r.subscriber ? ' + subscriber' : ''}: ${(r.error ?? '').split('\n')[0]}`));
  if (results.some((r) => r.conflicts)) out.push('', 'warning: conflicts on streams that only one worker appends to: ' + results.filter((r) => r.conflicts).map((r) => `${r.store} ×${r.streams}: ${r.conflicts}`).join(', '));
  return out.join('\n');
}

async function main(): Promise<number> {
  const opts = parseCommandLine<StoreBenchOptions>('bench:store', USAGE, parseOptions);
  if (typeof opts === 'number') return opts;
  const { scratch, keepScratch } = startDriver('bench:store', { dropsDatabases: true });
  const meta = { ...machineMeta(), postgres: opts.stores.includes('postgres') ? await postgresVersion(opts.databaseUrl) : undefined };
  const results: CellResult[] = [];
  for (const store of opts.stores) {
    for (const subscriber of opts.subscriber) {
      for (const streams of opts.streams) results.push(await runCell(store, streams, subscriber, opts, scratch));
    }
  }
  const failed = results.some((r) => r.status !== 'ok');
  if (failed) keepScratch();
  await runCleanups();
  process.stdout.write(`\n${renderTable(meta, opts, results)}\n`);
  if (opts.jsonFile) {
    fs.writeFileSync(opts.jsonFile, `${JSON.stringify({ meta, options: opts, results }, null, 2)}\n`);
    log(`results written to ${opts.jsonFile}`);
  }
  return failed ? 1 : 0;
}

runMain('bench:store', main);
