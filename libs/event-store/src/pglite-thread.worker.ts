/**
 * The embedded database's thread: one PGlite instance on workerData.pgdata, answering the calls of
 * ThreadedPgliteClient (pglite-thread-client.ts, which describes the protocol). PGlite is one
 * connection and queues its queries (and its transactions) itself; this module only routes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { PGlite as PGliteInstance, Transaction } from '@electric-sql/pglite';
import type { PgliteCall, PgliteReply, PgliteThreadData, WireError } from './pglite-thread-client';

const port = parentPort!;
const data = workerData as PgliteThreadData;

/** Thrown inside db.transaction to make PGlite roll back: the caller asked for it. */
const ROLLBACK = Symbol('rollback');

interface OpenTransaction {
  ready: Promise<Transaction>;
  end(commit: boolean): void;
}

const transactions = new Map<number, OpenTransaction>();
let outbox: PgliteReply[] = [];

/**
 * Replies settled together go as one message, at the next microtask checkpoint rather than at the
 * end of the turn, which waits for whatever else the turn runs (PGlite may go on to the statements
 * queued behind this one first). The main thread is waiting for these rows.
 */
function reply(r: PgliteReply): void {
  if (outbox.length === 0) queueMicrotask(flush);
  outbox.push(r);
}

function flush(): void {
  const replies = outbox;
  outbox = [];
  port.postMessage(replies);
}

/** SQLSTATE `code` and the other fields pg and PGlite errors carry (constraint, detail…), as plain data. */
function toWire(error: unknown): WireError {
  if (typeof error !== 'object' || error === null) return { name: 'Error', message: String(error) };
  const e = error as Record<string, unknown> & { name?: unknown; message?: unknown; stack?: unknown };
  const wire: WireError = { name: typeof e.name === 'string' ? e.name : 'Error', message: String(e.message ?? error) };
  if (typeof e.stack === 'string') wire.stack = e.stack;
  const fields = Object.entries(e).filter(([, value]) => ['string', 'number', 'boolean'].includes(typeof value));
  if (fields.length > 0) wire.fields = Object.fromEntries(fields) as WireError['fields'];
  return wire;
}

function settle(id: number, work: Promise<unknown[] | void>): void {
  work.then(
    (rows) => reply({ id, rows: rows ?? [] }),
    (error: unknown) => reply({ id, error: toWire(error) }),
  );
}

function begin(db: PGliteInstance, call: { id: number; tx: number }): void {
  let open!: (t: Transaction) => void;
  let refuse!: (error: unknown) => void;
  let end!: (commit: boolean) => void;
  const ready = new Promise<Transaction>((resolve, reject) => ((open = resolve), (refuse = reject)));
  // Statements waiting for a transaction that never began fail with its reason (not caught as unhandled here).
  ready.catch(() => undefined);
  const ended = new Promise<void>((resolve, reject) => (end = (commit) => (commit ? resolve() : reject(ROLLBACK))));
  // A rollback asked before PGlite opened the transaction is awaited (and acted on) once it opens.
  ended.catch(() => undefined);
  transactions.set(call.tx, { ready, end });
  // The ack of `begin` is the outcome of the whole transaction: the main thread does not wait for
  // BEGIN before it sends the transaction's statements (they wait on `ready` here).
  const done = db.transaction(async (t) => {
    open(t);
    await ended;
  });
  settle(
    call.id,
    done.then(
      () => undefined,
      (error: unknown) => {
        if (error !== ROLLBACK) throw error;
      },
    ),
  );
  void done
    .catch((error: unknown) => refuse(error))
    .finally(() => transactions.delete(call.tx));
}

function handle(db: PGliteInstance, call: PgliteCall): void {
  switch (call.op) {
    case 'query': {
      if (call.tx === undefined) return settle(call.id, db.query(call.text, call.params).then((r) => r.rows));
      const tx = transactions.get(call.tx);
      if (!tx) return reply({ id: call.id, error: { name: 'Error', message: `transaction ${call.tx} is not open` } });
      return settle(call.id, tx.ready.then((t) => t.query(call.text, call.params)).then((r) => r.rows));
    }
    case 'exec':
      return settle(call.id, db.exec(call.text).then(() => undefined));
    case 'begin':
      return begin(db, call);
    case 'end':
      // No reply of its own: the transaction's outcome answers its `begin`.
      return transactions.get(call.tx)?.end(call.commit);
    case 'close':
      return settle(
        call.id,
        db.close().then(() => {
          // Nothing else holds this thread's event loop open once the reply is out.
          setImmediate(() => port.close());
        }),
      );
  }
}

async function main(): Promise<void> {
  // A worker thread is a plain Node context (also under jest): PGlite loads as usual.
  const { PGlite } = (await import('@electric-sql/pglite')) as typeof import('@electric-sql/pglite');
  let db: PGliteInstance;
  try {
    db = await PGlite.create({ dataDir: data.pgdata });
  } catch (error) {
    port.postMessage({ started: false, error: toWire(error) });
    return void setImmediate(() => port.close());
  }
  port.on('message', (calls: PgliteCall[]) => {
    for (const call of calls) handle(db, call);
  });
  port.postMessage({ started: true });
}

void main();
