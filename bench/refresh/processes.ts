import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';

/**
 * Child servers and cleanup. Every child is registered so that exit, SIGINT, SIGTERM or an
 * uncaught error in the driver kills it; async cleanups (dropping the throw-away database,
 * removing temp dirs) run on SIGINT/SIGTERM and at normal shutdown.
 */
const children = new Set<ChildProcess>();
const cleanups = new Set<() => Promise<void>>();

export function registerCleanup(fn: () => Promise<void>): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

export async function runCleanups(): Promise<void> {
  for (const child of children) killHard(child);
  const pending = [...cleanups];
  cleanups.clear();
  for (const fn of pending.reverse()) {
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`bench: cleanup failed: ${(err as Error).message}\n`);
    }
  }
}

function killHard(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

let handlersInstalled = false;
export function installSignalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const child of children) killHard(child);
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping servers and cleaning up…\n`);
      const hardExit = setTimeout(() => process.exit(130), 10_000);
      hardExit.unref();
      void runCleanups().finally(() => process.exit(130));
    });
  }
}

export interface ChildServer {
  readonly process: ChildProcess;
  readonly logFile: string;
  /** Resolves once the process has exited. */
  readonly exited: Promise<void>;
  /** Last lines of the log, for error messages. */
  tail(lines?: number): string;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  logFile: string;
  /** Called for every stdout line (stdout is also copied to the log file). */
  onStdoutLine?: (line: string) => void;
}

/** Starts a server process; stderr goes to the log file, stdout to the log file and onStdoutLine. */
export function spawnServer(opts: SpawnOptions): ChildServer {
  const log = fs.openSync(opts.logFile, 'a');
  // stdin is a pipe the child may watch: it closes when the driver dies, however it dies.
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: opts.env,
    stdio: ['pipe', opts.onStdoutLine ? 'pipe' : log, log],
  });
  fs.closeSync(log);
  children.add(child);

  if (opts.onStdoutLine && child.stdout) {
    const out = fs.createWriteStream(opts.logFile, { flags: 'a' });
    let buffered = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out.write(chunk);
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).replace(/\r$/, '');
        buffered = buffered.slice(nl + 1);
        opts.onStdoutLine?.(line);
      }
    });
    child.stdout.on('end', () => out.end());
  }
  child.stdin?.on('error', () => undefined);

  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      children.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      fs.appendFileSync(opts.logFile, `\n[bench] spawn error: ${err.message}\n`);
      children.delete(child);
      resolve();
    });
  });

  return {
    process: child,
    logFile: opts.logFile,
    exited,
    tail(lines = 15) {
      try {
        return fs.readFileSync(opts.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null || !children.has(child)) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => killHard(child), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
