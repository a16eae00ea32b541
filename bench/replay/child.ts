/**
 * One measured run, in its own process so its peak RSS is its own: `replay --all --format ndjson`
 * (stdout is /dev/null) or `verify --all`, through the CLI commands themselves, on the bench schema.
 * 'compare' (not timed) checks the export's bytes against the parsing path on the first events.
 * Reports over the IPC channel.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { PostgresEventStore, type OpenedStore } from '@token-ledger/event-store';
import { exportAllNdjson } from '@token-ledger/forensics';
import * as replay from '../../apps/cli/src/commands/replay';
import * as verify from '../../apps/cli/src/commands/verify';
import type { LedgerConfig } from '../../apps/token-ledger/src';

export type ChildMode = 'export' | 'verify' | 'digest' | 'compare';

/** Events the 'compare' run exports both ways. */
export const COMPARE_EVENTS = 50_000;

export interface ChildResult {
  mode: ChildMode;
  /** digest mode: SHA-256 and line count of the NDJSON (the export really wrote every event). */
  digest?: string;
  lines?: number;
  /** compare mode: whether the copy path wrote the same bytes as JSON.stringify(toPublicEvent(e)), and how many. */
  same?: boolean;
  compared?: number;
  exitCode: number;
  events: number;
  seconds: number;
  /** CPU time of this process (user + system) per event, µs: what the run costs whatever else the machine is doing. */
  cpuMicrosPerEvent: number;
  maxRssMb: number;
}

async function main(): Promise<void> {
  const [mode, url, schema] = process.argv.slice(2) as [ChildMode, string, string];
  const store = await PostgresEventStore.open({ url, schema, poolSize: 4 });
  const events = await store.headPosition(); // seeded positions are dense
  const hash = createHash('sha256');
  let lines = 0;
  const sink = new Writable({
    write(chunk: Buffer, _e, done) {
      if (mode === 'digest') {
        hash.update(chunk);
        for (const byte of chunk) if (byte === 10) lines++;
      }
      done();
    },
  });
  const io = {
    stdout: mode === 'export' ? process.stdout : sink,
    stderr: process.stderr,
    openStore: async () => ({ store, close: () => store.close() }),
  };
  if (mode === 'compare') {
    const [fast, slow] = await Promise.all([sha256Of((out) => exportAllNdjson(store, out, { until: COMPARE_EVENTS })), sha256Of((out) => exportAllNdjson(parsingOnly(store), out, { until: COMPARE_EVENTS }))]);
    await store.close();
    const result: ChildResult = { mode, exitCode: 0, events: 0, seconds: 0, cpuMicrosPerEvent: 0, maxRssMb: 0, same: fast.digest === slow.digest && fast.lines === slow.lines, compared: slow.lines };
    process.send!(result, () => process.exit(0));
    return;
  }
  const logger = pino({ level: 'silent' });
  const cpu0 = process.cpuUsage();
  const started = process.hrtime.bigint();
  const exitCode =
    mode === 'verify'
      ? await verify.run(['--all'], {} as LedgerConfig, logger, io)
      : await replay.run(['--all', '--format', 'ndjson'], {} as LedgerConfig, logger, io);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const result: ChildResult = { mode, ...(mode === 'digest' ? { digest: hash.digest('hex'), lines } : {}), exitCode, events, seconds, cpuMicrosPerEvent: (cpu.user + cpu.system) / events, maxRssMb: process.resourceUsage().maxRSS / 1024 };
  process.send!(result, () => process.exit(0));
}

/** The same store without its events in SQL: what the export does on EventStoreDB (parse, then JSON.stringify). */
function parsingOnly(store: OpenedStore): OpenedStore {
  return new Proxy(store, { get: (target, key) => (key === 'capabilities' ? { ...target.capabilities, eventsInSql: undefined } : (Reflect.get(target, key, target) as unknown)) });
}

async function sha256Of(write: (out: Writable) => Promise<unknown>): Promise<{ digest: string; lines: number }> {
  const hash = createHash('sha256');
  let lines = 0;
  await write(
    new Writable({
      write(chunk: Buffer, _e, done) {
        hash.update(chunk);
        for (const byte of chunk) if (byte === 10) lines++;
        done();
      },
    }),
  );
  return { digest: hash.digest('hex'), lines };
}

main().catch((error) => {
  process.stderr.write(`bench child: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
