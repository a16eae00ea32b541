/**
 * `npm run bench:refresh`: refresh-token rotation throughput and latency of token-ledger (embedded
 * and PostgreSQL stores) against panva/oidc-provider as a reference, on the same load driver.
 * See bench/refresh/README.md.
 */
import { parseCommandLine, repoRoot, runMain, startDriver } from '../common/driver';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { BenchOptions, parseOptions, RATE_LIMITS_OFF_ENV, RateLimitMode, TargetName, USAGE } from './args';
import { controlPool, mapLimit } from './http';
import { runLoad } from './load';
import { otlpSinkEnv, startOtlpSink, type OtlpSink } from './otlp-sink';
import { runCleanups } from './processes';
import { attachRatios, benchMeta, CellResult, renderTable } from './report';
import { Chain, RunningTarget, startTarget } from './targets';
import { verifyTarget } from './verify';
import { log, progress } from '../common/console';

async function runCell(target: TargetName, chainCount: number, opts: BenchOptions, root: string, scratch: string, rateLimits?: RateLimitMode): Promise<CellResult> {
  const label = `${target}${rateLimits === 'off' ? ' (limits off)' : ''} ×${chainCount}`;
  const runId = crypto.randomBytes(5).toString('hex');
  const workDir = path.join(scratch, `${target}-${chainCount}-${runId}`);
  fs.mkdirSync(workDir, { recursive: true });

  log(`${label}: starting server`);
  let running: RunningTarget | undefined;
  try {
    running = await startTarget(target, {
      root,
      workDir,
      runId,
      maxChains: Math.max(...opts.chains),
      databaseUrl: opts.databaseUrl,
      startTimeoutMs: opts.startTimeoutSec * 1000,
      ledgerCli: opts.ledgerCli,
      ledgerEnv: { ...opts.ledgerEnv, ...(rateLimits === 'off' ? RATE_LIMITS_OFF_ENV : {}) },
      log: (line) => log(`${label}: ${line}`),
    });
    const server = running;
    log(`${label}: ready at ${server.origin} (pid ${server.pid}, log ${server.logFile})`);

    const control = controlPool(server.origin);
    let chains: Chain[];
    let verification: string;
    try {
      verification = await verifyTarget(server, control);
      log(`${label}: pre-flight ok: ${verification}`);
      chains = await mapLimit(chainCount, 8, (i) => server.newChain(String(i)));
      log(`${label}: ${chains.length} chains ready; warm-up ${opts.warmupSec}s, then measuring ${opts.durationSec}s`);
    } finally {
      await control.close().catch(() => undefined);
    }

    const load = await runLoad(server, chains, {
      warmupMs: opts.warmupSec * 1000,
      durationMs: opts.durationSec * 1000,
      requestTimeoutMs: opts.requestTimeoutSec * 1000,
      label,
      progress,
    });
    if (load.errors > 0) {
      log(`${label}: ${load.errors} errors in the window: ${JSON.stringify(load.errorKinds)}`);
      for (const sample of load.errorSamples) log(`${label}:   e.g. ${sample}`);
    }
    return { target, chains: chainCount, rateLimits, status: 'ok', verification, load };
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    log(`${label}: FAILED: ${message}`);
    return { target, chains: chainCount, rateLimits, status: 'failed', error: message };
  } finally {
    if (running) {
      await running.stop().catch((err: Error) => log(`${label}: stopping server failed: ${err.message}`));
      log(`${label}: server stopped`);
    }
  }
}

async function main(): Promise<number> {
  const opts = parseCommandLine<BenchOptions>('bench:refresh', USAGE, parseOptions);
  if (typeof opts === 'number') return opts;
  const { scratch, keepScratch } = startDriver('bench:refresh');
  const root = repoRoot();

  let sink: OtlpSink | undefined;
  if (opts.otlpSink) {
    sink = await startOtlpSink();
    opts.ledgerEnv = { ...otlpSinkEnv(sink.endpoint), ...opts.ledgerEnv };
    log(`tracing on: OTLP sink at ${sink.endpoint}`);
  }
  const tracingEnv = Object.entries(opts.ledgerEnv).filter(([k]) => k.startsWith('OTEL_'));
  const tracing = tracingEnv.length === 0 ? 'off' : tracingEnv.map(([k, v]) => `${k}=${v}`).join(' ');
  const meta = benchMeta({ warmupSec: opts.warmupSec, durationSec: opts.durationSec, chains: opts.chains, targets: opts.targets, rateLimits: opts.rateLimits, tracing });
  const results: CellResult[] = [];
  // One server at a time, so targets never share the CPU with each other.
  for (const target of opts.targets) {
    // The reference has no rate limits of ours; token-ledger rows run once per --rate-limits mode.
    for (const mode of target === 'reference' ? [undefined] : opts.rateLimits) {
      for (const chains of opts.chains) {
        results.push(await runCell(target, chains, opts, root, scratch, mode));
      }
    }
  }
  attachRatios(results);

  const failed = results.some((r) => r.status !== 'ok');
  if (failed) {
    keepScratch();
    log(`server logs kept in ${scratch}`);
  }
  await runCleanups();
  if (sink) {
    const { requests, bytes } = sink.stats();
    log(`OTLP sink: ${requests} exports, ${(bytes / 1e6).toFixed(1)} MB received`);
    await sink.close();
  }

  process.stdout.write(`\n${renderTable(meta, results)}\n`);
  if (opts.jsonFile) {
    fs.writeFileSync(opts.jsonFile, `${JSON.stringify({ meta, results }, null, 2)}\n`);
    log(`results written to ${opts.jsonFile}`);
  }
  return failed ? 1 : 0;
}

runMain('bench:refresh', main);
