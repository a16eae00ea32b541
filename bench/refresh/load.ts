import { setMaxListeners } from 'node:events';

import { Pool } from 'undici';

import { machineBusyCpuSeconds, processCpuSeconds, selfCpuSeconds } from './cpu';
import { dispatchText, FORM_CONTENT_TYPE, refreshBody } from './http';
import { isSteady, LatencySummary, SampleBuffer, summarize } from './stats';
import { Chain, RunningTarget } from './targets';

export interface LoadOptions {
  /** Fixed warm-up; ignored when `steady` is given. */
  warmupMs: number;
  /**
   * Warm up until throughput is steady: consecutive windows of `windowMs` until the last `windows`
   * of them are all within ±tolerance of their mean (and at least one rotation each), or `capMs`.
   */
  steady?: { windowMs: number; windows: number; tolerance: number; capMs: number; minMs?: number };
  durationMs: number;
  requestTimeoutMs: number;
  label: string;
  progress: (line: string, final?: boolean) => void;
}

export interface LoadResult {
  chains: number;
  measuredSec: number;
  /** Successful rotations completed inside the measured window. */
  ok: number;
  /** Failed refreshes (non-200, bad body, token not rotated, network) completed inside the window. */
  errors: number;
  errorKinds: Record<string, number>;
  errorSamples: string[];
  warmupOk: number;
  warmupErrors: number;
  /** How long the warm-up ran, and whether it ended because throughput was steady (or hit the cap). */
  warmupSec: number;
  warmupSteady: boolean | undefined;
  /** Rotations/s of each warm-up window (steady warm-up only). */
  warmupWindows: number[];
  /** Chains that had to start a new family/grant after an error (setup time is inside the window). */
  chainRestarts: number;
  rotationsPerSec: number;
  latencyMs: LatencySummary;
  /** Successful rotations per second of the measured window, in order. */
  perSecond: number[];
  /**
   * Rate over the last fifth of the window ÷ rate over the first fifth (whole seconds, at least one
   * each). Well below 1 means the server slows down as chains grow longer or data accumulates.
   */
  trend: number;
  /** CPU of the server process during the measured window, 100 = one core (Linux only). */
  serverCpuPct: number | undefined;
  driverCpuPct: number;
  /**
   * CPU used during the window by everything except the server and the driver (other processes on
   * the machine; for the postgres target this includes the database), 100 = one core.
   */
  otherCpuPct: number | undefined;
}

const NS_PER_MS = 1_000_000n;

/**
 * Closed-loop load: every chain sends one refresh, waits for the answer, and presents the refresh
 * token it got back; `chains` requests are in flight at any time, one undici connection per chain.
 * Warm-up first (discarded), then the measured window. A request counts towards the window when it
 * completes inside it; its latency is measured with process.hrtime.bigint around request + body.
 * No request starts after the window ends; anything still in flight is aborted
 * `requestTimeoutMs` later at the latest.
 */
export async function runLoad(target: RunningTarget, chains: Chain[], opts: LoadOptions): Promise<LoadResult> {
  const pool = new Pool(target.origin, {
    connections: chains.length,
    pipelining: 1,
    headersTimeout: opts.requestTimeoutMs,
    bodyTimeout: opts.requestTimeoutMs,
    keepAliveTimeout: 30_000,
  });
  const hardStop = new AbortController();
  // every chain listens on the signal (to abort its request in flight)
  setMaxListeners(chains.length * 4 + 16, hardStop.signal);

  const samples = new SampleBuffer();
  const durationSec = opts.durationMs / 1000;
  const perSecond = new Array<number>(Math.ceil(durationSec)).fill(0);
  const errorKinds: Record<string, number> = {};
  const errorSamples: string[] = [];
  let ok = 0;
  let errors = 0;
  let warmupOk = 0;
  let warmupErrors = 0;
  let chainRestarts = 0;

  const t0 = process.hrtime.bigint();
  // Until the warm-up ends, the window is "never": every completion counts as warm-up.
  const NEVER = 1n << 62n;
  let measureStart = NEVER;
  let measureEnd = NEVER;
  let warmupSteady: boolean | undefined;
  const warmupWindows: number[] = [];

  type CpuSnapshot = { at: bigint; server: number | undefined; self: number; machine: number | undefined };
  let cpuAtStart: CpuSnapshot | undefined;
  let cpuAtEnd: CpuSnapshot | undefined;
  const snapshot = (): CpuSnapshot => ({
    at: process.hrtime.bigint(),
    server: processCpuSeconds(target.pid),
    self: selfCpuSeconds(),
    machine: machineBusyCpuSeconds(),
  });
  const timers: NodeJS.Timeout[] = [];
  function startWindow(): void {
    measureStart = process.hrtime.bigint();
    measureEnd = measureStart + BigInt(Math.round(opts.durationMs)) * NS_PER_MS;
    cpuAtStart = snapshot();
    timers.push(
      setTimeout(() => (cpuAtEnd = snapshot()), opts.durationMs),
      setTimeout(() => hardStop.abort(), opts.durationMs + opts.requestTimeoutMs),
    );
  }
  const steady = opts.steady;
  if (steady) {
    let windowStartOk = 0;
    const tick = setInterval(() => {
      warmupWindows.push(((warmupOk - windowStartOk) * 1000) / steady.windowMs);
      windowStartOk = warmupOk;
      const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6 + steady.windowMs / 2;
      const steadyNow = elapsedMs >= (steady.minMs ?? 0) && isSteady(warmupWindows, steady.windows, steady.tolerance);
      const capped = elapsedMs >= steady.capMs;
      if (steadyNow || capped) {
        clearInterval(tick);
        warmupSteady = steadyNow;
        startWindow();
      }
    }, steady.windowMs);
    timers.push(tick);
  } else if (opts.warmupMs > 0) {
    timers.push(setTimeout(startWindow, opts.warmupMs));
  } else {
    startWindow();
  }
  const progressTimer = setInterval(() => {
    const now = process.hrtime.bigint();
    if (now < measureStart) {
      const rates = warmupWindows.slice(-3).map((r) => r.toFixed(0)).join(', ');
      opts.progress(
        `${opts.label}: warm-up ${(Number(now - t0) / 1e9).toFixed(0)}s, ${warmupOk} rotations, ${warmupErrors} errors` +
          (rates ? ` (last windows ${rates}/s)` : ''),
      );
    } else {
      const elapsed = Math.min(durationSec, Number(now - measureStart) / 1e9);
      opts.progress(
        `${opts.label}: ${elapsed.toFixed(0)}/${durationSec}s, ${ok} rotations ` +
          `(${(ok / Math.max(elapsed, 1e-9)).toFixed(0)}/s), ${errors} errors`,
      );
    }
  }, 1000);

  function recordError(kind: string, finish: bigint, detail: string): void {
    if (finish < measureStart) {
      warmupErrors++;
    } else if (finish <= measureEnd) {
      errors++;
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
    } else {
      return;
    }
    // one example per kind of error, at most five kinds
    if (errorSamples.length < 5 && !errorSamples.some((e) => e.startsWith(`${kind}: `))) {
      errorSamples.push(`${kind}: ${detail}`.slice(0, 300));
    }
  }

  async function chainLoop(chain: Chain): Promise<void> {
    // The hard stop aborts the request in flight (undici hands each request's abort to dispatchText).
    let abortInFlight: ((err?: Error) => void) | undefined;
    const onHardStop = () => abortInFlight?.(new Error('the measured window ended'));
    hardStop.signal.addEventListener('abort', onHardStop, { once: true });
    const headers = {
      authorization: chain.authorization,
      'content-type': FORM_CONTENT_TYPE,
      accept: 'application/json',
    };
    while (process.hrtime.bigint() < measureEnd) {
      const start = process.hrtime.bigint();
      let failed: { kind: string; detail: string } | undefined;
      let finish: bigint;
      try {
        const res = await dispatchText(
          pool,
          { method: 'POST', path: target.tokenPath, headers, body: refreshBody(chain.refreshToken) },
          (abort) => (abortInFlight = abort),
        );
        const text = res.text;
        finish = process.hrtime.bigint();
        if (res.status !== 200) {
          let code = '';
          try {
            const parsed: unknown = JSON.parse(text);
            if (typeof parsed === 'object' && parsed !== null && 'error' in parsed) code = ` ${String(parsed.error)}`;
          } catch {
            /* not JSON */
          }
          failed = { kind: `HTTP ${res.status}${code}`, detail: text.slice(0, 200) };
        } else {
          let next: unknown;
          let access: unknown;
          try {
            const parsed = JSON.parse(text) as { refresh_token?: unknown; access_token?: unknown };
            next = parsed.refresh_token;
            access = parsed.access_token;
          } catch {
            /* handled below */
          }
          if (typeof next !== 'string' || typeof access !== 'string') {
            failed = { kind: 'bad 200 body', detail: text.slice(0, 200) };
          } else if (next === chain.refreshToken) {
            failed = { kind: 'refresh token not rotated', detail: '' };
          } else {
            chain.refreshToken = next;
          }
        }
      } catch (err) {
        finish = process.hrtime.bigint();
        const e = err as Error & { code?: string };
        if (hardStop.signal.aborted) return;
        failed = { kind: `network ${e.code ?? e.name}`, detail: e.message };
      }

      if (!failed) {
        if (finish < measureStart) {
          warmupOk++;
        } else if (finish <= measureEnd) {
          ok++;
          samples.push(Number(finish - start) / 1e6);
          const bucket = Math.min(perSecond.length - 1, Math.floor(Number(finish - measureStart) / 1e9));
          perSecond[bucket]++;
        }
        continue;
      }

      recordError(failed.kind, finish, failed.detail);
      // The chain's token is dead or in an unknown state: start a new family/grant on the same client.
      while (process.hrtime.bigint() < measureEnd) {
        try {
          await target.restartChain(chain);
          chainRestarts++;
          break;
        } catch (err) {
          recordError('chain restart failed', process.hrtime.bigint(), (err as Error).message);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
  }

  try {
    await Promise.all(chains.map((chain) => chainLoop(chain)));
  } finally {
    clearInterval(progressTimer);
    for (const t of timers) clearTimeout(t);
    await pool.destroy().catch(() => undefined);
  }

  const warmupSec = Number((measureStart === NEVER ? process.hrtime.bigint() : measureStart) - t0) / 1e9;
  const end = cpuAtEnd ?? snapshot();
  const begin = cpuAtStart ?? end;
  const wallSec = Number(end.at - begin.at) / 1e9 || durationSec;
  const serverCpuPct =
    begin.server !== undefined && end.server !== undefined ? ((end.server - begin.server) / wallSec) * 100 : undefined;
  const driverCpuPct = ((end.self - begin.self) / wallSec) * 100;
  const otherCpuPct =
    begin.machine !== undefined && end.machine !== undefined && serverCpuPct !== undefined
      ? Math.max(0, ((end.machine - begin.machine) / wallSec) * 100 - serverCpuPct - driverCpuPct)
      : undefined;

  const latencyMs = summarize(samples);
  const edge = Math.max(1, Math.floor(perSecond.length / 5));
  const rate = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  // the last bucket may be a partial second when the duration is fractional
  const full = durationSec % 1 === 0 ? perSecond : perSecond.slice(0, -1);
  const trend = full.length >= 2 ? rate(full.slice(-edge)) / rate(full.slice(0, edge)) : Number.NaN;
  opts.progress(
    `${opts.label}: ${(ok / durationSec).toFixed(0)} rotations/s, p99 ${latencyMs.p99.toFixed(2)} ms, ${errors} errors ` +
      `(server CPU ${serverCpuPct === undefined ? '?' : serverCpuPct.toFixed(0)}%, driver CPU ${driverCpuPct.toFixed(0)}%, ` +
      `other CPU ${otherCpuPct === undefined ? '?' : otherCpuPct.toFixed(0)}%)`,
    true,
  );
  return {
    chains: chains.length,
    measuredSec: durationSec,
    ok,
    errors,
    errorKinds,
    errorSamples,
    warmupOk,
    warmupErrors,
    warmupSec,
    warmupSteady,
    warmupWindows,
    chainRestarts,
    rotationsPerSec: ok / durationSec,
    latencyMs,
    perSecond,
    trend,
    serverCpuPct,
    driverCpuPct,
    otherCpuPct,
  };
}
