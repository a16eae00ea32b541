/**
 * One measured run, in its own process so its peak RSS is its own: `replay --all --format ndjson`
 * (stdout is /dev/null) or `verify --all`, through the CLI commands themselves, on the bench schema.
 * Reports over the IPC channel.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { PostgresEventStore } from '@token-ledger/event-store';
import * as replay from '../../apps/cli/src/commands/replay';
import * as verify from '../../apps/cli/src/commands/verify';
import type { LedgerConfig } from '../../apps/token-ledger/src';

export type ChildMode = 'export' | 'verify' | 'digest';

export interface ChildResult {
  mode: ChildMode;
  /** digest mode: SHA-256 and line count of the NDJSON (the export really wrote every event). */
  digest?: string;
  lines?: number;
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

main().catch((error) => {
  process.stderr.write(`bench child: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
