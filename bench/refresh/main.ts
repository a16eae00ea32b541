/**
 * `npm run bench:refresh`: refresh-token rotation throughput and latency of token-ledger (embedded
 * and PostgreSQL stores) against panva/oidc-provider as a reference, on the same load driver.
 * See bench/refresh/README.md.
 */
import { parseCommandLine, repoRoot, runMain, startDriver } from '../common/driver';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { BenchOptions, isReference, parseOptions, RATE_LIMITS_OFF_ENV, RateLimitMode, TargetName, USAGE } from './args';
import { startKeycloak } from './keycloak';
import { PrerequisiteMissing } from './prerequisites';
import { controlPool, mapLimit } from './http';
import { runLoad } from './load';
import { otlpSinkEnv, startOtlpSink, type OtlpSink } from './otlp-sink';
import { runCleanups } from './processes';
import { attachRatios, benchMeta, CellResult, medianOverRounds, renderTable } from './report';
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
    const ctx = {
      root,
      workDir,
      runId,
      maxChains: Math.max(...opts.chains),
      databaseUrl: opts.databaseUrl,
      startTimeoutMs: opts.startTimeoutSec * 1000,
      ledgerCli: opts.ledgerCli,
      ledgerEnv: { ...opts.ledgerEnv, ...(rateLimits === 'off' ? RATE_LIMITS_OFF_ENV : {}) },
      redis: { url: opts.redisUrl, fsync: opts.redisFsync },
      log: (line: string) => log(`${label}: ${line}`),
    };
    running =
      target === 'keycloak'
        ? await startKeycloak(ctx, { version: opts.keycloakVersion, home: opts.keycloakHome })
        : await startTarget(target, ctx);
    const server = running;
    log(`${label}: ready at ${server.origin} (pid ${server.pid}, log ${server.logFile})`);

    const control = controlPool(server.origin);
    let chains: Chain[];
    let verification: string;
    try {
      verification = await verifyTarget(server, control);
      log(`${label}: pre-flight ok: ${verification}`);
      chains = await mapLimit(chainCount, 8, (i) => server.newChain(String(i)));
      log(`${label}: ${chains.length} chains ready; warm-up ${describeWarmup(opts, target)}, then measuring ${opts.durationSec}s`);
    } finally {
      await control.close().catch(() => undefined);
    }

    const w = opts.warmup;
    const scraper = opts.scrapeMs && target !== 'reference' && target !== 'oidc-provider-redis' && target !== 'keycloak' ? startScraper(server.origin, opts.scrapeMs) : undefined;
    const load = await runLoad(server, chains, {
      warmupMs: w.mode === 'fixed' ? w.seconds * 1000 : 0,
      steady:
        w.mode === 'steady'
          ? {
              windowMs: w.windowSec * 1000,
              windows: w.windows,
              tolerance: w.tolerance,
              capMs: (target === 'keycloak' ? w.keycloakCapSec : w.capSec) * 1000,
              minMs: target === 'keycloak' ? w.keycloakMinSec * 1000 : 0,
            }
          : undefined,
      durationMs: opts.durationSec * 1000,
      requestTimeoutMs: opts.requestTimeoutSec * 1000,
      label,
      progress,
    });
    if (scraper) {
      const s = await scraper.stop();
      log(`${label}: scraped /metrics ${s.scrapes} times (${s.failures} failed), ${s.meanMs.toFixed(1)} ms and ${(s.meanBytes / 1024).toFixed(0)} KiB a scrape`);
    }
    if (load.errors > 0) {
      log(`${label}: ${load.errors} errors in the window: ${JSON.stringify(load.errorKinds)}`);
      for (const sample of load.errorSamples) log(`${label}:   e.g. ${sample}`);
    }
    log(
      `${label}: warm-up ${load.warmupSec.toFixed(1)} s` +
        (load.warmupSteady === undefined ? '' : load.warmupSteady ? ' (steady)' : ' (cap reached, not steady)') +
        (load.warmupWindows.length ? `, windows ${load.warmupWindows.map((r) => r.toFixed(0)).join(' ')} rotations/s` : ''),
    );
    return { target, chains: chainCount, rateLimits, status: 'ok', verification, note: server.note, load };
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    if (err instanceof PrerequisiteMissing) {
      log(`${label}: SKIPPED: ${message}`);
      return { target, chains: chainCount, rateLimits, status: 'skipped', error: message };
    }
    log(`${label}: FAILED: ${message}`);
    return { target, chains: chainCount, rateLimits, status: 'failed', error: message };
  } finally {
    if (running) {
      await running.stop().catch((err: Error) => log(`${label}: stopping server failed: ${err.message}`));
      log(`${label}: server stopped`);
    }
  }
}

/** GET /metrics every `everyMs` (one at a time, like one Prometheus), until stopped. */
function startScraper(origin: string, everyMs: number): { stop(): Promise<{ scrapes: number; failures: number; meanMs: number; meanBytes: number }> } {
  let scrapes = 0;
  let failures = 0;
  let totalMs = 0;
  let totalBytes = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const started = performance.now();
      try {
        const body = await (await fetch(`${origin}/metrics`)).text();
        scrapes++;
        totalBytes += body.length;
      } catch {
        failures++;
      }
      const took = performance.now() - started;
      totalMs += took;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, everyMs - took)));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { scrapes, failures, meanMs: scrapes ? totalMs / scrapes : 0, meanBytes: scrapes ? totalBytes / scrapes : 0 };
    },
  };
}

function describeWarmup(opts: BenchOptions, target?: TargetName): string {
  const w = opts.warmup;
  if (w.mode === 'fixed') return `${w.seconds} s`;
  const cap =
    target === 'keycloak'
      ? `at least ${w.keycloakMinSec} s, cap ${w.keycloakCapSec} s`
      : target
        ? `cap ${w.capSec} s`
        : `cap ${w.capSec} s; keycloak at least ${w.keycloakMinSec} s, cap ${w.keycloakCapSec} s`;
  return `until ${w.windows} consecutive ${w.windowSec} s windows are within ±${(w.tolerance * 100).toFixed(0)} % of their mean and of the ${w.windows} before (${cap})`;
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
  const scrape = opts.scrapeMs ? `/metrics every ${opts.scrapeMs} ms` : 'none';
  const meta = benchMeta({ warmup: describeWarmup(opts), durationSec: opts.durationSec, rounds: opts.rounds, chains: opts.chains, targets: opts.targets, rateLimits: opts.rateLimits, tracing, scrape });
  const results: CellResult[] = [];
  // One server at a time, so targets never share the CPU with each other.
  for (let round = 1; round <= opts.rounds; round++) {
    if (opts.rounds > 1) log(`round ${round} of ${opts.rounds}`);
    for (const target of opts.targets) {
      // The reference has no rate limits of ours; token-ledger rows run once per --rate-limits mode.
      for (const mode of isReference(target) ? [undefined] : opts.rateLimits) {
        for (const chains of opts.chains) {
          const cell = await runCell(target, chains, opts, root, scratch, mode);
          results.push(opts.rounds > 1 ? { ...cell, round } : cell);
        }
      }
    }
  }
  attachRatios(results);

  const failed = results.some((r) => r.status === 'failed');
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
    const medians = opts.rounds > 1 ? medianOverRounds(results) : undefined;
    fs.writeFileSync(opts.jsonFile, `${JSON.stringify({ meta, results, ...(medians ? { medians } : {}) }, null, 2)}\n`);
    log(`results written to ${opts.jsonFile}`);
  }
  return failed ? 1 : 0;
}

runMain('bench:refresh', main);
