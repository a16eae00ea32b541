import type { KeyObject } from 'node:crypto';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '@token-ledger/event-store';
import type { CompactJwsAlg } from './signature-options';

/** Main thread → signing thread: keys it has not seen yet (KeyObjects clone across threads), then the requests. */
export interface SignBatch {
  keys: [number, KeyObject][];
  requests: { id: number; alg: CompactJwsAlg; key: number; input: string }[];
}

/** Signing thread → main thread: each request's signature (base64url) or the error's message. */
export type SignReply = { id: number; signature: string } | { id: number; error: string };

/** The signing thread died or was closed with this signature in it: nothing was signed; trying again may work. */
export class SigningUnavailableError extends Error {
  constructor(reason: string) {
    super(`the signing thread is unavailable (${reason})`);
    this.name = 'SigningUnavailableError';
  }
}

interface Pending {
  resolve(signatureB64u: string): void;
  reject(error: Error): void;
}

/**
 * Signatures made in a worker thread of their own (sign-thread.worker.ts), the requests of one turn
 * of the event loop in one message and their signatures back in one. Why: `crypto.sign` with a
 * callback hands every signature to libuv's pool on its own — a pool thread woken and an async
 * resource made per signature, 9–11 % of a PostgreSQL server's main thread at 64 refresh chains
 * (bench/refresh/README.md) — where this costs one message per turn however many tokens it signs.
 * The signing still happens off the event loop. A thread that dies fails the signatures it held
 * with SigningUnavailableError (a 503 with Retry-After to the HTTP caller) and the next signature
 * starts a new one.
 */
export class SignThread {
  private worker: Worker | undefined;
  /** Which KeyObjects the current worker has, under which number. */
  private keyIds = new WeakMap<KeyObject, number>();
  private readonly pending = new Map<number, Pending>();
  private batch: SignBatch = { keys: [], requests: [] };
  private nextId = 1;
  private nextKey = 1;

  /** The signature of `input` (base64url), as `crypto.sign` makes it for `alg` (signature-options.ts). */
  sign(alg: CompactJwsAlg, key: KeyObject, input: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const worker = this.worker ?? this.start();
      let keyId = this.keyIds.get(key);
      if (keyId === undefined) {
        keyId = this.nextKey++;
        this.keyIds.set(key, keyId);
        this.batch.keys.push([keyId, key]);
      }
      const id = this.nextId++;
      if (this.pending.size === 0) worker.ref();
      this.pending.set(id, { resolve, reject });
      if (this.batch.requests.length === 0) setImmediate(() => this.flush());
      this.batch.requests.push({ id, alg, key: keyId, input });
    });
  }

  /** Ends the thread (signatures in flight fail); a later sign() starts another. */
  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.forget(worker, new SigningUnavailableError('closed'));
    await worker.terminate();
  }

  private start(): Worker {
    const worker = spawnWorker(path.join(__dirname, 'sign-thread.worker'), {}, { preloads: false });
    this.worker = worker;
    this.keyIds = new WeakMap();
    // Held only while signatures are in flight: an idle signer does not keep the process alive.
    worker.unref();
    worker.on('message', (replies: SignReply[]) => {
      for (const r of replies) {
        const p = this.pending.get(r.id);
        if (!p) continue;
        this.pending.delete(r.id);
        if ('error' in r) p.reject(new Error(r.error));
        else p.resolve(r.signature);
      }
      if (this.pending.size === 0 && this.worker === worker) worker.unref();
    });
    worker.on('error', (error: Error) => this.forget(worker, new SigningUnavailableError(`${error.name}: ${error.message}`)));
    worker.on('exit', (code: number) => this.forget(worker, new SigningUnavailableError(`exited with code ${code}`)));
    return worker;
  }

  private flush(): void {
    const batch = this.batch;
    this.batch = { keys: [], requests: [] };
    if (batch.requests.length === 0 || !this.worker) return;
    try {
      this.worker.postMessage(batch);
    } catch (error) {
      // A request that cannot be cloned fails its batch here, not the process from inside setImmediate;
      // its keys never reached the thread.
      for (const [, key] of batch.keys) this.keyIds.delete(key);
      for (const { id } of batch.requests) {
        this.pending.get(id)?.reject(error instanceof Error ? error : new Error(String(error)));
        this.pending.delete(id);
      }
    }
  }

  /** The thread is gone: what it held fails; the next sign() starts another (and sends the keys again). */
  private forget(worker: Worker, error: Error): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.batch = { keys: [], requests: [] };
    for (const p of pending) p.reject(error);
  }
}
