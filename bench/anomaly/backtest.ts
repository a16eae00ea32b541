import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';

import { registerCleanup } from '../refresh/processes';

const GNU_TIME = '/usr/bin/time';

export interface CliRun {
  args: string[];
  exitCode: number | null;
  signal: string | null;
  /** Spawn → exit of the child, as seen by the bench. */
  wallSec: number;
  /** Peak resident set of the node process (KiB): GNU time's %M, or /proc VmHWM sampled every 50 ms. */
  peakRssKb: number | undefined;
  rssSource: 'time' | 'vmhwm' | undefined;
  userCpuSec: number | undefined;
  sysCpuSec: number | undefined;
  stdoutFile: string;
  stderrTail: string;
}

export interface BacktestSummary {
  events: number;
  detections: number;
  byRule: Record<string, number>;
}

/** The caller's env without settings that would point the CLI at other infrastructure. */
function cliEnv(databaseUrl: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ['KAFKA_BROKERS', 'EVENTSTORE_URL', 'DATABASE_URL', 'LEDGER_DATA_DIR', 'LEDGER_STORE', 'LEDGER_ANOMALY_RULES']) delete env[key];
  return { ...env, LEDGER_STORE: 'postgres', DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' };
}

function vmHwmKb(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs `node <cli> backtest …` as a child process with LEDGER_STORE=postgres on `databaseUrl`;
 * stdout goes to a file (the JSON can be large), stderr to another. Wrapped in GNU time when it is
 * installed (exact peak RSS and CPU of the child), otherwise VmHWM is sampled.
 */
export async function runCli(opts: { root: string; ledgerCli: string; databaseUrl: string; args: string[]; workDir: string; label: string }): Promise<CliRun> {
  const cli = path.resolve(opts.root, opts.ledgerCli);
  if (!fs.existsSync(cli)) throw new Error(`${cli} does not exist: build token-ledger first (npm run build)`);
  const stdoutFile = path.join(opts.workDir, `${opts.label}.stdout.json`);
  const stderrFile = path.join(opts.workDir, `${opts.label}.stderr.log`);
  const timeFile = path.join(opts.workDir, `${opts.label}.time`);
  const useTime = fs.existsSync(GNU_TIME);
  const nodeArgs = [cli, 'backtest', ...opts.args];
  const command = useTime ? GNU_TIME : process.execPath;
  const args = useTime ? ['-f', '%M %e %U %S', '-o', timeFile, process.execPath, ...nodeArgs] : nodeArgs;
  const out = fs.openSync(stdoutFile, 'w');
  const err = fs.openSync(stderrFile, 'w');
  const start = performance.now();
  const child = spawn(command, args, { cwd: opts.root, env: cliEnv(opts.databaseUrl), stdio: ['ignore', out, err] });
  fs.closeSync(out);
  fs.closeSync(err);
  const unregister = registerCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let hwm: number | undefined;
  const sampler = useTime
    ? undefined
    : setInterval(() => {
        const v = child.pid === undefined ? undefined : vmHwmKb(child.pid);
        if (v !== undefined) hwm = Math.max(hwm ?? 0, v);
      }, 50);
  const [exitCode, signal] = await new Promise<[number | null, string | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, sig) => resolve([code, sig]));
  }).finally(() => {
    if (sampler) clearInterval(sampler);
    unregister();
  });
  const wallSec = (performance.now() - start) / 1000;

  let peakRssKb = hwm;
  let userCpuSec: number | undefined;
  let sysCpuSec: number | undefined;
  let rssSource: CliRun['rssSource'] = hwm !== undefined ? 'vmhwm' : undefined;
  if (useTime && fs.existsSync(timeFile)) {
    // GNU time writes "Command exited with non-zero status N" first when the command failed.
    const last = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop() ?? '';
    const [rss, , user, sys] = last.split(/\s+/).map(Number);
    if (Number.isFinite(rss)) {
      peakRssKb = rss;
      rssSource = 'time';
    }
    if (Number.isFinite(user)) userCpuSec = user;
    if (Number.isFinite(sys)) sysCpuSec = sys;
  }
  const stderrTail = fs.readFileSync(stderrFile, 'utf8').trimEnd().split('\n').slice(-15).join('\n');
  return { args: opts.args, exitCode, signal, wallSec, peakRssKb, rssSource, userCpuSec, sysCpuSec, stdoutFile, stderrTail };
}

/** The summary of `backtest --format json` ({"detections": [...], "summary": {...}}). */
export function readSummary(run: CliRun): BacktestSummary {
  if (run.exitCode !== 0) {
    throw new Error(`token-ledger backtest exited with ${run.exitCode ?? run.signal}:\n${run.stderrTail}`);
  }
  let doc: { summary?: BacktestSummary; detections?: unknown[] };
  try {
    doc = JSON.parse(fs.readFileSync(run.stdoutFile, 'utf8')) as typeof doc;
  } catch (error) {
    throw new Error(`token-ledger backtest --format json printed no valid JSON: ${(error as Error).message}`);
  }
  const s = doc.summary;
  if (!s || typeof s.events !== 'number' || typeof s.detections !== 'number' || typeof s.byRule !== 'object') {
    throw new Error('token-ledger backtest --format json: no {summary: {events, detections, byRule}} in its output');
  }
  if (!Array.isArray(doc.detections) || doc.detections.length !== s.detections) {
    throw new Error(`token-ledger backtest --format json: ${doc.detections?.length} detections listed, summary says ${s.detections}`);
  }
  return s;
}
