import pino, { type Logger } from 'pino';
import type { OpenedStore } from '@token-ledger/event-store';
import type { LedgerConfig } from '../../../token-ledger/src/config/ledger-config';
import { openRuntime } from '../../../token-ledger/src/runtime';
import type { OutStream } from './progress';

/** Where a forensics command writes, and how it opens the store (tests pass their own). */
export interface CliIo {
  stdout: OutStream;
  stderr: OutStream;
  /** Default: openRuntime with its log lines on stderr. */
  openStore?: (config: LedgerConfig, logger: Logger) => Promise<{ store: OpenedStore; close(): Promise<void> }>;
}

export const processIo = (): CliIo => ({ stdout: process.stdout, stderr: process.stderr });

/**
 * openRuntime (the configured store: embedded, PostgreSQL, …) with its log lines on stderr, so they
 * never mix with the output on stdout.
 */
export function storeOpener(io: CliIo): NonNullable<CliIo['openStore']> {
  if (io.openStore) return io.openStore;
  return async (config, logger) => {
    const runtime = await openRuntime(config, pino({ level: logger.level, base: { service: 'token-ledger' } }, io.stderr));
    return { store: runtime.store, close: () => runtime.close() };
  };
}
