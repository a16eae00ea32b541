/**
 * The plumbing every bench driver shares: its command line (usage errors, --help, positive numbers),
 * its process (signal handlers, cleanups, a scratch directory) and the machine it measured on.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client as PgClient } from 'pg';
import { installSignalHandlers, registerCleanup, runCleanups } from '../refresh/processes';
import { log } from './console';

export class UsageError extends Error {}

/** A positive number (or ≥ 0 with allowZero; whole with integer) from a flag's value, else a UsageError. */
export function positive(flag: string, raw: string, { integer = false, allowZero = false } = {}): number {
  const value = Number(raw);
  const ok = Number.isFinite(value) && (allowZero ? value >= 0 : value > 0) && (!integer || Number.isInteger(value));
  if (!ok) throw new UsageError(`${flag} must be a ${integer ? 'positive integer' : 'positive number'}, got "${raw}"`);
  return value;
}

/**
 * Parses the command line with `parse`: the options, or the exit code once handled (--help printed
 * to stdout: 0; a UsageError printed with the usage to stderr: 2).
 */
export function parseCommandLine<O>(name: string, usage: string, parse: (argv: string[]) => O | 'help'): O | number {
  let opts: O | 'help';
  try {
    opts = parse(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${name}: ${err.message}\n\n${usage}\n`);
    return 2;
  }
  if (opts !== 'help') return opts;
  process.stdout.write(`${usage}\n`);
  return 0;
}

/**
 * Signal handlers and cleanups (children stopped, databases dropped) for the driver `name`, and a
 * scratch directory, removed at exit unless `keepScratch()` was called (a failed part keeps its logs).
 * With `dropsDatabases`, an uncaught exception after Ctrl-C is ignored: the throw-away database is
 * dropped WITH (FORCE) under a busy pg connection, which then reports the termination as an 'error'
 * event no one listens to. Any other uncaught exception runs the cleanups and exits 1.
 */
export function startDriver(name: string, opts: { dropsDatabases?: boolean } = {}): { scratch: string; keepScratch(): void } {
  installSignalHandlers();
  if (opts.dropsDatabases) {
    let stopping = false;
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => (stopping = true));
    process.on('uncaughtException', (err) => {
      if (stopping) return;
      log(`${name}: ${err.stack ?? String(err)}`);
      void runCleanups().finally(() => process.exit(1));
    });
  }
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `tl-${name.replace(':', '-')}-`));
  let keep = false;
  registerCleanup(async () => {
    if (!keep) fs.rmSync(scratch, { recursive: true, force: true });
  });
  return { scratch, keepScratch: () => (keep = true) };
}

/** When and on what the bench ran. */
export function machineMeta(): { startedAt: string; node: string; platform: string; cpu: string; cpus: number } {
  const cpus = os.cpus();
  return {
    startedAt: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
  };
}

/** The repository root: the first ancestor whose package.json is token-ledger's. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'token-ledger') return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the repository root above ${__dirname}`);
    dir = parent;
  }
}

/** "PostgreSQL 15.20" for the server at `url`, or undefined when it does not answer. */
export async function postgresVersion(url: string): Promise<string | undefined> {
  const client = new PgClient({ connectionString: url });
  try {
    await client.connect();
    const { rows } = await client.query<{ v: string }>("select current_setting('server_version') as v");
    return `PostgreSQL ${rows[0].v.split(' ')[0]}`;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Runs a driver's main: its result is the exit code; a throw is logged, the cleanups run, exit code 1. */
export function runMain(name: string, main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    async (err: unknown) => {
      log(`${name}: ${(err as Error)?.stack ?? String(err)}`);
      await runCleanups();
      process.exitCode = 1;
    },
  );
}
