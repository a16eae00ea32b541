import { verifyChain, type ChainProblem, type VerifyReport } from '@token-ledger/forensics';
import type { SqlClient } from '@token-ledger/event-store';
import { formatRefreshToken, parseRefreshToken } from '@token-ledger/domain';
import { computeEventHash, deriveChainMacKey } from '@token-ledger/envelope';
import { LedgerClient, startLedger, type Ledger, type StoreKind } from './ledger-harness';

interface Row {
  position: string | number;
  stream_id: string;
  revision: string | number;
  event_id: string;
  type: string;
  data: unknown;
  metadata: Record<string, unknown>;
  recorded_at: Date | string;
}

/**
 * Tamper evidence on a real store: history written by the real app over HTTP, then rows edited,
 * deleted, swapped and reordered in SQL the way someone with database access would; verify must
 * name the exact spot, and pass again once the rows are put back.
 */
export function forensicsTamperSuite(storeKind: () => StoreKind): void {
  const KEK = Buffer.alloc(32, 0x5a);
  const macKey = deriveChainMacKey(KEK);
  let ledger: Ledger;
  let sql: SqlClient;
  let familyId: string;
  let otherFamilyId: string;
  const stream = () => `family-${familyId}`;

  beforeAll(async () => {
    ledger = await startLedger({ store: storeKind(), env: { LEDGER_KEK: KEK.toString('base64') } });
    sql = ledger.runtime.readModels.sql; // the events' own database on the SQL stores
    const api = new LedgerClient(ledger.baseUrl);
    const client = await api.registerClient({ clientId: 'web', reuseGraceSeconds: 5 });
    const issued = await api.issue({ subject: 'alice', clientId: 'web', scope: 'api:read', context: { ip: '203.0.113.7' } });
    familyId = issued.family_id;
    let token = issued.refresh_token;
    for (let i = 0; i < 3; i++) token = (await api.refresh(token, client)).body.refresh_token;
    const parts = parseRefreshToken(token)!;
    await api.refresh(formatRefreshToken({ ...parts, secret: Buffer.alloc(32, 1) }), client); // RefreshRejected
    const other = await api.issue({ subject: 'bob', clientId: 'web', scope: 'api:read' });
    otherFamilyId = other.family_id;
    await api.refresh(other.refresh_token, client);
    await api.refresh(token, client);
  });
  afterAll(async () => {
    await ledger?.destroy();
  });

  const rows = async (streamId: string): Promise<Row[]> =>
    sql.query<Row>('select position, stream_id, revision, event_id, type, data, metadata, recorded_at from tl_events where stream_id = $1 order by revision', [streamId]);
  const at = async (streamId: string, revision: number): Promise<Row> => (await rows(streamId)).find((r) => Number(r.revision) === revision)!;

  async function reinsert(r: Row): Promise<void> {
    await sql.query(
      'insert into tl_events (position, stream_id, revision, event_id, type, data, metadata, recorded_at) values ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8)',
      [r.position, r.stream_id, r.revision, r.event_id, r.type, JSON.stringify(r.data), JSON.stringify(r.metadata), r.recorded_at],
    );
  }
  async function setData(position: string | number, data: unknown): Promise<void> {
    await sql.query('update tl_events set data = $2::jsonb where position = $1', [position, JSON.stringify(data)]);
  }
  async function both(): Promise<[VerifyReport, VerifyReport]> {
    return [(await verifyChain(ledger.store, { familyId }))!, (await verifyChain(ledger.store, { all: true }))!];
  }
  const first = (r: VerifyReport): Partial<ChainProblem> | null => r.firstProblem && { kind: r.firstProblem.kind, streamId: r.firstProblem.streamId, revision: r.firstProblem.revision, position: r.firstProblem.position };
  async function expectClean(): Promise<void> {
    const [one, all] = await both();
    expect(one).toMatchObject({ ok: true, problemCount: 0, unchained: 0 });
    expect(all).toMatchObject({ ok: true, problemCount: 0, unchained: 0 });
  }

  it('the history the app wrote verifies clean, every event chained (the rejection too)', async () => {
    const family = await rows(stream());
    expect(family.map((r) => r.type)).toEqual(['TokenFamilyIssued', 'TokenRotated', 'TokenRotated', 'TokenRotated', 'RefreshRejected', 'TokenRotated']);
    const [one, all] = await both();
    expect(one).toMatchObject({ ok: true, events: 6, streams: 1 });
    // family ×2, subject ×2, client.
    expect(all).toMatchObject({ ok: true, streams: 5 });
    expect(all.events).toBe(Number((await sql.query<{ n: string | number }>('select count(*) as n from tl_events'))[0].n));
    // LEDGER_KEK is set: every event carries a head MAC, and they all check out with the key.
    expect(Number((await sql.query<{ n: string | number }>(`select count(*) as n from tl_events where not metadata ? 'headMac'`))[0].n)).toBe(0);
    expect(await verifyChain(ledger.store, { all: true }, { macKey })).toMatchObject({ ok: true, keyed: true, unkeyed: 0 });
  });

  it('an edited field: names the event as altered', async () => {
    const victim = await at(stream(), 2);
    await sql.query(`update tl_events set metadata = jsonb_set(metadata, '{context,ip}', '"10.66.66.66"') where position = $1`, [victim.position]);
    const [one, all] = await both();
    const expected = { kind: 'altered', streamId: stream(), revision: 2, position: Number(victim.position) };
    expect(first(one)).toEqual(expected);
    expect(first(all)).toEqual(expected);
    expect(all.problemCount).toBe(1);
    await sql.query('update tl_events set metadata = $2::jsonb where position = $1', [victim.position, JSON.stringify(victim.metadata)]);
    await expectClean();
  });

  it('a deleted event: names the missing revision and where the chain resumes', async () => {
    const victim = await at(stream(), 3);
    const next = await at(stream(), 4);
    await sql.query('delete from tl_events where position = $1', [victim.position]);
    const [one, all] = await both();
    const expected = { kind: 'missing', streamId: stream(), revision: 3, position: Number(next.position) };
    expect(first(one)).toEqual(expected);
    expect(first(all)).toEqual(expected);
    await reinsert(victim);
    await expectClean();
  });

  it('the last event deleted: names the stream as truncated', async () => {
    const victim = await at(stream(), 5);
    await sql.query('delete from tl_events where position = $1', [victim.position]);
    const [one, all] = await both();
    const expected = { kind: 'truncated', streamId: stream(), revision: 5, position: null };
    expect(first(one)).toEqual(expected);
    expect(first(all)).toEqual(expected);
    await reinsert(victim);
    await expectClean();
  });

  it("two events' data swapped: names the first of them, then the second", async () => {
    const a = await at(stream(), 1);
    const b = await at(stream(), 3);
    await setData(a.position, b.data);
    await setData(b.position, a.data);
    const [one, all] = await both();
    for (const report of [one, all]) {
      expect(report.problems.map((p) => [p.kind, p.revision, p.position])).toEqual([
        ['altered', 1, Number(a.position)],
        ['altered', 3, Number(b.position)],
      ]);
    }
    await setData(a.position, a.data);
    await setData(b.position, b.data);
    await expectClean();
  });

  it("data swapped between two families' events: names the earlier one", async () => {
    const a = await at(stream(), 1);
    const b = await at(`family-${otherFamilyId}`, 1);
    await setData(a.position, b.data);
    await setData(b.position, a.data);
    const all = (await verifyChain(ledger.store, { all: true }))!;
    expect(first(all)).toEqual({ kind: 'altered', streamId: stream(), revision: 1, position: Number(a.position) });
    expect(all.problems.map((p) => p.streamId)).toEqual([stream(), `family-${otherFamilyId}`]);
    await setData(a.position, a.data);
    await setData(b.position, b.data);
    await expectClean();
  });

  it('two events reordered (positions swapped): names the reordering', async () => {
    const a = await at(stream(), 1);
    const b = await at(stream(), 2);
    const swap = async () => {
      await sql.query('update tl_events set position = -1 where position = $1', [a.position]);
      await sql.query('update tl_events set position = $1 where position = $2', [a.position, b.position]);
      await sql.query('update tl_events set position = $1 where position = -1', [b.position]);
    };
    await swap();
    const [one, all] = await both();
    expect(first(one)).toEqual({ kind: 'reordered', streamId: stream(), revision: 2, position: Number(a.position) });
    expect(first(all)).toEqual({ kind: 'reordered', streamId: stream(), revision: 1, position: Number(b.position) });
    expect(all.problems.every((p) => p.kind === 'reordered')).toBe(true);
    await swap();
    await expectClean();
  });

  it('an event replaced with a correctly re-hashed forgery: the broken link after it names the spot', async () => {
    const { computeEventHash } = await import('@token-ledger/envelope');
    const victim = await at(stream(), 2);
    const forged = { ...victim, data: { ...(victim.data as object), context: { ip: '10.0.0.1' } } };
    const metadata = { ...victim.metadata, hash: computeEventHash({ ...forged, streamId: forged.stream_id, revision: Number(forged.revision), eventId: forged.event_id }) };
    await sql.query('update tl_events set data = $2::jsonb, metadata = $3::jsonb where position = $1', [victim.position, JSON.stringify(forged.data), JSON.stringify(metadata)]);
    const [one, all] = await both();
    const next = await at(stream(), 3);
    for (const r of [one, all]) {
      expect(first(r)).toEqual({ kind: 'broken_link', streamId: stream(), revision: 3, position: Number(next.position) });
      expect(r.firstProblem!.detail).toContain(`revision 2 (position ${victim.position})`);
    }
    await sql.query('update tl_events set data = $2::jsonb, metadata = $3::jsonb where position = $1', [victim.position, JSON.stringify(victim.data), JSON.stringify(victim.metadata)]);
    await expectClean();
  });
  it('a snapshot edited to un-revoke a family (every event intact): names the stream and revision as snapshot_mismatch', async () => {
    const api = new LedgerClient(ledger.baseUrl);
    const carol = await api.issue({ subject: 'carol', clientId: 'web', scope: 'api:read' });
    expect((await api.admin('POST', `/v1/families/${carol.family_id}/revoke`, { reason: 'logout' })).status).toBeLessThan(300);
    const streamId = `family-${carol.family_id}`;
    const [before] = await sql.query<{ snapshot: { state: { status: string } }; snapshot_revision: string | number }>('select snapshot, snapshot_revision from tl_streams where stream_id = $1', [streamId]);
    expect(before.snapshot.state.status).toBe('revoked');
    await expectClean();

    await sql.query(`update tl_streams set snapshot = jsonb_set(snapshot::jsonb, '{state,status}', '"active"') where stream_id = $1`, [streamId]);
    const one = (await verifyChain(ledger.store, { familyId: carol.family_id }))!;
    const all = (await verifyChain(ledger.store, { all: true }))!;
    for (const r of [one, all]) {
      expect(r.ok).toBe(false);
      expect(r.problems).toEqual([expect.objectContaining({ kind: 'snapshot_mismatch', streamId, revision: Number(before.snapshot_revision) })]);
      expect(r.firstProblem!.detail).toContain('differs in: status');
    }
    await sql.query('update tl_streams set snapshot = $2::jsonb where stream_id = $1', [streamId, JSON.stringify(before.snapshot)]);
    await expectClean();
  });
  it('a whole stream rewritten with recomputed plain SHA-256 hashes: only the head MAC (with LEDGER_KEK) detects it', async () => {
    const original = await rows(stream());
    let prev: string | null = null;
    for (const r of original) {
      const data = Number(r.revision) >= 1 && (r.data as { context?: unknown }).context ? { ...(r.data as object), context: { ip: '10.66.66.66' } } : r.data;
      const metadata: Record<string, unknown> = { ...r.metadata, prevHash: prev };
      metadata.hash = computeEventHash({ streamId: r.stream_id, revision: Number(r.revision), eventId: r.event_id, type: r.type, data, metadata });
      prev = metadata.hash as string;
      await sql.query('update tl_events set data = $2::jsonb, metadata = $3::jsonb where position = $1', [r.position, JSON.stringify(data), JSON.stringify(metadata)]);
    }
    const [snap] = await sql.query<{ snapshot: Record<string, unknown> }>('select snapshot from tl_streams where stream_id = $1', [stream()]);
    // A thorough forger fixes the snapshot too (its chain hash, and the context it keeps).
    const forgedState = { ...(snap.snapshot.state as object), lastContext: { ip: '10.66.66.66' } };
    await sql.query('update tl_streams set snapshot = $2::jsonb where stream_id = $1', [stream(), JSON.stringify({ ...snap.snapshot, state: forgedState, chainHash: prev })]);

    // Without the key the rewritten chain is self-consistent: that is the documented limit.
    const [plainOne, plainAll] = await both();
    expect(plainOne.problems).toEqual([]);
    expect(plainOne).toMatchObject({ ok: true, keyed: false });
    expect(plainAll).toMatchObject({ ok: true, keyed: false });
    for (const target of [{ familyId }, { all: true as const }]) {
      const keyed = (await verifyChain(ledger.store, target, { macKey }))!;
      expect(keyed.ok).toBe(false);
      expect(first(keyed)).toEqual({ kind: 'bad_mac', streamId: stream(), revision: 1, position: Number(original[1].position) });
      expect(keyed.problems.every((p) => p.kind === 'bad_mac' && p.streamId === stream())).toBe(true);
    }

    for (const r of original) await sql.query('update tl_events set data = $2::jsonb, metadata = $3::jsonb where position = $1', [r.position, JSON.stringify(r.data), JSON.stringify(r.metadata)]);
    await sql.query('update tl_streams set snapshot = $2::jsonb where stream_id = $1', [stream(), JSON.stringify(snap.snapshot)]);
    await expectClean();
    expect(await verifyChain(ledger.store, { all: true }, { macKey })).toMatchObject({ ok: true });
  });
}
