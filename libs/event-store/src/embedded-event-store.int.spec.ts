import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EmbeddedEventStore } from './embedded-event-store';
import type { RecordedEvent } from './event-store';
import { isStoreUnavailable } from './errors';
import { describeEventStoreContract } from './event-store.contract';
import { ThreadedPgliteClient } from './pglite-thread-client';

// PGlite in its worker thread (LEDGER_EMBEDDED_THREAD=on) and on this thread (the default).
for (const thread of [true, false]) {
  describeEventStoreContract(`embedded (PGlite${thread ? ', in its thread' : ', in this thread'})`, async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'token-ledger-es-'));
    let store = await EmbeddedEventStore.open({ dataDir, thread });
    return {
      store,
      kv: store.kv,
      // A second instance on the same data dir is impossible by design (PGlite is single-process).
      reopen: async () => {
        await store.close();
        store = await EmbeddedEventStore.open({ dataDir, thread });
        return { store, kv: store.kv };
      },
      cleanup: async () => {
        await store.close();
        fs.rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }, { keyValueStore: true, reopen: true, uniqueEventIds: true });
}

describe('EmbeddedEventStore: the database thread', () => {
  const event = (n: number) => ({ eventId: `7b0c1f0e-3f7e-4a47-9a0e-${String(n).padStart(12, '0')}`, type: 'T', data: { n }, metadata: {} });

  it('fails loudly when the thread dies: calls in flight and later ones reject as unavailable, the death is reported, acknowledged appends survive', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'token-ledger-es-'));
    const deaths: Error[] = [];
    const store = await EmbeddedEventStore.open({ dataDir, thread: true, onThreadDeath: (e) => deaths.push(e) });
    try {
      const client = store.sql as ThreadedPgliteClient;
      expect(client).toBeInstanceOf(ThreadedPgliteClient);
      await store.append('acked', [event(1)], { expectedRevision: 'no_stream' });

      // A statement that runs for a while, so the thread is busy in PGlite when it dies.
      const busy = client.query('select count(*) from generate_series(1, 20000000)');
      const inFlight = [
        busy,
        store.append('b', [event(2)], { expectedRevision: 'no_stream' }),
        store.loadStream('acked'),
        client.transaction((tx) => tx.query('select 1')),
      ];
      inFlight.forEach((p) => p.catch(() => undefined));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await client.kill();

      for (const p of inFlight) {
        const error = await p.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toMatchObject({ code: '57P02', message: expect.stringMatching(/embedded database thread died/) });
        expect(isStoreUnavailable(error)).toBe(true);
      }
      await expect(store.loadStream('acked')).rejects.toMatchObject({ code: '57P02' });
      await expect(client.query('select 1')).rejects.toMatchObject({ code: '57P02' });
      expect(deaths).toHaveLength(1);
      expect(deaths[0].message).toMatch(/embedded database thread died/);
    } finally {
      await store.close();
    }
    // The directory opens again (lock released) with every acknowledged append.
    const again = await EmbeddedEventStore.open({ dataDir, thread: true });
    try {
      expect((await again.loadStream('acked')).events.map((e) => e.data)).toEqual([{ n: 1 }]);
    } finally {
      await again.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('carries SQLSTATE and constraint of an error across, and rolls back a transaction whose function throws', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'token-ledger-es-'));
    const store = await EmbeddedEventStore.open({ dataDir, thread: true });
    try {
      await store.sql.exec('create table t (k text primary key)');
      await store.sql.query('insert into t values ($1)', ['a']);
      await expect(store.sql.query('insert into t values ($1)', ['a'])).rejects.toMatchObject({ code: '23505', constraint: 't_pkey' });
      await expect(
        store.sql.transaction(async (tx) => {
          await tx.query('insert into t values ($1)', ['b']);
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');
      // Statements from outside wait for a transaction to end, and see only what it committed.
      const [inside, outside] = await Promise.all([
        store.sql.transaction(async (tx) => {
          await tx.query('insert into t values ($1)', ['c']);
          return tx.query<{ n: number }>('select count(*)::int as n from t');
        }),
        store.sql.query<{ n: number }>('select count(*)::int as n from t'),
      ]);
      expect(inside).toEqual([{ n: 2 }]);
      expect(outside).toEqual([{ n: 2 }]);
      expect(await store.sql.query('select k from t order by k')).toEqual([{ k: 'a' }, { k: 'c' }]);

      // A function that throws while another transaction holds PGlite (its rollback may arrive before
      // its BEGIN ran): it rejects with its own error, and the thread carries on.
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const holding = store.sql.transaction(async (tx) => {
        await tx.query('insert into t values ($1)', ['d']);
        await gate;
      });
      const early = store.sql.transaction(async () => {
        throw new Error('early');
      });
      const earlyOutcome = early.then(
        () => 'committed',
        (e: Error) => e.message,
      );
      release();
      await holding;
      expect(await earlyOutcome).toBe('early');
      expect(await store.sql.query('select k from t order by k')).toEqual([{ k: 'a' }, { k: 'c' }, { k: 'd' }]);
    } finally {
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('EmbeddedEventStore.open', () => {
  it('creates a missing data dir and refuses to open the same dir twice', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'token-ledger-es-'));
    const dataDir = path.join(root, 'nested', 'data');
    const store = await EmbeddedEventStore.open({ dataDir });
    try {
      expect(fs.existsSync(dataDir)).toBe(true);
      await expect(EmbeddedEventStore.open({ dataDir })).rejects.toThrow(/already open/);
    } finally {
      await store.close();
      fs.rmSync(root, { recursive: true, force: true });
    }
  }, 60_000);

  it('describes its capabilities: SQL with the events in it (PGlite), no thread location', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'token-ledger-es-'));
    const store = await EmbeddedEventStore.open({ dataDir });
    try {
      expect(store.capabilities.sql).toBe(store.sql);
      expect(store.capabilities.eventsInSql?.engine).toBe('pglite');
      expect(store.capabilities.threadLocation).toBeUndefined();
      await store.append('s', [{ eventId: '7b0c1f0e-3f7e-4a47-9a0e-1c1b7f7f0002', type: 'T', data: { a: 1 }, metadata: {} }], { expectedRevision: 'no_stream' });
      expect(await store.capabilities.eventsInSql!.readAllJsonText({})).toEqual([
        { position: 1, eventId: '7b0c1f0e-3f7e-4a47-9a0e-1c1b7f7f0002', type: 'T', data: '{"a": 1}', metadata: '{}' },
      ]);
    } finally {
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('EmbeddedEventStore: gathered reads and appends', () => {
  const id = (n: number) => `7b0c1f0e-3f7e-4a47-9a0e-${String(n).padStart(12, '0')}`;

  it('wakes a prompt subscription at the append (a predicate one while it holds), the others after the gather delay or when asked (wakeSubscriptionsNow)', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'token-ledger-es-'));
    // Gather and fallback poll far beyond the test: only the in-process wake-up can deliver.
    const store = await EmbeddedEventStore.open({ dataDir, gatherWakeupsMs: 600_000, pollIntervalMs: 600_000 });
    try {
      const gathered: number[] = [];
      const prompt: number[] = [];
      const sometimes: number[] = [];
      let promptNow = false;
      const a = store.subscribeToAll(async (e) => void gathered.push(e.position));
      const b = store.subscribeToAll(async (e) => void prompt.push(e.position), { prompt: true });
      const c = store.subscribeToAll(async (e) => void sometimes.push(e.position), { prompt: () => promptNow });
      await Promise.all([a.caughtUp, b.caughtUp, c.caughtUp]);
      await store.append('p', [{ eventId: id(9), type: 'T', data: {}, metadata: {} }], { expectedRevision: 'no_stream' });
      for (let i = 0; i < 800 && prompt.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
      expect(prompt).toEqual([1]);
      await new Promise((r) => setTimeout(r, 100));
      expect(gathered).toEqual([]);
      expect(sometimes).toEqual([]); // its predicate said no: gathered like the others
      promptNow = true;
      await store.append('q', [{ eventId: id(10), type: 'T', data: {}, metadata: {} }], { expectedRevision: 'no_stream' });
      for (let i = 0; i < 800 && sometimes.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
      expect(sometimes).toEqual([1, 2]);
      expect(gathered).toEqual([]);
      // A reader waiting for its own write: the pending gathered wake-up goes out now.
      store.wakeSubscriptionsNow();
      for (let i = 0; i < 800 && gathered.length < 2; i++) await new Promise((r) => setTimeout(r, 25));
      expect(gathered).toEqual([1, 2]);
    } finally {
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('shares a readAll page between concurrent callers, but never with one that asked after an append returned', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'token-ledger-es-'));
    const store = await EmbeddedEventStore.open({ dataDir });
    try {
      await store.append('a', [{ eventId: id(1), type: 'T', data: {}, metadata: {} }], { expectedRevision: 'no_stream' });
      const [x, y] = await Promise.all([store.readAll({}), store.readAll({})]);
      expect(x.map((e) => e.position)).toEqual([1]);
      expect(y).toEqual(x);
      expect(y[0]).not.toBe(x[0]);

      // A read in flight while an append runs; a read asked after the append returned sees it.
      const early = store.readAll({});
      await store.append('b', [{ eventId: id(2), type: 'T', data: {}, metadata: {} }], { expectedRevision: 'no_stream' });
      const late = await store.readAll({});
      expect((await early).length).toBeGreaterThanOrEqual(1);
      expect(late.map((e) => e.position)).toEqual([1, 2]);

      // Loads and appends of one turn of the event loop go together, each with its own result.
      const appended = await Promise.all([3, 4, 5].map((n) => store.append(`s${n}`, [{ eventId: id(n), type: 'T', data: { n }, metadata: {} }], { expectedRevision: 'no_stream' })));
      expect(appended.map((r) => r.nextExpectedRevision)).toEqual([0, 0, 0]);
      expect(appended.map((r) => r.position).sort()).toEqual([3, 4, 5]);
      const loaded = await Promise.all(['s3', 's4', 'missing'].map((s) => store.loadStream(s)));
      expect(loaded.map((l) => l.events.map((e) => e.data))).toEqual([[{ n: 3 }], [{ n: 4 }], []]);
    } finally {
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('EmbeddedEventStore: subscriptions read what this store just appended from memory', () => {
  const id = (n: number) => `0b0c1f0e-3f7e-4a47-9a0e-${String(n).padStart(12, '0')}`;
  let dataDir: string;
  let store: EmbeddedEventStore;
  /** Statements that read tl_events' rows (not its head), counted. */
  let reads = 0;

  beforeEach(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'token-ledger-es-'));
    store = await EmbeddedEventStore.open({ dataDir });
    const query = store.sql.query.bind(store.sql);
    store.sql.query = ((text: string, params?: unknown[]) => {
      if (/select position, stream_id/.test(text)) reads++;
      return query(text, params);
    }) as typeof store.sql.query;
    reads = 0;
  });
  afterEach(async () => {
    await store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** Every event after `after` a subscription hands over until it has `count`. */
  async function follow(after: number, count: number): Promise<RecordedEvent[]> {
    const seen: RecordedEvent[] = [];
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    const subscription = store.subscribeToAll(
      async (e) => {
        seen.push(e);
        if (seen.length === count) done();
      },
      { after },
    );
    await all;
    await subscription.close();
    return seen;
  }

  it('exactly as the database has them (values through JSON, revisions, positions, recordedAt, lower-case ids)', async () => {
    const head = await store.headPosition();
    const first = { b: 1, a: [1.5, null, 'x'], u: undefined, d: new Date(0) };
    const batched = { n: 7 };
    await store.append('s-1', [{ eventId: id(1).toUpperCase(), type: 'A', data: first, metadata: { m: true } }], { expectedRevision: 'no_stream' });
    await Promise.all([
      store.append('s-1', [{ eventId: id(2), type: 'B', data: null, metadata: {} }, { eventId: id(3), type: 'C', data: 'text', metadata: {} }], { expectedRevision: 0 }),
      store.append('s-2', [{ eventId: id(4), type: 'D', data: batched, metadata: {} }], { expectedRevision: 'any' }),
    ]);
    // What the store remembers is a copy: a caller changing its objects afterwards changes nothing.
    first.b = 2;
    batched.n = 8;
    reads = 0;
    const remembered = await follow(head, 4);
    expect(reads).toBe(0);
    const fromDatabase = await store.readAll({ after: head });
    expect(reads).toBe(1); // readAll itself always asks the database
    expect(remembered).toEqual(fromDatabase);
  });

  it('reads the database for what it did not append: a gap a failed append left, a row written behind its back, a tampered one for readAll', async () => {
    const head = await store.headPosition();
    await store.append('g-1', [{ eventId: id(11), type: 'A', data: 1, metadata: {} }], { expectedRevision: 'no_stream' });
    // A duplicate event id fails after its position was drawn: a gap in the positions.
    await expect(store.append('g-2', [{ eventId: id(11), type: 'A', data: 2, metadata: {} }], { expectedRevision: 'no_stream' })).rejects.toThrow();
    await store.append('g-3', [{ eventId: id(12), type: 'A', data: 3, metadata: {} }], { expectedRevision: 'no_stream' });
    await store.sql.query(`insert into tl_streams (stream_id, revision) values ('g-x', 0)`);
    await store.sql.query(`insert into tl_events (stream_id, revision, event_id, type, data, metadata) values ('g-x', 0, '${id(13)}', 'X', '4', '{}')`);
    await store.append('g-4', [{ eventId: id(14), type: 'A', data: 5, metadata: {} }], { expectedRevision: 'no_stream' });
    expect((await follow(head, 4)).map((e) => e.data)).toEqual([1, 3, 4, 5]);
    expect(reads).toBeGreaterThanOrEqual(1);
    // Forensics reads with readAll: an edit in the database shows, whatever this process remembers.
    const [last] = await store.readAll({ after: (await store.headPosition()) - 1 });
    await store.sql.query(`update tl_events set data = '6' where position = $1`, [last.position]);
    expect((await store.readAll({ after: last.position - 1 }))[0].data).toBe(6);
  });
});
