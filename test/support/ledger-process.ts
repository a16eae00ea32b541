import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { freePort } from './free-port';
import { ADMIN_TOKEN } from './ledger-harness';
import { embeddedThreadEnv } from './embedded-thread';

const ROOT = path.resolve(__dirname, '../..');

/**
 * `token-ledger serve` in a child process of its own, run from the TypeScript sources
 * (scripts/ts-register.js), so a test can kill it the hard way — SIGKILL, no shutdown hook — and
 * start it again on the same data.
 */
export interface LedgerProcess {
  baseUrl: string;
  child: ChildProcess;
  /** stdout and stderr, as they came. */
  output: string[];
  /** performance.now() when it first answered /readyz. */
  readyAt: number;
  /** Resolves as soon as a line of its output matches (checked as the output arrives). */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<void>;
  /** SIGKILL, and wait until it is gone. */
  kill(): Promise<void>;
  /** SIGTERM (a clean shutdown), and wait until it is gone. */
  stop(): Promise<void>;
}

/** `port`: listen there (a restart that must keep its address and issuer); a free one by default. */
export async function spawnLedger(env: Record<string, string>, timeoutMs = 90_000, fixedPort?: number): Promise<LedgerProcess> {
  const port = fixedPort ?? (await freePort());
  const baseUrl = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, ['-r', path.join(ROOT, 'scripts/ts-register.js'), path.join(ROOT, 'apps/cli/src/main.ts'), 'serve'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      LEDGER_ADMIN_TOKEN: ADMIN_TOKEN,
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      PORT: String(port),
      LEDGER_ISSUER: baseUrl,
      ...embeddedThreadEnv(),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const watchers = new Set<() => void>();
  const take = (chunk: unknown) => {
    output.push(String(chunk));
    for (const watcher of [...watchers]) watcher();
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const waitFor = (pattern: RegExp, ms: number) =>
    new Promise<void>((resolve, reject) => {
      const done = () => {
        watchers.delete(check);
        clearTimeout(timer);
      };
      const check = () => {
        if (pattern.test(output.join(''))) {
          done();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no output matching ${pattern} within ${ms} ms`));
      }, ms);
      watchers.add(check);
      check();
    });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const waitGone = async (signal: NodeJS.Signals) => {
    if (!gone) child.kill(signal);
    await exited;
  };

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (gone) throw new Error(`token-ledger exited before it was ready (code ${child.exitCode}):\n${output.join('')}`);
    const ready = await fetch(`${baseUrl}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      await waitGone('SIGKILL');
      throw new Error(`token-ledger not ready within ${timeoutMs} ms:\n${output.join('')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { baseUrl, child, output, readyAt: performance.now(), waitFor, kill: () => waitGone('SIGKILL'), stop: () => waitGone('SIGTERM') };
}
