/**
 * The one behavioural contract every EventStore adapter passes. Adapter specs call
 * describeEventStoreContract with a factory; the suite shares one store across its tests (opening
 * a store can take seconds) and uses fresh stream ids per test, so assertions about $all are made
 * relative to the head position a test started from.
 */
import { randomUUID } from 'node:crypto';
import { DuplicateEventIdError } from './errors';
import {
  AppendResult,
  EventStore,
  ExpectedRevision,
  KeyValueStore,
  NewEvent,
  RecordedEvent,
  Subscription,
  WrongExpectedRevisionError,
} from './event-store';

export interface ContractSubject {
  store: EventStore;
  /** Closes whatever the factory (and reopen) opened and removes its data. */
  cleanup(): Promise<void>;
  /** The adapter's key/value store, when it has one. */
  kv?: KeyValueStore;
  /**
   * Another store instance on the same database, as a second process would have. Open it with a
   * long fallback poll so the test proves the cross-process wake-up (e.g. NOTIFY), not the poll.
   */
  openSecondInstance?(): Promise<EventStore>;
  /** Closes `store` and opens the same data again; the suite continues on the returned instance. */
  reopen?(): Promise<{ store: EventStore; kv?: KeyValueStore }>;
}

/**
 * Which optional parts of the suite apply. Known when tests are registered (the factory runs later),
 * so tests that do not apply are reported as skipped instead of passing vacuously.
 */
export interface ContractFeatures {
  /** The subject provides `kv`. */
  keyValueStore?: boolean;
  /** The subject provides `openSecondInstance` (e.g. not PGlite: one instance per data dir). */
  secondInstance?: boolean;
  /** The subject provides `reopen` (stores whose data lives in this process's files). */
  reopen?: boolean;
  /**
   * Event ids are unique across the store: reusing one from an earlier append (any stream) fails
   * with DuplicateEventIdError. EventStoreDB only rejects repeats within one batch (docs/stores.md).
   */
  uniqueEventIds?: boolean;
}

/** Opening a store can take seconds (PGlite runs initdb); heavy tests get the same allowance. */
const SLOW = 60_000;

export function describeEventStoreContract(
  name: string,
  factory: () => Promise<ContractSubject>,
  features: ContractFeatures = {},
): void {
  describe(`EventStore contract: ${name}`, () => {
    // jest 29 ignores testTimeout inside `projects`, leaving 5 s; concurrency tests under CPU
    // contention (PGlite and Postgres suites in parallel on two cores) can need more.
    jest.setTimeout(SLOW);
    let subject: ContractSubject;
    let store: EventStore;
    /** A test that does not apply to this adapter is skipped with the reason in its title. */
    const itIf = (enabled: boolean | undefined, reason: string) =>
      enabled ? it : (title: string, fn: jest.ProvidesCallback) => it.skip(`${title} (skipped: ${reason})`, fn);

    beforeAll(async () => {
      subject = await factory();
      store = subject.store;
    }, SLOW);

    afterAll(async () => {
      await subject?.cleanup();
    }, SLOW);

    it('starts empty: head 0, readAll empty, ping answers', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
      expect(await store.headPosition()).toBe(0);
      expect(await store.readAll()).toEqual([]);
    });

    describe('append', () => {
      it('creates a new stream with no_stream and reads it back', async () => {
        const id = streamId('new');
        const events = [event('Opened', { a: 1, nested: { list: [1, 'two', null], text: 'ünïcødé ✓' } }), event('Touched')];
        const result = await store.append(id, events, { expectedRevision: 'no_stream' });

        expect(result.nextExpectedRevision).toBe(1);
        expect(result.positions).toHaveLength(2);
        expect(result.positions[1]).toBeGreaterThan(result.positions[0]);
        expect(result.position).toBe(result.positions[1]);

        const read = await store.readStream(id);
        expect(read.map(strip)).toEqual(
          events.map((e, i) => ({ ...e, streamId: id, revision: i, position: result.positions[i] })),
        );
        for (const e of read) expect(e.recordedAt).toBeInstanceOf(Date);
      });

      it('appends with the right expected revision', async () => {
        const id = streamId('exact');
        await store.append(id, [event()], { expectedRevision: 'no_stream' });
        const second = await store.append(id, [event(), event()], { expectedRevision: 0 });
        expect(second.nextExpectedRevision).toBe(2);
        const third = await store.append(id, [event()], { expectedRevision: 2 });
        expect(third.nextExpectedRevision).toBe(3);
        expect((await store.readStream(id)).map((e) => e.revision)).toEqual([0, 1, 2, 3]);
      });

      it('rejects a wrong expected revision with WrongExpectedRevisionError and appends nothing', async () => {
        const id = streamId('wrong');
        await store.append(id, [event(), event()], { expectedRevision: 'no_stream' });
        const head = await store.headPosition();

        const error = await store.append(id, [event()], { expectedRevision: 0 }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(WrongExpectedRevisionError);
        expect(error).toMatchObject({ streamId: id, expected: 0, actual: 1 });

        await expect(store.append(id, [event()], { expectedRevision: 7 })).rejects.toMatchObject({ expected: 7, actual: 1 });
        await expect(store.append(id, [event()], { expectedRevision: 'no_stream' })).rejects.toMatchObject({
          name: 'WrongExpectedRevisionError',
          expected: 'no_stream',
          actual: 1,
        });
        expect(await store.readStream(id)).toHaveLength(2);
        expect(await store.headPosition()).toBe(head);
      });

      it('reports actual undefined when an exact revision is expected of a missing stream', async () => {
        const id = streamId('missing');
        await expect(store.append(id, [event()], { expectedRevision: 0 })).rejects.toMatchObject({
          name: 'WrongExpectedRevisionError',
          streamId: id,
          expected: 0,
          actual: undefined,
        });
        expect(await store.readStream(id)).toEqual([]);
        expect((await store.loadStream(id)).revision).toBeUndefined();
      });

      it("'any' appends whether or not the stream exists", async () => {
        const id = streamId('any');
        expect((await store.append(id, [event()], { expectedRevision: 'any' })).nextExpectedRevision).toBe(0);
        expect((await store.append(id, [event(), event()], { expectedRevision: 'any' })).nextExpectedRevision).toBe(2);
        expect((await store.readStream(id)).map((e) => e.revision)).toEqual([0, 1, 2]);
      });

      it("'stream_exists' appends only to an existing stream", async () => {
        const id = streamId('exists');
        await expect(store.append(id, [event()], { expectedRevision: 'stream_exists' })).rejects.toMatchObject({
          name: 'WrongExpectedRevisionError',
          expected: 'stream_exists',
          actual: undefined,
        });
        expect(await store.readStream(id)).toEqual([]);
        await store.append(id, [event()], { expectedRevision: 'no_stream' });
        expect((await store.append(id, [event()], { expectedRevision: 'stream_exists' })).nextExpectedRevision).toBe(1);
      });

      it('rejects an empty append', async () => {
        await expect(store.append(streamId('empty'), [], { expectedRevision: 'any' })).rejects.toThrow();
      });

      it('rejects an event id repeated within one batch and appends nothing', async () => {
        const id = streamId('dup-batch');
        const head = await store.headPosition();
        const twice = event();
        await expect(store.append(id, [twice, twice], { expectedRevision: 'any' })).rejects.toBeInstanceOf(DuplicateEventIdError);
        expect(await store.readStream(id)).toEqual([]);
        expect(await store.readAll({ after: head })).toEqual([]);
      });

      itIf(features.uniqueEventIds, 'event ids are unique per batch only on this store')('rejects a duplicate event id (in another stream or the same batch) and appends nothing', async () => {
        const first = streamId('dup');
        const other = streamId('dup');
        const original = event();
        await store.append(first, [original], { expectedRevision: 'no_stream' });
        const head = await store.headPosition();

        await expect(store.append(other, [event(), { ...event(), eventId: original.eventId }], { expectedRevision: 'no_stream' })).rejects.toBeInstanceOf(
          DuplicateEventIdError,
        );
        await expect(store.append(first, [original], { expectedRevision: 0 })).rejects.toBeInstanceOf(DuplicateEventIdError);
        const twice = event();
        await expect(store.append(other, [twice, twice], { expectedRevision: 'any' })).rejects.toBeInstanceOf(DuplicateEventIdError);

        expect(await store.readStream(other)).toEqual([]);
        expect((await store.loadStream(other)).revision).toBeUndefined();
        expect(await store.readStream(first)).toHaveLength(1);
        expect(await store.readAll({ after: head })).toEqual([]);
        // The failed appends left the stream usable at its real revision.
        await store.append(other, [event()], { expectedRevision: 'no_stream' });
      });
    });

    describe('readStream', () => {
      let id: string;
      beforeAll(async () => {
        id = streamId('read');
        await store.append(id, [0, 1, 2, 3, 4].map((n) => event('N', { n })), { expectedRevision: 'no_stream' });
      });
      const revisions = (events: RecordedEvent[]) => events.map((e) => e.revision);

      it('reads forwards and backwards', async () => {
        expect(revisions(await store.readStream(id))).toEqual([0, 1, 2, 3, 4]);
        expect(revisions(await store.readStream(id, { direction: 'forwards' }))).toEqual([0, 1, 2, 3, 4]);
        expect(revisions(await store.readStream(id, { direction: 'backwards' }))).toEqual([4, 3, 2, 1, 0]);
      });

      it('reads from a revision (inclusive) in either direction', async () => {
        expect(revisions(await store.readStream(id, { fromRevision: 2 }))).toEqual([2, 3, 4]);
        expect(revisions(await store.readStream(id, { fromRevision: 2, direction: 'backwards' }))).toEqual([2, 1, 0]);
        expect(await store.readStream(id, { fromRevision: 5 })).toEqual([]);
        expect(revisions(await store.readStream(id, { fromRevision: 99, direction: 'backwards' }))).toEqual([4, 3, 2, 1, 0]);
      });

      it('honours maxCount', async () => {
        expect(revisions(await store.readStream(id, { maxCount: 2 }))).toEqual([0, 1]);
        expect(revisions(await store.readStream(id, { maxCount: 2, direction: 'backwards' }))).toEqual([4, 3]);
        expect(revisions(await store.readStream(id, { fromRevision: 1, maxCount: 2 }))).toEqual([1, 2]);
        expect(revisions(await store.readStream(id, { fromRevision: 3, maxCount: 2, direction: 'backwards' }))).toEqual([3, 2]);
      });

      it('returns [] for a stream that does not exist', async () => {
        expect(await store.readStream(streamId('nope'))).toEqual([]);
        expect(await store.readStream(streamId('nope'), { direction: 'backwards' })).toEqual([]);
      });
    });

    describe('readAll and headPosition', () => {
      it('reads from the beginning in strictly increasing position order', async () => {
        const id = streamId('all');
        const { positions } = await store.append(id, [event(), event()], { expectedRevision: 'no_stream' });
        const all = await store.readAll();
        expectStrictlyIncreasing(all.map((e) => e.position));
        expect(all.filter((e) => e.streamId === id).map((e) => e.position)).toEqual(positions);
        expect(await store.readAll({ after: 0 })).toEqual(all);
      });

      it('reads after a position, with maxCount, in commit order across streams', async () => {
        const head = await store.headPosition();
        const a = streamId('all-a');
        const b = streamId('all-b');
        const appended: NewEvent[] = [];
        const steps: Array<[string, ExpectedRevision]> = [[a, 'no_stream'], [b, 'no_stream'], [a, 1], [b, 1]];
        for (const [id, expectedRevision] of steps) {
          const events = [event(), event()];
          await store.append(id, events, { expectedRevision });
          appended.push(...events);
        }
        const after = await store.readAll({ after: head });
        expect(after.map((e) => e.eventId)).toEqual(appended.map((e) => e.eventId));
        expectStrictlyIncreasing(after.map((e) => e.position));
        expect(after[0].position).toBeGreaterThan(head);

        expect((await store.readAll({ after: head, maxCount: 3 })).map((e) => e.eventId)).toEqual(
          appended.slice(0, 3).map((e) => e.eventId),
        );
        expect((await store.readAll({ after: after[2].position, maxCount: 2 })).map((e) => e.eventId)).toEqual(
          appended.slice(3, 5).map((e) => e.eventId),
        );
        expect(await store.readAll({ after: after[after.length - 1].position })).toEqual([]);
      });

      it('headPosition is the position of the last committed event', async () => {
        const result = await store.append(streamId('head'), [event(), event(), event()], { expectedRevision: 'any' });
        expect(await store.headPosition()).toBe(result.position);
        const last = await store.readAll({ after: result.position - 1 });
        expect(last.map((e) => e.position)).toEqual([result.position]);
      });
    });

    describe('snapshots and loadStream', () => {
      it('returns { revision: undefined, events: [] } for a missing stream', async () => {
        expect(await store.loadStream(streamId('none'))).toEqual({ revision: undefined, events: [] });
      });

      it('returns every event and no snapshot when none was stored', async () => {
        const id = streamId('nosnap');
        await store.append(id, [event(), event(), event()], { expectedRevision: 'no_stream' });
        const loaded = await store.loadStream(id);
        expect(loaded.revision).toBe(2);
        expect(loaded.snapshot).toBeUndefined();
        expect(loaded.events.map((e) => e.revision)).toEqual([0, 1, 2]);
        expect(loaded.events).toEqual(await store.readStream(id));
      });

      it('stores a snapshot with an exact append and loads it with only the later events', async () => {
        const id = streamId('snap');
        await store.append(id, [event(), event(), event()], { expectedRevision: 'no_stream', snapshot: { count: 3 } });
        expect(await store.loadStream(id)).toEqual({ revision: 2, snapshot: { state: { count: 3 }, revision: 2 }, events: [] });

        await store.append(id, [event(), event()], { expectedRevision: 2 });
        let loaded = await store.loadStream(id);
        expect(loaded.revision).toBe(4);
        expect(loaded.snapshot).toEqual({ state: { count: 3 }, revision: 2 });
        expect(loaded.events.map((e) => e.revision)).toEqual([3, 4]);

        await store.append(id, [event()], { expectedRevision: 4, snapshot: { count: 6 } });
        loaded = await store.loadStream(id);
        expect(loaded).toEqual({ revision: 5, snapshot: { state: { count: 6 }, revision: 5 }, events: [] });

        // 'any' cannot know the state it extends: its snapshot is ignored, its event is loaded.
        const anyEvent = event('AfterSnapshot');
        await store.append(id, [anyEvent], { expectedRevision: 'any', snapshot: { count: 'bogus' } });
        loaded = await store.loadStream(id);
        expect(loaded.revision).toBe(6);
        expect(loaded.snapshot).toEqual({ state: { count: 6 }, revision: 5 });
        expect(loaded.events.map((e) => [e.revision, e.eventId])).toEqual([[6, anyEvent.eventId]]);

        // A failed exact append stores no snapshot either.
        await expect(store.append(id, [event()], { expectedRevision: 2, snapshot: { count: 'stale' } })).rejects.toBeInstanceOf(
          WrongExpectedRevisionError,
        );
        expect((await store.loadStream(id)).snapshot).toEqual({ state: { count: 6 }, revision: 5 });
      });

      it('loads a stream of thousands of events with a fresh snapshot as 0 events', async () => {
        const id = streamId('long');
        let revision: number | 'no_stream' = 'no_stream';
        for (let batch = 0; batch < 20; batch++) {
          const events = Array.from({ length: 100 }, (_, i) => event('Tick', { i: batch * 100 + i }));
          const snapshot = batch === 19 ? { ticks: 2000 } : undefined;
          revision = (await store.append(id, events, { expectedRevision: revision, snapshot })).nextExpectedRevision;
        }
        const loaded = await store.loadStream(id);
        expect(loaded).toEqual({ revision: 1999, snapshot: { state: { ticks: 2000 }, revision: 1999 }, events: [] });
        expect(await store.readStream(id, { direction: 'backwards', maxCount: 1 })).toMatchObject([{ revision: 1999, data: { i: 1999 } }]);
      });
    });

    describe('subscribeToAll', () => {
      const open: Subscription[] = [];
      afterEach(async () => {
        await Promise.all(open.splice(0).map((s) => s.close()));
      });
      const subscribe = (...args: Parameters<EventStore['subscribeToAll']>) => {
        const subscription = store.subscribeToAll(...args);
        open.push(subscription);
        return subscription;
      };

      it('catches up, then delivers live events, in order, exactly once', async () => {
        const start = await store.headPosition();
        const id = streamId('sub');
        const old = await store.append(id, [event(), event(), event()], { expectedRevision: 'no_stream' });
        const seen: RecordedEvent[] = [];
        const subscription = subscribe(async (e) => void seen.push(e), { after: start, batchSize: 2 });

        await subscription.caughtUp;
        expect(seen.map((e) => e.position)).toEqual(old.positions);

        const live = await store.append(id, [event(), event()], { expectedRevision: 2 });
        await waitFor(() => seen.length >= 5);
        await sleep(50);
        expect(seen.map((e) => e.position)).toEqual([...old.positions, ...live.positions]);
        expect(seen.map((e) => e.revision)).toEqual([0, 1, 2, 3, 4]);
        expect(subscription.position).toBe(live.position);
      });

      it('with types, delivers only those and moves past the others (onPassed), in order, also under concurrent appends', async () => {
        const start = await store.headPosition();
        const id = streamId('sub-types');
        const kinds = ['Wanted', 'Other', 'Other', 'Wanted', 'Noise', 'Other', 'Other', 'Other', 'Wanted', 'Other'];
        const old = await store.append(id, kinds.map((k) => event(k)), { expectedRevision: 'no_stream' });
        const calls: { kind: 'event' | 'passed'; position: number }[] = [];
        const subscription = subscribe(async (e) => void calls.push({ kind: 'event', position: e.position }), {
          after: start,
          batchSize: 3,
          types: ['Wanted'],
          onPassed: (position) => void calls.push({ kind: 'passed', position }),
        });
        await subscription.caughtUp;
        const delivered = () => calls.filter((c) => c.kind === 'event').map((c) => c.position);
        expect(delivered()).toEqual(old.positions.filter((_, i) => kinds[i] === 'Wanted'));
        await waitFor(() => subscription.position === old.position);
        // Every call moves forward: an event is never delivered after a position past it was reported.
        const positions = calls.map((c) => c.position);
        expect(positions).toEqual([...new Set(positions)].sort((a, b) => a - b));
        expect(calls.filter((c) => c.kind === 'passed').length).toBeGreaterThan(0);

        // Live, from many writers at once: exactly the wanted ones arrive, and the position reaches the head.
        const writes = await Promise.all(
          Array.from({ length: 24 }, (_, i) => store.append(streamId(`sub-types-${i}`), [event(i % 3 === 0 ? 'Wanted' : 'Other'), event('Other')], { expectedRevision: 'no_stream' })),
        );
        const head = Math.max(...writes.map((w) => w.position));
        await waitFor(() => subscription.position >= head);
        const wanted = (await store.readAll({ after: start, maxCount: 10_000 })).filter((e) => e.type === 'Wanted').map((e) => e.position);
        expect(delivered()).toEqual(wanted);
        expect(delivered()).toHaveLength(3 + 8);
      });

      it('starts after a given position', async () => {
        const id = streamId('sub-from');
        const { positions } = await store.append(id, [event(), event(), event(), event()], { expectedRevision: 'no_stream' });
        const seen: number[] = [];
        const subscription = subscribe(async (e) => void seen.push(e.position), { after: positions[1] });
        await subscription.caughtUp;
        expect(seen).toEqual(positions.slice(2));
      });

      it('resolves caughtUp at once when there is nothing to catch up', async () => {
        const subscription = subscribe(async () => undefined, { after: await store.headPosition() });
        await expect(subscription.caughtUp).resolves.toBeUndefined();
      });

      it('resumes from its position after close without gaps or duplicates', async () => {
        const start = await store.headPosition();
        const id = streamId('sub-resume');
        const seen: number[] = [];
        const handler = async (e: RecordedEvent) => void seen.push(e.position);
        const first = await store.append(id, [event(), event()], { expectedRevision: 'no_stream' });
        const one = subscribe(handler, { after: start });
        await one.caughtUp;
        await one.close();
        const checkpoint = one.position;
        expect(checkpoint).toBe(first.position);

        const missed = await store.append(id, [event(), event()], { expectedRevision: 1 });
        await sleep(30);
        expect(seen).toEqual(first.positions);

        const two = subscribe(handler, { after: checkpoint });
        await two.caughtUp;
        const later = await store.append(id, [event()], { expectedRevision: 3 });
        await waitFor(() => seen.length >= 5);
        expect(seen).toEqual([...first.positions, ...missed.positions, ...later.positions]);
      });

      it('runs one handler call at a time, and close() waits for the one in flight', async () => {
        const start = await store.headPosition();
        const id = streamId('sub-serial');
        let running = 0;
        let maxRunning = 0;
        let finished = 0;
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        const subscription = subscribe(async () => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await sleep(2);
          if (finished === 4) await gate;
          running--;
          finished++;
        }, { after: start });
        await Promise.all([0, 1, 2, 3, 4, 5].map(() => store.append(id, [event()], { expectedRevision: 'any' })));
        await waitFor(() => finished === 4 && running === 1);

        let closed = false;
        const closing = subscription.close().then(() => (closed = true));
        await sleep(50);
        expect(closed).toBe(false);
        release();
        await closing;
        expect(running).toBe(0);
        expect(finished).toBe(5);
        expect(maxRunning).toBe(1);
        await sleep(30);
        expect(finished).toBe(5);
      });

      it('stops on a handler error, reports it through onError and keeps the last good position', async () => {
        const start = await store.headPosition();
        const { positions } = await store.append(streamId('sub-error'), [event(), event(), event()], { expectedRevision: 'no_stream' });
        const failure = new Error('handler broke');
        const errors: unknown[] = [];
        const seen: number[] = [];
        const subscription = subscribe(
          async (e) => {
            if (e.position === positions[1]) throw failure;
            seen.push(e.position);
          },
          { after: start, onError: (error) => errors.push(error) },
        );
        await expect(subscription.caughtUp).rejects.toBe(failure);
        await waitFor(() => errors.length > 0);
        expect(errors).toEqual([failure]);
        expect(seen).toEqual([positions[0]]);
        expect(subscription.position).toBe(positions[0]);
      });

      itIf(features.secondInstance, 'one process per data directory, so no second instance')('wakes a subscription on a second store instance when the first appends', async () => {
        const other = await required(subject.openSecondInstance, 'openSecondInstance')();
        try {
          const seen: number[] = [];
          const subscription = other.subscribeToAll(async (e) => void seen.push(e.position), { after: await store.headPosition() });
          await subscription.caughtUp;
          await sleep(100); // let the LISTEN connection settle
          const { positions } = await store.append(streamId('cross'), [event(), event()], { expectedRevision: 'no_stream' });
          // The second instance polls rarely; only the cross-process wake-up delivers this fast.
          await waitFor(() => seen.length >= 2, 3000);
          expect(seen).toEqual(positions);
          await subscription.close();
        } finally {
          await other.close();
        }
      });
    });

    describe('concurrency', () => {
      it('lets exactly one of 50 concurrent appends with the same expected revision win', async () => {
        const id = streamId('race');
        await store.append(id, [event()], { expectedRevision: 'no_stream' });
        const results = await Promise.allSettled(
          Array.from({ length: 50 }, () => store.append(id, [event(), event()], { expectedRevision: 0 })),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(49);
        for (const r of lost) {
          expect(r.reason).toBeInstanceOf(WrongExpectedRevisionError);
          expect(r.reason).toMatchObject({ expected: 0, actual: 2 });
        }
        expect((await store.readStream(id)).map((e) => e.revision)).toEqual([0, 1, 2]);
      });

      itIf(features.uniqueEventIds, 'the bad append here reuses an event id, which this store accepts')('settles concurrent appends to many streams one by one: a bad one fails alone', async () => {
        // Concurrent appends may share one transaction (group commit); each must still succeed,
        // conflict or fail on its own merits.
        const a = streamId('grp-a');
        const b = streamId('grp-b');
        const dup = event();
        await store.append(b, [dup], { expectedRevision: 'no_stream' });
        const results = await Promise.allSettled([
          store.append(a, [event()], { expectedRevision: 'no_stream', snapshot: { n: 1 } }),
          store.append(a, [event()], { expectedRevision: 'no_stream' }),
          store.append(b, [{ ...event(), eventId: dup.eventId }], { expectedRevision: 0 }),
          store.append(b, [event()], { expectedRevision: 0 }),
          ...Array.from({ length: 20 }, (_, i) => store.append(streamId(`grp-${i}`), [event()], { expectedRevision: 'any' })),
        ]);
        expect(results[0].status).toBe('fulfilled');
        expect(results[1]).toMatchObject({ status: 'rejected', reason: expect.any(WrongExpectedRevisionError) });
        expect(results[2]).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ name: 'DuplicateEventIdError' }) });
        expect(results[3].status).toBe('fulfilled');
        expect(results.slice(4).every((r) => r.status === 'fulfilled')).toBe(true);
        expect((await store.loadStream(a)).snapshot).toEqual({ state: { n: 1 }, revision: 0 });
        expect((await store.readStream(b)).map((e) => e.revision)).toEqual([0, 1]);
      });

      it('settles concurrent exact appends to many streams one by one: the stale ones conflict, the others land whole with their snapshots', async () => {
        // Rotations: each expects an exact revision of its own stream (the store may take these as one set).
        const ids = Array.from({ length: 12 }, (_, i) => streamId(`exact-${i}`));
        for (const id of ids) await store.append(id, [event()], { expectedRevision: 'no_stream' });
        const results = await Promise.allSettled(
          ids.map((id, i) => store.append(id, [event('A', { i }), event('B', { i })], { expectedRevision: i % 3 === 0 ? 5 : 0, snapshot: { i } })),
        );
        for (const [i, r] of results.entries()) {
          if (i % 3 === 0) {
            expect(r).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ expected: 5, actual: 0 }) });
            expect((await store.readStream(ids[i])).map((e) => e.revision)).toEqual([0]);
            continue;
          }
          expect(r.status).toBe('fulfilled');
          const { positions, position, nextExpectedRevision } = (r as PromiseFulfilledResult<AppendResult>).value;
          expect(nextExpectedRevision).toBe(2);
          expect(positions).toHaveLength(2);
          expect(positions[1]).toBe(position);
          const events = await store.readStream(ids[i]);
          expect(events.map((e) => [e.revision, e.type])).toEqual([[0, 'Tested'], [1, 'A'], [2, 'B']]);
          expect(events.slice(1).map((e) => e.data)).toEqual([{ i }, { i }]);
          expect(events.slice(1).map((e) => e.position)).toEqual(positions);
          const loaded = await store.loadStream(ids[i]);
          if (loaded.snapshot) expect(loaded.snapshot).toEqual({ state: { i }, revision: 2 });
        }
        // A stale append consumed nothing: the stream takes its real next revision.
        await store.append(ids[0], [event()], { expectedRevision: 0 });
      });

      itIf(features.uniqueEventIds, 'the bad append here reuses an event id, which this store accepts')('a repeated event id among concurrent exact appends fails that append alone', async () => {
        const ids = Array.from({ length: 6 }, (_, i) => streamId(`exact-dup-${i}`));
        const taken = event();
        for (const [i, id] of ids.entries()) await store.append(id, [i === 0 ? taken : event()], { expectedRevision: 'no_stream' });
        const results = await Promise.allSettled(ids.map((id, i) => store.append(id, [i === 3 ? { ...event(), eventId: taken.eventId } : event()], { expectedRevision: 0 })));
        expect(results[3]).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ name: 'DuplicateEventIdError' }) });
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
        expect((await store.readStream(ids[3])).map((e) => e.revision)).toEqual([0]);
      });

      it('gives each revision to exactly one of many retrying writers', async () => {
        const id = streamId('writers');
        const written: string[] = [];
        const writer = async () => {
          for (let n = 0; n < 5; n++) {
            const e = event();
            for (;;) {
              const last = await store.readStream(id, { direction: 'backwards', maxCount: 1 });
              const expectedRevision = last.length ? last[0].revision : 'no_stream';
              try {
                await store.append(id, [e], { expectedRevision });
                written.push(e.eventId);
                break;
              } catch (error) {
                if (!(error instanceof WrongExpectedRevisionError)) throw error;
                await sleep(Math.random() * 3); // as a command handler would: back off, re-read, retry
              }
            }
          }
        };
        await Promise.all(Array.from({ length: 10 }, writer));
        const stream = await store.readStream(id);
        expect(stream.map((e) => e.revision)).toEqual(Array.from({ length: 50 }, (_, i) => i));
        expect(new Set(stream.map((e) => e.eventId))).toEqual(new Set(written));
      });

      it(
        'keeps $all gap-free under concurrent appends: checkpointing readers and live subscriptions see every event once, in order',
        async () => {
          const start = await store.headPosition();
          // The bug this hunts: position N+1 visible while N is still in flight, so a reader that
          // checkpoints N+1 never sees N. Readers poll in tight loops with small pages while 64
          // writers commit batches of 1-10 events. Where the adapter allows, the readers use their own
          // store instance: sharing the writers' connection pool would queue each read behind the
          // writes and hide the race.
          const readerStore = subject.openSecondInstance ? await subject.openSecondInstance() : store;
          const seen: number[] = [];
          const seenElsewhere: number[] = [];
          const subscriptions = [
            store.subscribeToAll(async (e) => void seen.push(e.position), { after: start, batchSize: 7 }),
            readerStore.subscribeToAll(async (e) => void seenElsewhere.push(e.position), { after: start, batchSize: 5 }),
          ];
          let writing = true;
          const checkpointingReader = async () => {
            const positions: number[] = [];
            let checkpoint = start;
            for (;;) {
              const done = !writing;
              const page = await readerStore.readAll({ after: checkpoint, maxCount: 5 });
              for (const e of page) positions.push((checkpoint = e.position));
              if (page.length === 0 && done) return positions;
              if (page.length === 0) await new Promise((resolve) => setImmediate(resolve));
            }
          };
          try {
            const readers = [checkpointingReader(), checkpointingReader(), checkpointingReader()];
            const streams = Array.from({ length: 64 }, () => streamId('conc'));
            const appended: NewEvent[] = [];
            await Promise.all(
              streams.map(async (id, s) => {
                for (let n = 0; n < 8; n++) {
                  const events = Array.from({ length: 1 + ((s * 7 + n * 3) % 10) }, () => event('Conc', { s, n }));
                  appended.push(...events);
                  await store.append(id, events, { expectedRevision: 'any' });
                }
              }),
            ).finally(() => (writing = false));
            const all = await store.readAll({ after: start });
            const positions = all.map((e) => e.position);
            expect(all).toHaveLength(appended.length);
            expect(new Set(all.map((e) => e.eventId))).toEqual(new Set(appended.map((e) => e.eventId)));
            expectStrictlyIncreasing(positions);
            for (const id of streams) {
              const revisions = all.filter((e) => e.streamId === id).map((e) => e.revision);
              expect(revisions).toEqual(revisions.map((_, i) => i));
            }

            for (const read of await Promise.all(readers)) expect(read).toEqual(positions);
            const last = positions[positions.length - 1];
            await waitFor(() => subscriptions.every((s) => s.position >= last), 10_000);
            await sleep(50);
            expect(seen).toEqual(positions);
            expect(seenElsewhere).toEqual(positions);
          } finally {
            writing = false;
            await Promise.all(subscriptions.map((s) => s.close()));
            if (readerStore !== store) await readerStore.close();
          }
        },
        60_000,
      );
    });

    describe('KeyValueStore', () => {
      const it = itIf(features.keyValueStore, 'this adapter has no key/value store');
      const kv = () => required(subject.kv, 'kv');

      it('get returns undefined for a missing key; put writes and overwrites', async () => {
        const key = `k-${randomUUID()}`;
        expect(await kv().get(key)).toBeUndefined();
        await kv().put(key, { v: 1, list: ['a'] });
        expect(await kv().get(key)).toEqual({ v: 1, list: ['a'] });
        await kv().put(key, 'replaced');
        expect(await kv().get(key)).toBe('replaced');
      });

      it('putIfAbsent keeps the first value', async () => {
        const key = `k-${randomUUID()}`;
        expect(await kv().putIfAbsent(key, { first: true })).toEqual({ first: true });
        expect(await kv().putIfAbsent(key, { first: false })).toEqual({ first: true });
        expect(await kv().get(key)).toEqual({ first: true });
      });

      it('10 concurrent putIfAbsent calls all return the same winner', async () => {
        const key = `k-${randomUUID()}`;
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => kv().putIfAbsent(key, { writer: i })));
        expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
        expect(await kv().get(key)).toEqual(results[0]);
      });
    });

    describe('durability', () => {
      itIf(features.reopen, 'data lives in the database server, not in this process')('keeps events, snapshots, positions and kv across close + reopen', async () => {
        const id = streamId('durable');
        await store.append(id, [event(), event()], { expectedRevision: 'no_stream', snapshot: { durable: 1 } });
        await store.append(id, [event()], { expectedRevision: 1 });
        await subject.kv?.put('durable-key', { kept: true });
        const before = { all: await store.readAll(), head: await store.headPosition(), loaded: await store.loadStream(id) };

        const reopened = await required(subject.reopen, 'reopen')();
        store = reopened.store;
        subject.kv = reopened.kv;

        expect(await store.headPosition()).toBe(before.head);
        expect(await store.readAll()).toEqual(before.all);
        expect(await store.loadStream(id)).toEqual(before.loaded);
        if (subject.kv) expect(await subject.kv.get('durable-key')).toEqual({ kept: true });
        const next = await store.append(id, [event()], { expectedRevision: 2 });
        expect(next.nextExpectedRevision).toBe(3);
        expect(next.position).toBeGreaterThan(before.head);
      });
    });
  });
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`contract features promise ${what}, but the subject has none`);
  return value;
}

function streamId(prefix: string): string {
  return `${prefix}-${randomUUID()}`;
}

function event(type = 'Tested', data: unknown = { ok: true }): NewEvent {
  return { eventId: randomUUID(), type, data, metadata: { correlationId: randomUUID() } };
}

function strip(e: RecordedEvent): Omit<RecordedEvent, 'recordedAt'> {
  const { recordedAt: _recordedAt, ...rest } = e;
  return rest;
}

function expectStrictlyIncreasing(values: number[]): void {
  for (let i = 1; i < values.length; i++) {
    if (!(values[i] > values[i - 1])) {
      throw new Error(`not strictly increasing at index ${i}: ${values[i - 1]} then ${values[i]}`);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(5);
  }
}
