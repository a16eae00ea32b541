import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { Pool } from 'undici';

import { controlPool, mapLimit, requestJson } from '../refresh/http';
import { runLoad, type LoadResult } from '../refresh/load';
import { sleep } from '../refresh/processes';
import { startTarget, type RunningTarget } from '../refresh/targets';
import { bucketPercentile, histogram, histogramDelta, parsePrometheusText, sampleValue, type BucketPercentile, type Histogram, type Sample } from './prom';

export const LAG_METRIC = 'token_ledger_projection_lag_seconds';

export interface LagOptions {
  root: string;
  scratch: string;
  chains: number;
  warmupSec: number;
  durationSec: number;
  databaseUrl: string;
  ledgerCli: string;
  startTimeoutSec: number;
  requestTimeoutSec: number;
  log: (line: string) => void;
  progress: (line: string, final?: boolean) => void;
}

export interface LagResult {
  chains: number;
  durationSec: number;
  rotationsPerSec: number;
  refreshErrors: number;
  refreshP99Ms: number;
  /** Lag observations made between the scrapes at the start and at the end of the window. */
  observations: number;
  meanLagMs: number;
  p50: BucketPercentile | undefined;
  p95: BucketPercentile | undefined;
  p99: BucketPercentile | undefined;
  /** The window's histogram (bucket upper bound in seconds → observations in that bucket and below). */
  histogram: Histogram;
  eventsProjectedPerSec: number;
  /**
   * Sampled once a second during the window from the server's gauges
   * (token_ledger_projection_behind_positions, = events on PostgreSQL; and _behind_seconds).
   */
  maxBehindEvents: number;
  maxBehindSeconds: number;
  /** Waiting for the read models to reach the head after the window (bounded). */
  caughtUpAfterMs: number | undefined;
  load: LoadResult;
}

async function scrape(pool: Pool): Promise<Sample[]> {
  const res = await requestJson(pool, { method: 'GET', path: '/metrics' });
  if (res.status !== 200) throw new Error(`GET /metrics: HTTP ${res.status}`);
  return parsePrometheusText(res.text);
}

/** Waits (bounded) until /readyz reports the read models at the head; returns how long it took. */
async function waitCaughtUp(pool: Pool, timeoutMs: number): Promise<number | undefined> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const res = await requestJson(pool, { method: 'GET', path: '/readyz' }).catch(() => undefined);
    // /readyz: { projections: { position, head, ... } } (the read models' checkpoint and the store's head)
    const p = (res?.json as { projections?: { position?: unknown; head?: unknown } } | undefined)?.projections;
    if (typeof p?.position === 'number' && typeof p.head === 'number' && p.position >= p.head) return Date.now() - start;
    await sleep(20);
  }
  return undefined;
}

export async function measureLag(opts: LagOptions): Promise<LagResult> {
  const runId = crypto.randomBytes(5).toString('hex');
  const workDir = path.join(opts.scratch, `lag-${runId}`);
  fs.mkdirSync(workDir, { recursive: true });
  const label = `lag ×${opts.chains}`;
  opts.log(`${label}: starting token-ledger (postgres)`);
  let server: RunningTarget | undefined;
  let control: Pool | undefined;
  try {
    server = await startTarget('postgres', {
      root: opts.root,
      workDir,
      runId,
      maxChains: opts.chains,
      databaseUrl: opts.databaseUrl,
      startTimeoutMs: opts.startTimeoutSec * 1000,
      ledgerCli: opts.ledgerCli,
      log: (line) => opts.log(`${label}: ${line}`),
    });
    const target = server;
    opts.log(`${label}: ready at ${target.origin} (pid ${target.pid}, log ${target.logFile})`);
    control = controlPool(target.origin);
    const pool = control;
    const chains = await mapLimit(opts.chains, 8, (i) => target.newChain(String(i)));
    if ((await waitCaughtUp(pool, 10_000)) === undefined) throw new Error('read models did not catch up with the setup events within 10 s');
    opts.log(`${label}: ${chains.length} chains ready; warm-up ${opts.warmupSec}s, then measuring ${opts.durationSec}s`);

    // Scrape at the start of the window, then once a second for the "behind" gauges.
    let before: Sample[] | undefined;
    let maxBehindEvents = 0;
    let maxBehindSeconds = 0;
    let sampling = true;
    const sampler = (async () => {
      await sleep(opts.warmupSec * 1000);
      const deadline = Date.now() + opts.durationSec * 1000;
      while (sampling && Date.now() < deadline) {
        const t = Date.now();
        const samples = await scrape(pool);
        before ??= samples;
        const behind = sampleValue(samples, 'token_ledger_projection_behind_positions') ?? sampleValue(samples, 'token_ledger_projection_behind_events');
        maxBehindEvents = Math.max(maxBehindEvents, behind ?? 0);
        maxBehindSeconds = Math.max(maxBehindSeconds, sampleValue(samples, 'token_ledger_projection_behind_seconds') ?? 0);
        await sleep(Math.max(0, 1000 - (Date.now() - t)));
      }
    })();
    let load: LoadResult;
    try {
      load = await runLoad(target, chains, {
        warmupMs: opts.warmupSec * 1000,
        durationMs: opts.durationSec * 1000,
        requestTimeoutMs: opts.requestTimeoutSec * 1000,
        label,
        progress: opts.progress,
      });
    } finally {
      sampling = false;
      await sampler.catch((err: Error) => opts.log(`${label}: scraping /metrics failed: ${err.message}`));
    }
    // The last events of the window are projected a little after it: let them be observed.
    const caughtUpAfterMs = await waitCaughtUp(pool, 10_000);
    const after = await scrape(pool);
    if (!before) throw new Error('no /metrics scrape at the start of the window');
    const hAfter = histogram(after, LAG_METRIC);
    if (!hAfter) throw new Error(`GET /metrics has no ${LAG_METRIC} histogram`);
    const h = histogramDelta(hAfter, histogram(before, LAG_METRIC));
    const projected = (sampleValue(after, 'token_ledger_projected_events_total') ?? 0) - (sampleValue(before, 'token_ledger_projected_events_total') ?? 0);
    return {
      chains: opts.chains,
      durationSec: opts.durationSec,
      rotationsPerSec: load.rotationsPerSec,
      refreshErrors: load.errors,
      refreshP99Ms: load.latencyMs.p99,
      observations: h.count,
      meanLagMs: h.count > 0 ? (h.sum / h.count) * 1000 : Number.NaN,
      p50: bucketPercentile(h, 50),
      p95: bucketPercentile(h, 95),
      p99: bucketPercentile(h, 99),
      histogram: h,
      eventsProjectedPerSec: projected / opts.durationSec,
      maxBehindEvents,
      maxBehindSeconds,
      caughtUpAfterMs,
      load,
    };
  } finally {
    await control?.close().catch(() => undefined);
    if (server) {
      await server.stop().catch((err: Error) => opts.log(`${label}: stopping server failed: ${err.message}`));
      opts.log(`${label}: server stopped`);
    }
  }
}
