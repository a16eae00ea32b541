import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { requiredBackends } from '../backends';
import { freePort } from './free-port';

/**
 * Prometheus's own binaries (Debian's `prometheus` package: `prometheus` and `promtool`), found on
 * PATH. Like the backends of ../backends.ts: a suite that needs them is skipped with the reason when
 * they are missing, and fails instead when REQUIRE_BACKENDS names `prometheus` (CI does).
 */
export type PrometheusTool = 'prometheus' | 'promtool';

export function findTool(tool: PrometheusTool): { available: true; path: string } | { available: false; reason: string } {
  const probe = spawnSync(tool, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return { available: false, reason: `prometheus unavailable: no ${tool} on PATH (apt-get install prometheus)` };
  return { available: true, path: tool };
}

/** `describe` for a suite that runs the given Prometheus binaries (same contract as describeWithBackend). */
export function describeWithPrometheus(tools: PrometheusTool[], title: string, body: () => void): void {
  const missing = tools.map(findTool).find((t) => !t.available) as { available: false; reason: string } | undefined;
  if (!missing) {
    describe(title, body);
    return;
  }
  if (requiredBackends().has('prometheus')) {
    describe(title, () => {
      it('requires prometheus', () => {
        throw new Error(`${missing.reason}, and REQUIRE_BACKENDS=${process.env.REQUIRE_BACKENDS} requires it`);
      });
    });
    return;
  }
  console.warn(`${title}: skipped: ${missing.reason}`);
  describe.skip(`${title} (skipped: ${missing.reason})`, body);
}

/** Runs promtool; resolves with its output whatever the exit status (the caller asserts on it). */
export function promtool(args: string[], cwd: string): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 60_000 });
  return { status: run.status, output: `${run.stdout ?? ''}${run.stderr ?? ''}` };
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** A real Prometheus server on a free loopback port, with its own config and data directory. */
export interface RunningPrometheus {
  url: string;
  /** Instant query at `time` (unix seconds; default now). Throws with Prometheus's error text on a bad expression. */
  query(expr: string, time?: number): Promise<PromSample[]>;
  /** GET an API path (e.g. /api/v1/targets) and return its `data`. */
  api<T = any>(pathAndQuery: string): Promise<T>;
  logs(): string;
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  /** job name → host:port targets scraped at /metrics. */
  jobs: Record<string, string[]>;
  ruleFiles?: string[];
  scrapeIntervalSeconds?: number;
}

export async function startPrometheus(opts: PrometheusOptions): Promise<RunningPrometheus> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tl-prom-'));
  const port = await freePort();
  const interval = `${opts.scrapeIntervalSeconds ?? 1}s`;
  // YAML is a superset of JSON: the config is written as JSON.
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
    rule_files: opts.ruleFiles ?? [],
    scrape_configs: Object.entries(opts.jobs).map(([job, targets]) => ({ job_name: job, static_configs: [{ targets }] })),
  };
  const configFile = path.join(dir, 'prometheus.yml');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn(
    'prometheus',
    [`--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', '--web.enable-lifecycle'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (d) => (output += String(d)));
  child.stderr?.on('data', (d) => (output += String(d)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited with ${child.exitCode}: ${output}`);
    }
    const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus not ready on ${url} within 20 s: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const api = async (pathAndQuery: string) => {
    const res = await fetch(`${url}${pathAndQuery}`);
    const body = (await res.json()) as { status: string; data?: any; error?: string; errorType?: string };
    if (body.status !== 'success') throw new Error(`${pathAndQuery}: ${body.errorType}: ${body.error}`);
    return body.data;
  };
  return {
    url,
    api,
    async query(expr, time) {
      const params = new URLSearchParams({ query: expr, ...(time === undefined ? {} : { time: String(time) }) });
      const data = await api(`/api/v1/query?${params}`);
      if (data.resultType === 'scalar') return [{ metric: {}, value: data.result }];
      return data.result as PromSample[];
    },
    logs: () => output,
    stop,
  };
}
