import { formatFamilyId, type FamilyEvent } from '@token-ledger/domain';
import type { RecordedEvent } from '@token-ledger/event-store';
import { computeEventHash, deriveChainMacKey, familyAggregate, familyStreamId, subjectStreamId, toDomainEvent } from '@token-ledger/envelope';
import { describeProblem, verifyChain, type VerifyTarget } from './verify';
import { append, envelope, ev, S, T0 } from './testing/fixtures';
import { MemoryEventStore } from '@token-ledger/event-store';

const FAM_A = formatFamilyId(Buffer.alloc(16, 1));
const FAM_B = formatFamilyId(Buffer.alloc(16, 2));
const A = familyStreamId(FAM_A);
const B = familyStreamId(FAM_B);

/** Two families written interleaved (positions 1..9), chained. */
async function fixture(): Promise<MemoryEventStore> {
  const store = new MemoryEventStore();
  await append(store, subjectStreamId('alice'), [ev.linked('alice', FAM_A, T0)]);
  await append(store, A, [ev.issued(FAM_A, 'alice', T0)]);
  await append(store, B, [ev.issued(FAM_B, 'alice', T0 + S)]);
  for (let g = 2; g <= 4; g++) {
    await append(store, A, [ev.rotated(FAM_A, 'alice', T0 + g * 10 * S, g)]);
    await append(store, B, [ev.rotated(FAM_B, 'alice', T0 + g * 10 * S + S, g)]);
  }
  // Snapshots like the repository's: { state, chainHash } at the last revision.
  for (const id of [A, B]) {
    const stream = store.streams.get(id)!;
    const last = store.rows.filter((r) => r.streamId === id).at(-1)!;
    const state = store.rows.filter((r) => r.streamId === id).reduce((s, r) => familyAggregate.evolve(s, toDomainEvent<FamilyEvent>(r)), familyAggregate.initial(id));
    stream.snapshot = { state: { state: JSON.parse(JSON.stringify(state)), chainHash: last.metadata.hash }, revision: stream.revision };
  }
  return store;
}

const row = (store: MemoryEventStore, streamId: string, revision: number): RecordedEvent =>
  store.rows.find((r) => r.streamId === streamId && r.revision === revision)!;

const both: [string, (familyId: string) => VerifyTarget][] = [
  ['one family', (familyId) => ({ familyId })],
  ['all streams', () => ({ all: true })],
];

describe('verifyChain', () => {
  it.each(both)('passes an intact history (%s)', async (_, target) => {
    const store = await fixture();
    const report = await verifyChain(store, target(FAM_A));
    expect(report).toMatchObject({ ok: true, problems: [], problemCount: 0, firstProblem: null, unchained: 0 });
    expect(report!.events).toBe('familyId' in target(FAM_A) ? 4 : 9);
  });

  it.each(both)('names an edited field as altered (%s)', async (_, target) => {
    const store = await fixture();
    const victim = row(store, A, 2);
    (victim.metadata.context as unknown) = { ip: '10.0.0.1' };
    const report = (await verifyChain(store, target(FAM_A)))!;
    expect(report.ok).toBe(false);
    expect(report.firstProblem).toMatchObject({ kind: 'altered', streamId: A, revision: 2, position: victim.position });
    expect(describeProblem(report.firstProblem!)).toContain(`${A} revision 2 (position ${victim.position})`);
  });

  it.each(both)('names a replaced and re-hashed event through the broken link after it (%s)', async (_, target) => {
    const store = await fixture();
    const victim = row(store, A, 1);
    (victim.data as { generation: number }).generation = 9;
    victim.metadata.hash = computeEventHash(victim);
    const report = (await verifyChain(store, target(FAM_A)))!;
    expect(report.firstProblem).toMatchObject({ kind: 'broken_link', streamId: A, revision: 2, position: row(store, A, 2).position });
    expect(report.firstProblem!.detail).toContain(`revision 1 (position ${victim.position})`);
  });

  it.each(both)('names a deleted event as missing (%s)', async (_, target) => {
    const store = await fixture();
    const gone = row(store, A, 2);
    store.rows = store.rows.filter((r) => r !== gone);
    const report = (await verifyChain(store, target(FAM_A)))!;
    expect(report.firstProblem).toMatchObject({ kind: 'missing', streamId: A, revision: 2, position: row(store, A, 3).position });
    expect(report.problemCount).toBe(1);
  });

  it.each(both)('names deleted last events as truncated (%s)', async (_, target) => {
    const store = await fixture();
    store.rows = store.rows.filter((r) => !(r.streamId === A && r.revision >= 2));
    const report = (await verifyChain(store, target(FAM_A)))!;
    expect(report.firstProblem).toMatchObject({ kind: 'truncated', streamId: A, revision: 2, position: null });
    expect(report.firstProblem!.detail).toContain('2 event(s) deleted');
  });

  it.each(both)('names two events whose positions were swapped as reordered (%s)', async (_, target) => {
    const store = await fixture();
    const r1 = row(store, A, 1);
    const r2 = row(store, A, 2);
    [r1.position, r2.position] = [r2.position, r1.position];
    const report = (await verifyChain(store, target(FAM_A)))!;
    expect(report.ok).toBe(false);
    expect(report.problems.every((p) => p.kind === 'reordered' && p.streamId === A)).toBe(true);
    expect(report.firstProblem!.revision).toBe('all' in target(FAM_A) ? 1 : 2);
  });

  it.each(both)('names two events whose data was swapped as altered, the first one first (%s)', async (_, target) => {
    const store = await fixture();
    const r1 = row(store, A, 1);
    const r2 = row(store, A, 3);
    [r1.data, r2.data] = [r2.data, r1.data];
    const report = (await verifyChain(store, target(FAM_A)))!;
    expect(report.problems.map((p) => [p.kind, p.revision])).toEqual([
      ['altered', 1],
      ['altered', 3],
    ]);
  });

  it('catches a rewritten tail whose snapshot was left behind', async () => {
    const store = await fixture();
    const last = row(store, A, 3);
    (last.data as { generation: number }).generation = 42;
    last.metadata.hash = computeEventHash(last);
    const report = (await verifyChain(store, { familyId: FAM_A }))!;
    expect(report.firstProblem).toMatchObject({ kind: 'snapshot_mismatch', streamId: A, revision: 3 });
  });

  it.each(both)('names a snapshot edited to un-revoke a family, though every event still verifies (%s)', async (_, target) => {
    const store = await fixture();
    await append(store, A, [ev.revoked(FAM_A, 'alice', T0 + 100 * S)]);
    const stream = store.streams.get(A)!;
    const last = store.rows.filter((r) => r.streamId === A).at(-1)!;
    const revoked = store.rows.filter((r) => r.streamId === A).reduce((s, r) => familyAggregate.evolve(s, toDomainEvent<FamilyEvent>(r)), familyAggregate.initial(A));
    expect(revoked.status).toBe('revoked');
    stream.snapshot = { state: { state: JSON.parse(JSON.stringify(revoked)), chainHash: last.metadata.hash }, revision: stream.revision };
    expect((await verifyChain(store, target(FAM_A)))!.ok).toBe(true);

    (stream.snapshot.state as { state: Record<string, unknown> }).state.status = 'active';
    const report = (await verifyChain(store, target(FAM_A)))!;
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([expect.objectContaining({ kind: 'snapshot_mismatch', streamId: A, revision: stream.revision })]);
    expect(report.firstProblem!.detail).toContain('differs in: status');
  });

  describe('keyed chain head (headMac under LEDGER_KEK)', () => {
    const KEY = deriveChainMacKey(Buffer.alloc(32, 7));
    async function keyedStore(): Promise<MemoryEventStore> {
      const store = new MemoryEventStore();
      await append(store, A, [ev.issued(FAM_A, 'alice', T0)], {}, { macKey: KEY });
      for (let g = 2; g <= 4; g++) await append(store, A, [ev.rotated(FAM_A, 'alice', T0 + g * 10 * S, g)], {}, { macKey: KEY });
      return store;
    }
    /** What someone with database access but not the KEK can do: rewrite data and recompute every plain hash. */
    function rewriteWithPlainHashes(store: MemoryEventStore, streamId: string): void {
      let prev: string | null = null;
      for (const r of store.rows.filter((e) => e.streamId === streamId).sort((a, b) => a.revision - b.revision)) {
        if (r.revision >= 1) (r.data as { context: { ip: string } }).context = { ip: '10.66.66.66' };
        r.metadata.prevHash = prev;
        r.metadata.hash = computeEventHash(r);
        prev = r.metadata.hash as string;
      }
    }

    it('every event carries a headMac outside the hash; verify with the key passes', async () => {
      const store = await keyedStore();
      expect(store.rows.every((r) => typeof r.metadata.headMac === 'string' && r.metadata.hash === computeEventHash(r))).toBe(true);
      expect(await verifyChain(store, { familyId: FAM_A }, { macKey: KEY })).toMatchObject({ ok: true, keyed: true, unkeyed: 0 });
    });

    it.each(both)('a whole stream rewritten with recomputed plain hashes: self-consistent without the key, bad_mac with it (%s)', async (_, target) => {
      const store = await keyedStore();
      rewriteWithPlainHashes(store, A);
      expect(await verifyChain(store, target(FAM_A))).toMatchObject({ ok: true, keyed: false });
      const report = (await verifyChain(store, target(FAM_A), { macKey: KEY }))!;
      expect(report.ok).toBe(false);
      expect(report.firstProblem).toMatchObject({ kind: 'bad_mac', streamId: A, revision: 1 });
      expect(report.problems.map((p) => [p.kind, p.revision])).toEqual([
        ['bad_mac', 1],
        ['bad_mac', 2],
        ['bad_mac', 3],
      ]);
      // The wrong key fails every event, so a misconfigured LEDGER_KEK cannot pass silently.
      const wrong = (await verifyChain(store, target(FAM_A), { macKey: deriveChainMacKey(Buffer.alloc(32, 8)) }))!;
      expect(wrong.problemCount).toBe(4);
    });

    it('stripping the MACs as well: the stripped event after keyed ones is bad_mac; an all-unkeyed stream is reported unkeyed', async () => {
      const store = await keyedStore();
      rewriteWithPlainHashes(store, A);
      for (const r of store.rows.filter((e) => e.revision >= 2)) delete r.metadata.headMac;
      let report = (await verifyChain(store, { familyId: FAM_A }, { macKey: KEY }))!;
      expect(report.problems.map((p) => [p.kind, p.revision])).toEqual([
        ['bad_mac', 1],
        ['bad_mac', 2],
        ['bad_mac', 3],
      ]);
      for (const r of store.rows) delete r.metadata.headMac;
      report = (await verifyChain(store, { familyId: FAM_A }, { macKey: KEY }))!;
      expect(report).toMatchObject({ ok: false, unkeyed: 4, problemCount: 1, firstProblem: { kind: 'unkeyed', streamId: A, revision: 0 } });
    });

    it('events written before LEDGER_KEK are unkeyed, not tampered; allowed with allowUnkeyed; keyed events after them are checked', async () => {
      const store = await fixture(); // no MACs
      await append(store, A, [ev.rotated(FAM_A, 'alice', T0 + 100 * S, 5)], {}, { macKey: KEY });
      const report = (await verifyChain(store, { familyId: FAM_A }, { macKey: KEY }))!;
      expect(report.problems.map((p) => p.kind)).toEqual(['unkeyed']);
      expect(report.unkeyed).toBe(4);
      expect(await verifyChain(store, { all: true }, { macKey: KEY, allowUnkeyed: true })).toMatchObject({ ok: true, keyed: true });
      const last = row(store, A, 4);
      last.metadata.hash = computeEventHash({ ...last, data: { ...(last.data as object), generation: 9 } });
      (last.data as { generation: number }).generation = 9;
      expect((await verifyChain(store, { familyId: FAM_A }, { macKey: KEY, allowUnkeyed: true }))!.problems.map((p) => [p.kind, p.revision])).toEqual([['bad_mac', 4]]);
    });
  });

  it('flags a removed hash after chained events as altered', async () => {
    const store = await fixture();
    delete row(store, B, 3).metadata.hash;
    const report = (await verifyChain(store, { all: true }))!;
    expect(report.firstProblem).toMatchObject({ kind: 'altered', streamId: B, revision: 3 });
  });

  it('reports pre-chain events as unchained unless they are allowed', async () => {
    const store = await fixture();
    // A stream written before the chain: no prevHash/hash at all.
    await store.append('family-legacy', [envelope(ev.issued('fam_legacy', 'bob', T0))], { expectedRevision: 'no_stream' });
    await store.append('family-legacy', [envelope(ev.rotated('fam_legacy', 'bob', T0 + S, 2))], { expectedRevision: 0 });
    const strict = (await verifyChain(store, { all: true }))!;
    expect(strict).toMatchObject({ ok: false, unchained: 2, problemCount: 1 });
    expect(strict.firstProblem).toMatchObject({ kind: 'unchained', streamId: 'family-legacy', revision: 0 });
    expect(await verifyChain(store, { all: true }, { allowUnchained: true })).toMatchObject({ ok: true, unchained: 2 });
  });

  it('collects problems across streams in position order and caps the list', async () => {
    const store = await fixture();
    for (const r of store.rows) (r.data as Record<string, unknown>).x = 1;
    const report = (await verifyChain(store, { all: true }, { maxProblems: 3 }))!;
    expect(report.problemCount).toBe(9);
    expect(report.problems.map((p) => p.position)).toEqual([1, 2, 3]);
  });

  it('pages through the store and reports progress', async () => {
    const store = await fixture();
    const seen: number[] = [];
    const report = await verifyChain(store, { all: true }, { pageSize: 2, onProgress: (p) => seen.push(p.events) });
    expect(report!.ok).toBe(true);
    expect(seen).toEqual([2, 4, 6, 8, 9]);
  });

  it('is null for an unknown family', async () => {
    expect(await verifyChain(await fixture(), { familyId: 'fam_nope' })).toBeNull();
  });
});
