import { randomUUID } from 'node:crypto';
import { SSF_PUSH } from '@token-ledger/domain';
import type { SqlClient } from '@token-ledger/event-store';
import { backoffDelay, DEFAULT_BACKOFF, retryAfterMs, type BackoffSettings } from './backoff';
import { deleteDelivered, deliveredThenWindow, dueStreams, leaseAndWindow, markRefused, pushWindow, releaseLease, scheduleRetry, type OutboxEntry, type PushWindow } from './outbox';
import { SET_MEDIA_TYPE, signSet, type SetSigner } from './set-claims';

export type PushOutcome = 'delivered' | 'refused' | 'retried';

export interface PushDeliveryOptions {
  sql: SqlClient;
  signer: SetSigner;
  /** The receiver's Authorization header value from its sealed form (LedgerSecrets.openField). */
  openAuthorization: (sealed: string) => string;
  backoff?: BackoffSettings;
  /** Per request; default 10 s. */
  timeoutMs?: number;
  /** How often due SETs are looked for without a wake-up (retries, other instances' rows); default 1 s. */
  scanIntervalMs?: number;
  /**
   * SETs read, signed and sent per window (default 64): they go out one after another with no
   * database round trip between them; the delivered ones are deleted in one statement at the end of
   * the window. A crash within a window re-sends at most that many SETs (same jti).
   */
  windowSize?: number;
  /** A window also ends after this long (default 250 ms), so a paused or disabled stream stops soon and deletions are not held long. */
  windowMs?: number;
  /** This instance's name in ssf_leases; default a random id. */
  owner?: string;
  random?: () => number;
  onOutcome?: (outcome: PushOutcome, info: { streamId: string; jti: string; status?: number; error?: string; attempts: number; createdAt: Date }) => void;
  onError?: (error: unknown) => void;
}

/**
 * RFC 8935 push: one worker per stream delivers its outbox strictly in order (the next SET only once
 * the current one is delivered or refused). 2xx = delivered (row deleted); 400 = refused by the
 * receiver (recorded, row kept as failed, next SET); anything else — 401/403/404/5xx, timeout,
 * connection refused — is retried with exponential backoff and jitter, for as long as the stream is
 * enabled. Across instances on one database a lease row (ssf_leases, expiring) lets one instance at a
 * time push a stream. Woken in-process by the outbox consumer, and by a periodic scan otherwise.
 * Works in windows (windowSize rows read at once, POSTed back to back, deleted together): no database
 * round trip between two POSTs of a stream, and order still holds since a window stops at the first
 * SET that is neither delivered nor refused.
 */
export class PushDelivery {
  private readonly owner: string;
  private readonly backoff: BackoffSettings;
  private readonly timeoutMs: number;
  private readonly leaseMs: number;
  private readonly workers = new Map<string, Promise<void>>();
  /** Streams woken while their worker was running: it goes round once more. */
  private readonly again = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly aborts = new Set<AbortController>();
  private scanTimer?: NodeJS.Timeout;
  private stopped = true;

  constructor(private readonly options: PushDeliveryOptions) {
    this.owner = options.owner ?? randomUUID();
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    // Longer than any one attempt, so a lease never lapses while its holder is still sending.
    this.leaseMs = this.timeoutMs + 15_000;
  }

  start(): void {
    this.stopped = false;
    const scan = () => {
      if (this.stopped) return;
      void dueStreams(this.options.sql, SSF_PUSH)
        .then((ids) => this.wake(ids), (error) => this.options.onError?.(error))
        .finally(() => {
          if (!this.stopped) this.scanTimer = setTimeout(scan, this.options.scanIntervalMs ?? 1000);
          this.scanTimer?.unref();
        });
    };
    scan();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.scanTimer);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const a of this.aborts) a.abort();
    await Promise.allSettled([...this.workers.values()]);
  }

  /** New rows (or a due retry) for these streams. */
  wake(streamIds: Iterable<string>): void {
    if (this.stopped) return;
    for (const id of streamIds) {
      if (this.workers.has(id)) {
        this.again.add(id);
        continue;
      }
      const worker = this.run(id)
        .catch((error) => {
          this.options.onError?.(error);
          this.later(id, this.backoff.minMs);
        })
        .finally(() => {
          this.workers.delete(id);
          if (this.again.delete(id)) this.wake([id]);
        });
      this.workers.set(id, worker);
    }
  }

  private later(streamId: string, ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timers.get(streamId));
    const t = setTimeout(() => {
      this.timers.delete(streamId);
      this.wake([streamId]);
    }, Math.max(0, ms));
    t.unref();
    this.timers.set(streamId, t);
  }

  private async run(streamId: string): Promise<void> {
    const sql = this.options.sql;
    const size = this.options.windowSize ?? 64;
    const windowMs = this.options.windowMs ?? 250;
    let leased = false;
    /** performance.now() until which our lease certainly holds (renewed at half its length). */
    let leaseFresh = -Infinity;
    let window: PushWindow | undefined;
    /** Rows the receiver took (2xx) whose deletion is still to be written: at most one window's. */
    let delivered: OutboxEntry[] = [];
    try {
      while (!this.stopped) {
        this.again.delete(streamId);
        if (performance.now() >= leaseFresh) {
          if (delivered.length > 0) {
            await deleteDelivered(sql, streamId, delivered.map((e) => e.seq));
            this.reportDelivered(delivered);
            delivered = [];
          }
          const taken = await leaseAndWindow(sql, streamId, this.owner, this.leaseMs, size);
          leased = true; // released in finally either way (a delete of our own row only)
          if (!taken.leased) {
            // Another instance pushes this stream; look again after its lease would have lapsed.
            this.later(streamId, this.leaseMs);
            return;
          }
          leaseFresh = performance.now() + this.leaseMs / 2;
          // Taken over from another instance: read again under the lease, it may have just delivered some.
          window = taken.previousOwner !== null && taken.previousOwner !== this.owner ? await pushWindow(sql, streamId, size) : taken.window;
        }
        // Paused streams hold their SETs; disabled and deleted ones have none; poll streams are fetched.
        if (!window || window.stream.status !== 'enabled' || window.stream.method !== SSF_PUSH || window.entries.length === 0) return;
        const { endpointUrl, authorizationSealed } = window.stream;
        const authorization = authorizationSealed ? this.options.openAuthorization(authorizationSealed) : undefined;
        const entries = window.entries;
        // Signed one ahead: the next SET's signature is made while the current one is on the wire.
        const signed = new Map<number, Promise<string>>();
        const sign = (i: number) => {
          if (i < entries.length && !signed.has(i)) {
            const p = signSet(this.options.signer, entries[i].claims);
            p.catch(() => undefined); // awaited when its turn comes; a failure there ends the window
            signed.set(i, p);
          }
        };
        const ends = performance.now() + windowMs;
        let wait = 0;
        for (let i = 0; i < entries.length; i++) {
          const entry = entries[i];
          wait = entry.nextAttemptAt.getTime() - Date.now();
          // Strict order: a SET waiting for its retry holds back everything after it.
          if (wait > 0 || this.stopped) break;
          // A window never outlives the lease, nor a stream's status for long (read again each window).
          if (i > 0 && (performance.now() >= ends || performance.now() >= leaseFresh)) break;
          sign(i);
          sign(i + 1);
          const outcome = await this.attempt(endpointUrl, authorization, entry, await signed.get(i)!);
          if (outcome === 'delivered') delivered.push(entry);
          else if (outcome === 'retry' || this.stopped) break; // nothing after it goes before it
          // 'refused': recorded, the stream moves on to the next SET
        }
        if (this.stopped) return; // the delivered rows are deleted in finally: stop() waits for it
        if (wait > 0 && delivered.length === 0) {
          this.later(streamId, wait);
          return;
        }
        // The window's deliveries deleted and the next window read, in one statement.
        const done = delivered;
        delivered = [];
        window = await deliveredThenWindow(sql, streamId, done.map((e) => e.seq), size);
        this.reportDelivered(done);
      }
    } finally {
      if (delivered.length > 0) {
        const done = delivered;
        await deleteDelivered(sql, streamId, done.map((e) => e.seq)).then(
          () => this.reportDelivered(done),
          (error) => this.options.onError?.(error), // sent again later with the same jti (at-least-once)
        );
      }
      if (leased) await releaseLease(sql, streamId, this.owner).catch(() => undefined);
    }
  }

  private reportDelivered(entries: readonly OutboxEntry[]): void {
    for (const entry of entries) this.report('delivered', entry, {});
  }

  /**
   * One POST of a SET: 'delivered' on 200/202 (the caller deletes the row), 'refused' on 400 (recorded
   * here, the stream moves on), 'retry' otherwise (its backoff recorded here; the window stops).
   */
  private async attempt(endpointUrl: string, authorization: string | undefined, entry: OutboxEntry, set: string): Promise<'delivered' | 'refused' | 'retry'> {
    const sql = this.options.sql;
    const headers: Record<string, string> = { 'content-type': SET_MEDIA_TYPE, accept: 'application/json' };
    if (authorization) headers.authorization = authorization;
    const abort = new AbortController();
    this.aborts.add(abort);
    const timer = setTimeout(() => abort.abort(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    let status: number | undefined;
    let error: string;
    let retryAfter: number | undefined;
    try {
      const res = await fetch(endpointUrl, { method: 'POST', headers, body: set, signal: abort.signal, redirect: 'error' });
      status = res.status;
      // Read to the end so the keep-alive connection is reused for the next SET.
      const text = await res.text().catch(() => '');
      if (res.status === 200 || res.status === 202) return 'delivered';
      if (res.status === 400) {
        // RFC 8935 §2.3: the receiver will never accept this SET; say so, and move on.
        const reason = refusal(text);
        await markRefused(sql, entry.seq, reason);
        this.report('refused', entry, { status, error: reason });
        return 'refused';
      }
      error = `HTTP ${res.status}`;
      retryAfter = retryAfterMs(res.headers.get('retry-after'), Date.now());
    } catch (e) {
      if (this.stopped) return 'retry'; // aborted by stop(): the row stays as it was
      error = describe(e);
    } finally {
      clearTimeout(timer);
      this.aborts.delete(abort);
    }
    const delay = Math.min(this.backoff.maxMs, Math.max(retryAfter ?? 0, backoffDelay(entry.attempts + 1, this.backoff, (this.options.random ?? Math.random)())));
    await scheduleRetry(sql, entry.seq, delay, error);
    this.report('retried', entry, { status, error });
    return 'retry';
  }

  private report(outcome: PushOutcome, entry: OutboxEntry, info: { status?: number; error?: string }): void {
    this.options.onOutcome?.(outcome, { streamId: entry.streamId, jti: entry.jti, attempts: entry.attempts + 1, createdAt: entry.createdAt, ...info });
  }
}

/** `err: description` from an RFC 8935 §2.4 error body, or what there was. */
function refusal(text: string): string {
  try {
    const body = JSON.parse(text) as { err?: unknown; description?: unknown };
    if (typeof body.err === 'string') return typeof body.description === 'string' ? `${body.err}: ${body.description}` : body.err;
  } catch {
    /* not JSON */
  }
  return `HTTP 400 ${text.slice(0, 200)}`;
}

function describe(error: unknown): string {
  // Not `instanceof Error`: fetch's errors may come from another realm (jest's VM context).
  if (typeof error === 'object' && error !== null && typeof (error as Error).message === 'string') {
    const message = (error as Error).message;
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ? `${message} (${cause.code})` : cause?.message ? `${message}: ${cause.message}` : message;
  }
  return String(error);
}
