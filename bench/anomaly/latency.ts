import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';

import { Pool } from 'undici';

import { PostgresEventStore, type RecordedEvent, type Subscription } from '@token-ledger/event-store';

import { bucketPercentile, histogram, histogramDelta, parsePrometheusText, type BucketPercentile, type Histogram, type Sample } from '../projections/prom';
import { connectAdmin } from '../propagation/kafka';
import { FORM_CONTENT_TYPE, mapLimit, refreshBody, requestJson, stringField } from '../refresh/http';
import { runLoad, type LoadResult } from '../refresh/load';
import { registerCleanup, sleep } from '../refresh/processes';
import { percentile } from '../refresh/stats';
import { startServer, type AnomalyServer } from './server';
import { startGroupsAtEnd } from './kafka';

export const DETECTION_LAG_METRIC = 'token_ledger_anomaly_detection_lag_seconds';
export const ANOMALIES_METRIC = 'token_ledger_anomalies_total';

export interface LatencyOptions {
  root: string;
  scratch: string;
  kafka: boolean;
  brokers: string[];
  chains: number;
  warmupSec: number;
  durationSec: number;
  probeIntervalMs: number;
  missTimeoutSec: number;
  serverRules?: string;
  databaseUrl: string;
  ledgerCli: string;
  startTimeoutSec: number;
  requestTimeoutSec: number;
  log: (line: string) => void;
  progress: (line: string, final?: boolean) => void;
}

/** Exact nearest-rank summary; misses count as +Infinity (slower than anything measured). */
export interface Distribution {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface LatencyResult {
  mode: 'in-process' | 'kafka';
  chains: number;
  warmupSec: number;
  durationSec: number;
  probeIntervalMs: number;
  missTimeoutSec: number;
  /** LEDGER_ANOMALY_RULES of the server, if not the defaults. */
  serverRules?: string;
  /** Probes whose reuse response arrived inside the window. */
  probes: number;
  detected: number;
  /** No AnomalyDetected within missTimeoutSec of the reuse response. */
  missed: number;
  /** Probes whose HTTP steps failed (no t0): not in the distribution. */
  probeErrors: number;
  probeErrorSamples: string[];
  /** AnomalyDetected seen before the reuse response had been read completely (latency < 0). */
  beforeResponse: number;
  /**
   * The issue's measure, append → AnomalyDetected: t1 − tReuse in ms, both seen by the bench's one
   * store subscription (the probe's TokenReuseDetected became visible → its AnomalyDetected did), so
   * the subscription's own delay cancels out. Misses = +Infinity.
   */
  latencyMs: Distribution;
  /** t1 − t0 in ms: reuse response arrived → AnomalyDetected seen (negative when the engine beats the HTTP answer). */
  fromResponseMs: Distribution;
  /** The same per quarter of the window (by when the reuse response arrived): shows a backlog building or draining. */
  quartersMs: Distribution[];
  /**
   * Where the time goes, per detected probe, from the events' own timestamps (ms, wall clocks of
   * the same machine): T = the reuse event's occurredAt (stamped by the server before its append).
   */
  stagesMs: {
    /** T → the reuse response arrived at the bench (append + response). */
    response: Distribution;
    /** T → the engine's detectedAt (= what the server's histogram observes). */
    engine: Distribution;
    /** detectedAt → recorded_at of the AnomalyDetected (start of its append transaction). */
    append: Distribution;
    /** recorded_at → seen by the bench's subscription (NOTIFY + read). */
    observe: Distribution;
  };
  /** Setup probe (before the warm-up): proves the pipeline detects at all; ms, not counted. */
  firstProbeMs: number;
  /** Server side: token_ledger_anomaly_detection_lag_seconds over the window (all detections, not just the probes). */
  server: {
    observations: number;
    meanMs: number;
    p50: BucketPercentile | undefined;
    p95: BucketPercentile | undefined;
    p99: BucketPercentile | undefined;
    histogram: Histogram;
    /** token_ledger_anomalies_total over the window, by rule. */
    anomaliesByRule: Record<string, number>;
  };
  /**
   * Sampled twice a second during the window from the database: how many store positions behind the
   * head each consumer's checkpoint was at most (msg_checkpoints: `anomaly-engine` in-process, the
   * Kafka `relay`…; `read models`: the slowest rm_checkpoints row). The engine on Kafka keeps its
   * offsets in Kafka, so it has no row here.
   */
  maxBehind: Record<string, number>;
  rotationsPerSec: number;
  refreshErrors: number;
  refreshP99Ms: number;
  load: LoadResult;
  /** Every probe's latency (ms, window order; null = missed). */
  samplesMs: Array<number | null>;
}

interface Probe {
  index: number;
  familyId?: string;
  /** performance.now() when the reuse response had been read completely. */
  t0?: number;
  t0Wall?: number;
  /** performance.now() when the bench's subscription handed over the probe's TokenReuseDetected. */
  tReuse?: number;
  /** performance.now() when the bench's subscription handed over the AnomalyDetected. */
  t1?: number;
  t1Wall?: number;
  error?: string;
  anomaly?: { triggerAt: number; detectedAt: number; recordedAt: number };
}

function distribution(values: number[]): Distribution {
  const sorted = Float64Array.from(values).sort();
  const finite = values.filter((v) => Number.isFinite(v));
  return {
    count: values.length,
    min: sorted.length ? sorted[0] : Number.NaN,
    mean: finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : Number.NaN,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : Number.NaN,
  };
}

async function scrape(pool: Pool): Promise<Sample[]> {
  const res = await requestJson(pool, { method: 'GET', path: '/metrics' });
  if (res.status !== 200) throw new Error(`GET /metrics: HTTP ${res.status}`);
  return parsePrometheusText(res.text);
}

function byRule(samples: Sample[] | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples ?? []) if (s.name === ANOMALIES_METRIC && s.labels.rule) out[s.labels.rule] = (out[s.labels.rule] ?? 0) + s.value;
  return out;
}

/**
 * Follows the store from the bench process (its own PostgresEventStore, woken by NOTIFY) and hands
 * every AnomalyDetected of rule reuse_detected to the probe of that family.
 */
class AnomalyWatcher {
  private readonly probes = new Map<string, Probe>();
  private subscription?: Subscription;
  seen = 0;

  constructor(private readonly store: PostgresEventStore) {}

  async start(): Promise<void> {
    const head = await this.store.headPosition();
    this.subscription = this.store.subscribeToAll((e) => this.onEvent(e), {
      after: head,
      onError: (error) => process.stderr.write(`bench: anomaly subscription failed: ${String(error)}\n`),
    });
    await this.subscription.caughtUp;
  }

  watch(familyId: string, probe: Probe): void {
    this.probes.set(familyId, probe);
  }

  private async onEvent(e: RecordedEvent): Promise<void> {
    if (e.type === 'TokenReuseDetected') {
      const probe = this.probes.get((e.metadata as { familyId?: string }).familyId ?? '');
      if (probe && probe.tReuse === undefined) probe.tReuse = performance.now();
      return;
    }
    if (e.type !== 'AnomalyDetected') return;
    const t1 = performance.now();
    const t1Wall = Date.now();
    this.seen++;
    const data = e.data as { rule?: string; trigger?: { occurredAt?: string } };
    const meta = e.metadata as { familyId?: string; occurredAt?: string };
    if (data.rule !== 'reuse_detected' || !meta.familyId) return;
    const probe = this.probes.get(meta.familyId);
    if (!probe || probe.t1 !== undefined) return;
    probe.t1 = t1;
    probe.t1Wall = t1Wall;
    probe.anomaly = {
      triggerAt: Date.parse(data.trigger?.occurredAt ?? ''),
      detectedAt: Date.parse(meta.occurredAt ?? ''),
      recordedAt: e.recordedAt.getTime(),
    };
  }

  async stop(): Promise<void> {
    await this.subscription?.close();
  }
}

/** Issue → refresh → present the first refresh token again (reuse). Sets t0 when the 400 has arrived. */
async function runProbe(
  server: AnomalyServer,
  pool: Pool,
  client: { clientId: string; authorization: string },
  subject: string,
  probe: Probe,
  watcher: AnomalyWatcher,
  timeoutMs: number,
): Promise<void> {
  try {
    const family = await server.issueFamily(client.clientId, subject);
    probe.familyId = family.familyId;
    watcher.watch(family.familyId, probe);
    const headers = { authorization: client.authorization, 'content-type': FORM_CONTENT_TYPE, accept: 'application/json' };
    const signal = AbortSignal.timeout(timeoutMs);
    const first = await requestJson(pool, { method: 'POST', path: server.tokenPath, headers, body: refreshBody(family.refreshToken), signal });
    if (first.status !== 200 || !stringField(first.json, 'refresh_token')) throw new Error(`refresh: HTTP ${first.status} ${first.text.slice(0, 160)}`);
    const res = await pool.request({ method: 'POST', path: server.tokenPath, headers, body: refreshBody(family.refreshToken), signal });
    const text = await res.body.text();
    probe.t0 = performance.now();
    probe.t0Wall = Date.now();
    if (res.statusCode !== 400 || !text.includes('invalid_grant')) throw new Error(`reuse: expected 400 invalid_grant, got HTTP ${res.statusCode} ${text.slice(0, 160)}`);
  } catch (err) {
    probe.t0 = undefined;
    probe.error = (err as Error).message;
  }
}

export async function measureLatency(opts: LatencyOptions): Promise<LatencyResult> {
  const runId = crypto.randomBytes(5).toString('hex');
  const workDir = path.join(opts.scratch, `latency-${runId}`);
  fs.mkdirSync(workDir, { recursive: true });
  const mode = opts.kafka ? 'kafka' : 'in-process';
  const label = `latency (${mode}) ×${opts.chains}`;

  if (opts.kafka) {
    opts.log(`${label}: Kafka at ${opts.brokers.join(',')}: moving the server's consumer groups to the end of events.v1`);
    const admin = await connectAdmin(opts.brokers);
    try {
      await startGroupsAtEnd(admin, (line) => opts.log(`${label}: ${line}`));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  opts.log(`${label}: starting token-ledger serve (postgres${opts.kafka ? ', KAFKA_BROKERS' : ''})`);
  let server: AnomalyServer | undefined;
  let store: PostgresEventStore | undefined;
  let watcher: AnomalyWatcher | undefined;
  let probePool: Pool | undefined;
  let unregisterClose: (() => void) | undefined;
  try {
    server = await startServer({
      root: opts.root,
      workDir,
      runId,
      databaseUrl: opts.databaseUrl,
      ledgerCli: opts.ledgerCli,
      brokers: opts.kafka ? opts.brokers : undefined,
      rulesFile: opts.serverRules,
      startTimeoutMs: opts.startTimeoutSec * 1000,
      log: (line) => opts.log(`${label}: ${line}`),
    });
    const target = server;
    opts.log(`${label}: ready at ${target.origin} (pid ${target.pid}, log ${target.logFile})`);

    store = await PostgresEventStore.open({ url: target.databaseUrl, poolSize: 2 });
    const opened = store;
    unregisterClose = registerCleanup(() => Promise.race([opened.close(), new Promise<void>((r) => setTimeout(r, 2000).unref())]));
    watcher = new AnomalyWatcher(opened);
    await watcher.start();
    const watching = watcher;

    const chains = await mapLimit(opts.chains, 8, (i) => target.newChain(String(i)));
    const probeClient = await target.registerClient(`bench-${runId}-probe`);
    probePool = new Pool(target.origin, { connections: 16, headersTimeout: opts.requestTimeoutSec * 1000, bodyTimeout: opts.requestTimeoutSec * 1000 });
    const pool = probePool;
    const timeoutMs = opts.requestTimeoutSec * 1000;

    // One probe before anything is measured: proves the whole path (engine, append, subscription) works.
    const first: Probe = { index: -1 };
    await runProbe(target, pool, probeClient, `probe-${runId}-setup`, first, watching, timeoutMs);
    if (first.t0 === undefined) throw new Error(`setup probe failed: ${first.error}`);
    const firstDeadline = first.t0 + 30_000;
    while (first.t1 === undefined && performance.now() < firstDeadline) await sleep(10);
    if (first.t1 === undefined) {
      throw new Error(`the anomaly engine recorded no reuse_detected within 30 s of a reuse (log ${target.logFile}):\n${target.tail()}`);
    }
    const firstProbeMs = first.t1 - first.t0;
    opts.log(`${label}: ${chains.length} chains ready; setup probe detected in ${firstProbeMs.toFixed(1)} ms; warm-up ${opts.warmupSec}s, then measuring ${opts.durationSec}s with a probe every ${opts.probeIntervalMs} ms`);

    // The load (warm-up + window) and, inside the window, the probes.
    const start = performance.now();
    const windowStart = start + opts.warmupSec * 1000;
    const windowEnd = windowStart + opts.durationSec * 1000;
    // Probes stop a second before the window ends, so their detections too happen under load.
    const lastProbeStart = windowEnd - Math.min(1000, (opts.durationSec * 1000) / 4);
    let before: Sample[] | undefined;
    const scrapeTimer = setTimeout(() => {
      scrape(target.control).then(
        (s) => (before = s),
        (err: Error) => opts.log(`${label}: scraping /metrics failed: ${err.message}`),
      );
    }, opts.warmupSec * 1000);
    const maxBehind: Record<string, number> = {};
    let sampling = true;
    const sampler = (async () => {
      await sleep(Math.max(0, windowStart - performance.now()));
      while (sampling && performance.now() < windowEnd) {
        const t = performance.now();
        const rows = await opened.sql.query<{ name: string; behind: string | number }>(
          `with head as (select coalesce(max(position), 0) as p from tl_events)
           select name, (select p from head) - position as behind from msg_checkpoints
           union all
           select 'read models', (select p from head) - min(position) from rm_checkpoints`,
        );
        for (const r of rows) if (r.behind !== null) maxBehind[r.name] = Math.max(maxBehind[r.name] ?? 0, Number(r.behind));
        await sleep(Math.max(0, 500 - (performance.now() - t)));
      }
    })();
    const probes: Probe[] = [];
    const probeLoop = (async () => {
      await sleep(Math.max(0, windowStart - performance.now()));
      const inFlight = new Set<Promise<void>>();
      for (let i = 0; ; i++) {
        const due = windowStart + i * opts.probeIntervalMs;
        if (due > lastProbeStart) break;
        await sleep(Math.max(0, due - performance.now()));
        while (inFlight.size >= 32) await Promise.race(inFlight);
        const probe: Probe = { index: i };
        probes.push(probe);
        const p = runProbe(target, pool, probeClient, `probe-${runId}-${i}`, probe, watching, timeoutMs).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await Promise.all(inFlight);
    })();
    let load: LoadResult;
    try {
      load = await runLoad(target, chains, {
        warmupMs: opts.warmupSec * 1000,
        durationMs: opts.durationSec * 1000,
        requestTimeoutMs: timeoutMs,
        label,
        progress: opts.progress,
      });
    } finally {
      clearTimeout(scrapeTimer);
      sampling = false;
      await probeLoop;
      await sampler.catch((err: Error) => opts.log(`${label}: sampling the checkpoints failed: ${err.message}`));
    }

    // Wait for the last detections (bounded by the miss timeout).
    const answered = probes.filter((p) => p.t0 !== undefined);
    const lastT0 = Math.max(0, ...answered.map((p) => p.t0 as number));
    while (answered.some((p) => p.t1 === undefined) && performance.now() < lastT0 + opts.missTimeoutSec * 1000) await sleep(20);
    const after = await scrape(target.control);
    if (!before) throw new Error('no /metrics scrape at the start of the window');

    const missLimitMs = opts.missTimeoutSec * 1000;
    const quarters: number[][] = [[], [], [], []];
    const latencies: number[] = [];
    const fromResponse: number[] = [];
    const samplesMs: Array<number | null> = [];
    const stages = { response: [] as number[], engine: [] as number[], append: [] as number[], observe: [] as number[] };
    let detected = 0;
    let missed = 0;
    let beforeResponse = 0;
    for (const p of answered) {
      const t0 = p.t0 as number;
      const quarter = quarters[Math.min(3, Math.max(0, Math.floor(((t0 - windowStart) / (windowEnd - windowStart)) * 4)))];
      if (p.t1 === undefined || p.t1 - t0 > missLimitMs) {
        missed++;
        quarter.push(Infinity);
        latencies.push(Infinity);
        samplesMs.push(null);
        continue;
      }
      detected++;
      if (p.t1 < t0) beforeResponse++;
      fromResponse.push(p.t1 - t0);
      // The reuse event is always seen before its anomaly (one subscription, global order).
      const ms = p.t1 - (p.tReuse ?? t0);
      latencies.push(ms);
      quarter.push(ms);
      samplesMs.push(+ms.toFixed(3));
      const a = p.anomaly;
      if (a && Number.isFinite(a.triggerAt) && Number.isFinite(a.detectedAt)) {
        stages.response.push((p.t0Wall as number) - a.triggerAt);
        stages.engine.push(a.detectedAt - a.triggerAt);
        stages.append.push(a.recordedAt - a.detectedAt);
        stages.observe.push((p.t1Wall as number) - a.recordedAt);
      }
    }
    const errored = probes.filter((p) => p.t0 === undefined);
    const probeErrorSamples = [...new Set(errored.map((p) => p.error ?? 'unknown'))].slice(0, 5);
    if (detected === 0) throw new Error(`no probe was detected (${answered.length} answered, ${errored.length} failed${probeErrorSamples.length ? `: ${probeErrorSamples[0]}` : ''})`);

    const hAfter = histogram(after, DETECTION_LAG_METRIC);
    if (!hAfter) throw new Error(`GET /metrics has no ${DETECTION_LAG_METRIC} histogram`);
    const h = histogramDelta(hAfter, histogram(before, DETECTION_LAG_METRIC));
    const rulesAfter = byRule(after);
    const rulesBefore = byRule(before);
    const anomaliesByRule: Record<string, number> = {};
    for (const [rule, n] of Object.entries(rulesAfter)) if (n - (rulesBefore[rule] ?? 0) > 0) anomaliesByRule[rule] = n - (rulesBefore[rule] ?? 0);

    return {
      mode,
      chains: opts.chains,
      warmupSec: opts.warmupSec,
      durationSec: opts.durationSec,
      probeIntervalMs: opts.probeIntervalMs,
      missTimeoutSec: opts.missTimeoutSec,
      serverRules: opts.serverRules,
      probes: answered.length,
      detected,
      missed,
      probeErrors: errored.length,
      probeErrorSamples,
      beforeResponse,
      latencyMs: distribution(latencies),
      fromResponseMs: distribution(fromResponse),
      quartersMs: quarters.map(distribution),
      stagesMs: {
        response: distribution(stages.response),
        engine: distribution(stages.engine),
        append: distribution(stages.append),
        observe: distribution(stages.observe),
      },
      firstProbeMs,
      server: {
        observations: h.count,
        meanMs: h.count > 0 ? (h.sum / h.count) * 1000 : Number.NaN,
        p50: bucketPercentile(h, 50),
        p95: bucketPercentile(h, 95),
        p99: bucketPercentile(h, 99),
        histogram: h,
        anomaliesByRule,
      },
      maxBehind,
      rotationsPerSec: load.rotationsPerSec,
      refreshErrors: load.errors,
      refreshP99Ms: load.latencyMs.p99,
      load,
      samplesMs,
    };
  } finally {
    await probePool?.close().catch(() => undefined);
    await watcher?.stop().catch(() => undefined);
    unregisterClose?.();
    await store?.close().catch(() => undefined);
    if (server) {
      await server.stop().catch((err: Error) => opts.log(`${label}: stopping the server failed: ${err.message}`));
      opts.log(`${label}: server stopped`);
    }
  }
}
