import { formatFamilyId, type FamilyEvent, type FamilyState } from '@token-ledger/domain';
import type { AppendOptions, NewEvent } from '@token-ledger/event-store';
import { computeEventHash } from '@token-ledger/envelope';
import { verifyChain } from '@token-ledger/forensics';
import { ev, T0, S, envelope } from '../../../../libs/forensics/src/testing/fixtures';
import { MemoryEventStore } from '@token-ledger/event-store';
import { AggregateRepository, ConcurrencyExhaustedError } from './aggregate-repository';
import { familyAggregate } from './aggregates';
import { LedgerMetrics } from '../health/metrics';

const FAM = formatFamilyId(Buffer.alloc(16, 3));
const STREAM = `family-${FAM}`;
const issue = (state: FamilyState) => ({ events: state.status === 'none' ? [ev.issued(FAM, 'alice', T0) as FamilyEvent] : [], result: undefined });
const rotate = (at: number) => (state: FamilyState) => ({ events: [ev.rotated(FAM, 'alice', at, state.generation + 1) as FamilyEvent], result: state.generation + 1 });
const reject = (at: number) => () => ({ events: [ev.rejected(FAM, 'alice', at) as FamilyEvent], result: 'rejected', recordOnly: true });

describe('AggregateRepository hash chain', () => {
  it('chains every appended event and keeps the last hash in the snapshot', async () => {
    const store = new MemoryEventStore();
    const repo = new AggregateRepository(store, familyAggregate);
    await repo.execute(FAM, { actor: 'test' }, issue);
    await repo.execute(FAM, {}, rotate(T0 + S));
    await repo.execute(FAM, {}, reject(T0 + 2 * S));
    const rows = await store.readStream(STREAM);
    expect(rows.map((r) => r.revision)).toEqual([0, 1, 2]);
    expect(rows[0].metadata.prevHash).toBeNull();
    rows.forEach((r, i) => {
      expect(r.metadata.hash).toBe(computeEventHash(r));
      if (i > 0) expect(r.metadata.prevHash).toBe(rows[i - 1].metadata.hash);
    });
    // The rejection was appended at an exact revision, so it carries a snapshot too.
    expect(store.streams.get(STREAM)!.snapshot).toEqual({ revision: 2, state: { state: expect.objectContaining({ v: 1, generation: 2 }), chainHash: rows[2].metadata.hash } });
    expect((await repo.load(FAM)).lastHash).toBe(rows[2].metadata.hash);
    expect(await verifyChain(store, { familyId: FAM })).toMatchObject({ ok: true, events: 3 });
  });

  it('takes the previous hash from events stored after the snapshot', async () => {
    const store = new MemoryEventStore();
    const repo = new AggregateRepository(store, familyAggregate);
    await repo.execute(FAM, {}, issue);
    // Someone appended (chained) without a snapshot: the snapshot is now one event behind.
    const [last] = await store.readStream(STREAM, { direction: 'backwards', maxCount: 1 });
    const { sealEvents } = await import('@token-ledger/envelope');
    const sealed = sealEvents(STREAM, 1, last.metadata.hash as string, [envelope(ev.rotated(FAM, 'alice', T0 + S, 2))]);
    await store.append(STREAM, sealed.events, { expectedRevision: 0 });
    const loaded = await repo.load(FAM);
    expect(loaded).toMatchObject({ revision: 1, lastHash: sealed.lastHash });
    expect(loaded.state.generation).toBe(2);
    await repo.execute(FAM, {}, rotate(T0 + 2 * S));
    expect(await verifyChain(store, { familyId: FAM })).toMatchObject({ ok: true, events: 3 });
  });

  it('replays the stream under an old-shape snapshot (bare state) and chains on', async () => {
    const store = new MemoryEventStore();
    // History written before the chain: no hashes, snapshot = the bare state.
    await store.append(STREAM, [envelope(ev.issued(FAM, 'alice', T0))], { expectedRevision: 'no_stream' });
    const repoless = familyAggregate.evolve(familyAggregate.initial(FAM), ev.issued(FAM, 'alice', T0) as FamilyEvent);
    await store.append(STREAM, [envelope(ev.rotated(FAM, 'alice', T0 + S, 2))], { expectedRevision: 0, snapshot: familyAggregate.evolve(repoless, ev.rotated(FAM, 'alice', T0 + S, 2) as FamilyEvent) });
    const repo = new AggregateRepository(store, familyAggregate);
    const readStream = jest.spyOn(store, 'readStream');
    const loaded = await repo.load(FAM);
    expect(readStream).toHaveBeenCalledWith(STREAM);
    expect(loaded.state.generation).toBe(2);
    const legacy = (await store.readStream(STREAM))[1];
    expect(loaded.lastHash).toBe(computeEventHash(legacy));

    await repo.execute(FAM, {}, rotate(T0 + 2 * S));
    const rows = await store.readStream(STREAM);
    expect(rows[2].metadata.prevHash).toBe(computeEventHash(legacy));
    expect(store.streams.get(STREAM)!.snapshot!.state).toMatchObject({ chainHash: rows[2].metadata.hash });
    // The pre-chain events are reported, and accepted when allowed.
    expect(await verifyChain(store, { familyId: FAM }, { allowUnchained: true })).toMatchObject({ ok: true, unchained: 2 });
  });

  it('re-decides a conflicting rejection at the new revision instead of appending with "any"', async () => {
    const store = new MemoryEventStore();
    const repo = new AggregateRepository(store, familyAggregate);
    await repo.execute(FAM, {}, issue);
    const original = store.append.bind(store);
    const other = new AggregateRepository(new MemoryEventStoreView(store, original), familyAggregate);
    let raced = false;
    // Another node rotates between the rejection's load and its append.
    const appendSpy = jest.spyOn(store, 'append').mockImplementation(async (id: string, events: NewEvent[], options: AppendOptions) => {
      if (!raced) {
        raced = true;
        await other.execute(FAM, {}, rotate(T0 + S));
      }
      return original(id, events, options);
    });
    let decisions = 0;
    await repo.execute(FAM, {}, () => {
      decisions++;
      return reject(T0 + 2 * S)();
    });
    expect(decisions).toBe(2);
    const expectations = appendSpy.mock.calls.map((c) => (c[2] as AppendOptions).expectedRevision);
    expect(expectations).not.toContain('any');
    expect(await verifyChain(store, { familyId: FAM })).toMatchObject({ ok: true, events: 3 });
    expect((await store.readStream(STREAM)).map((r) => r.type)).toEqual(['TokenFamilyIssued', 'TokenRotated', 'RefreshRejected']);
  });

  it('a flood of rejections cannot exhaust a real rotation: conflicts that left the state alone do not count', async () => {
    const store = new MemoryEventStore();
    const repo = new AggregateRepository(store, familyAggregate);
    await repo.execute(FAM, {}, issue);
    // Before each of the rotation's first 120 appends, a forger's rejection lands first.
    const original = store.append.bind(store);
    let floods = 0;
    const forger = new AggregateRepository(new MemoryEventStoreView(store, original), familyAggregate);
    jest.spyOn(store, 'append').mockImplementation(async (id: string, events: NewEvent[], options: AppendOptions) => {
      if (events[0].type === 'TokenRotated' && floods < 120) {
        floods++;
        await forger.execute(FAM, {}, reject(T0 + S));
      }
      return original(id, events, options);
    });
    const { result } = await repo.execute(FAM, {}, rotate(T0 + 2 * S));
    expect(result).toBe(2);
    expect(floods).toBe(120);
    expect(await verifyChain(store, { familyId: FAM })).toMatchObject({ ok: true, events: 122 });
  });

  it('still gives up after 50 conflicts that changed the state (counted by command)', async () => {
    const store = new MemoryEventStore();
    const metrics = new LedgerMetrics();
    const repo = new AggregateRepository(store, familyAggregate, metrics.repositoryObserver());
    await repo.execute(FAM, {}, issue);
    const original = store.append.bind(store);
    const other = new AggregateRepository(new MemoryEventStoreView(store, original), familyAggregate);
    let n = 0;
    jest.spyOn(store, 'append').mockImplementation(async (id: string, events: NewEvent[], options: AppendOptions) => {
      if (events[0].type === 'RefreshRejected') await other.execute(FAM, {}, rotate(T0 + ++n * S));
      return original(id, events, options);
    });
    await expect(repo.execute(FAM, { command: 'record_rejections' }, reject(T0))).rejects.toBeInstanceOf(ConcurrencyExhaustedError);
    expect(n).toBe(50);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^token_ledger_concurrency_retries_total\{command="record_rejections"\} 50$/m);
    expect(text).toMatch(/^token_ledger_concurrency_exhausted_total\{command="record_rejections"\} 1$/m);
    // The issue went through the same repository: counted as a family issued.
    expect(text).toMatch(/^token_ledger_tokens_issued_total\{kind="family"\} 1$/m);
  });
});

/** The same store, appending through the original (unspied) append. */
class MemoryEventStoreView extends MemoryEventStore {
  constructor(
    private readonly inner: MemoryEventStore,
    private readonly rawAppend: MemoryEventStore['append'],
  ) {
    super();
  }
  override append(...args: Parameters<MemoryEventStore['append']>) {
    return this.rawAppend(...args);
  }
  override readStream(...args: Parameters<MemoryEventStore['readStream']>) {
    return this.inner.readStream(...args);
  }
  override loadStream(...args: Parameters<MemoryEventStore['loadStream']>) {
    return this.inner.loadStream(...args);
  }
}

describe('AggregateRepository.execute with a prefetched load', () => {
  it('decides the first attempt on the load started earlier, and reloads after a conflict', async () => {
    const store = new MemoryEventStore();
    const repo = new AggregateRepository(store, familyAggregate);
    await repo.execute(FAM, {}, issue);
    const loadStream = jest.spyOn(store, 'loadStream');

    const prefetched = repo.load(FAM);
    await prefetched;
    const seen: number[] = [];
    const decide = (state: FamilyState) => (seen.push(state.generation), rotate(T0 + S)(state));
    expect((await repo.execute(FAM, {}, decide, prefetched)).result).toBe(2);
    expect(seen).toEqual([1]);
    expect(loadStream).toHaveBeenCalledTimes(1); // the prefetch only

    // A prefetch that went stale (another rotation appended meanwhile): the append conflicts, the
    // command reloads and decides again on the current state.
    const stale = repo.load(FAM);
    await repo.execute(FAM, {}, rotate(T0 + 2 * S));
    seen.length = 0;
    expect((await repo.execute(FAM, {}, decide, stale)).result).toBe(4);
    expect(seen).toEqual([2, 3]);
    expect(await verifyChain(store, { familyId: FAM })).toMatchObject({ ok: true, events: 4 });
  });

  it('fails as the load failed when the prefetched load failed (a store outage stays a store outage)', async () => {
    const store = new MemoryEventStore();
    const repo = new AggregateRepository(store, familyAggregate);
    const outage = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const failed = Promise.reject(outage);
    failed.catch(() => undefined);
    await expect(repo.execute(FAM, {}, issue, failed)).rejects.toBe(outage);
  });
});
