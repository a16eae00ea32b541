import { formatFamilyId } from '@token-ledger/domain';
import { familyStreamId, subjectStreamId } from '@token-ledger/envelope';
import { familyTimeline, subjectEvents, subjectFamilyStatesAt, subjectTimeline } from './timeline';
import { append, ev, iso, POLICY, S, T0 } from './testing/fixtures';
import { MemoryEventStore } from '@token-ledger/event-store';

const FAM_A = formatFamilyId(Buffer.alloc(16, 1));
const FAM_B = formatFamilyId(Buffer.alloc(16, 2));

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** alice: family A (issued T0, rotated +10 s and +20 s, reuse +30 s) and family B (issued +5 s, rejected +25 s). */
async function aliceStore(): Promise<MemoryEventStore> {
  const store = new MemoryEventStore();
  await append(store, subjectStreamId('alice'), [ev.linked('alice', FAM_A, T0)]);
  await append(store, familyStreamId(FAM_A), [ev.issued(FAM_A, 'alice', T0)], { actor: 'admin', correlationId: 'c-1' });
  await append(store, subjectStreamId('alice'), [ev.linked('alice', FAM_B, T0 + 5 * S)]);
  await append(store, familyStreamId(FAM_B), [ev.issued(FAM_B, 'alice', T0 + 5 * S, POLICY, '192.0.2.1')]);
  await append(store, familyStreamId(FAM_A), [ev.rotated(FAM_A, 'alice', T0 + 10 * S, 2, '203.0.113.8')]);
  await append(store, familyStreamId(FAM_A), [ev.rotated(FAM_A, 'alice', T0 + 20 * S, 3, '203.0.113.9')]);
  await append(store, familyStreamId(FAM_B), [ev.rejected(FAM_B, 'alice', T0 + 25 * S)]);
  await append(store, familyStreamId(FAM_A), [ev.reuse(FAM_A, 'alice', T0 + 30 * S, 1, 3), ev.revoked(FAM_A, 'alice', T0 + 30 * S)]);
  return store;
}

describe('familyTimeline', () => {
  it('rebuilds the state as of any instant with the domain fold, and leaves later events out', async () => {
    const store = await aliceStore();
    expect(await familyTimeline(store, FAM_A, { at: T0 - 1 })).toMatchObject({ state: null, events: [] });

    const issued = await familyTimeline(store, FAM_A, { at: T0 });
    expect(issued!.events.map((e) => e.type)).toEqual(['TokenFamilyIssued']);
    expect(issued!.state).toEqual({
      familyId: FAM_A,
      subject: 'alice',
      clientId: 'web',
      scope: ['api:read'],
      status: 'active',
      generation: 1,
      createdAt: iso(T0),
      lastUsedAt: iso(T0),
      idleExpiresAt: iso(T0 + 3600 * S),
      absoluteExpiresAt: iso(T0 + 86_400 * S),
      revokedAt: null,
      revokedReason: null,
      lastContext: { ip: '203.0.113.7' },
    });
    expect(issued!.at).toBe(iso(T0));

    const mid = await familyTimeline(store, FAM_A, { at: iso(T0 + 15 * S) });
    expect(mid!.state).toMatchObject({ status: 'active', generation: 2, lastUsedAt: iso(T0 + 10 * S), lastContext: { ip: '203.0.113.8' } });

    const end = await familyTimeline(store, FAM_A, { at: new Date(T0 + 30 * S) });
    expect(end!.events.map((e) => e.type)).toEqual(['TokenFamilyIssued', 'TokenRotated', 'TokenRotated', 'TokenReuseDetected', 'TokenFamilyRevoked']);
    expect(end!.state).toMatchObject({ status: 'revoked', generation: 3, revokedAt: iso(T0 + 30 * S), revokedReason: 'reuse_detected' });
    expect(end!.nextCursor).toBeNull();
  });

  it('returns public events (SPEC §3 shape) with their chain links', async () => {
    const store = await aliceStore();
    const [first] = (await familyTimeline(store, FAM_A, { at: T0 }))!.events;
    expect(Object.keys(first).sort()).toEqual(['clientId', 'data', 'eventId', 'familyId', 'metadata', 'occurredAt', 'position', 'subject', 'type']);
    expect(first).toMatchObject({ familyId: FAM_A, subject: 'alice', clientId: 'web', occurredAt: iso(T0), position: 2 });
    expect(first.metadata).toMatchObject({ actor: 'admin', correlationId: 'c-1', schemaVersion: 1, prevHash: null });
    expect(first.metadata.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('reads an active family past its idle expiry as expired, without any recorded expiry', async () => {
    const store = new MemoryEventStore();
    const policy = { ...POLICY, refreshIdleTtl: 60 };
    await append(store, familyStreamId(FAM_A), [ev.issued(FAM_A, 'alice', T0, policy)]);
    expect((await familyTimeline(store, FAM_A, { at: T0 + 59_999 }))!.state!.status).toBe('active');
    expect((await familyTimeline(store, FAM_A, { at: T0 + 60 * S }))!.state!.status).toBe('expired');
  });

  it('pages its events with cursor and limit while the state still covers every event up to `at`', async () => {
    const store = await aliceStore();
    const page1 = (await familyTimeline(store, FAM_A, { limit: 2, pageSize: 1 }))!;
    expect(page1.events.map((e) => e.type)).toEqual(['TokenFamilyIssued', 'TokenRotated']);
    expect(page1.state!.status).toBe('revoked');
    expect(page1.nextCursor).toBe('2');
    const page2 = (await familyTimeline(store, FAM_A, { limit: 2, cursor: Number(page1.nextCursor) }))!;
    expect(page2.events.map((e) => e.type)).toEqual(['TokenRotated', 'TokenReuseDetected']);
    const page3 = (await familyTimeline(store, FAM_A, { limit: 2, cursor: Number(page2.nextCursor) }))!;
    expect(page3.events.map((e) => e.type)).toEqual(['TokenFamilyRevoked']);
    expect(page3.nextCursor).toBeNull();
  });

  it('is null for a family that has no stream', async () => {
    expect(await familyTimeline(new MemoryEventStore(), FAM_A)).toBeNull();
  });
});

describe('subjectTimeline', () => {
  it('merges every family of the subject (and the subject stream) by global position', async () => {
    const store = await aliceStore();
    const all = await collect(subjectEvents(store, 'alice', { bufferedEvents: 1 }));
    expect(all.map((e) => e.position)).toEqual([...all.map((e) => e.position)].sort((a, b) => a - b));
    expect(all).toHaveLength((await store.headPosition()));
    expect(new Set(all.map((e) => e.streamId))).toEqual(new Set([subjectStreamId('alice'), familyStreamId(FAM_A), familyStreamId(FAM_B)]));
  });

  it('keeps only events in [from, to] (inclusive), as public events', async () => {
    const store = await aliceStore();
    const window = await collect(subjectTimeline(store, 'alice', { from: iso(T0 + 5 * S), to: iso(T0 + 25 * S) }));
    expect(window.map((e) => [e.type, e.familyId])).toEqual([
      ['FamilyLinkedToSubject', FAM_B],
      ['TokenFamilyIssued', FAM_B],
      ['TokenRotated', FAM_A],
      ['TokenRotated', FAM_A],
      ['RefreshRejected', FAM_B],
    ]);
    expect(await collect(subjectTimeline(store, 'nobody'))).toEqual([]);
  });

  it('gives each family state as of an instant', async () => {
    const store = await aliceStore();
    const states = await subjectFamilyStatesAt(store, 'alice', T0 + 7 * S);
    expect(states.map((s) => [s.familyId, s.status, s.generation])).toEqual([
      [FAM_A, 'active', 1],
      [FAM_B, 'active', 1],
    ]);
  });
});
