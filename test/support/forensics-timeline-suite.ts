import { formatRefreshToken, parseRefreshToken } from '@token-ledger/domain';
import type { FamilyView } from '@token-ledger/domain';
import type { FamilyTimeline } from '@token-ledger/forensics';
import { LedgerClient, startLedger, type Ledger, type StoreKind } from './ledger-harness';

/** What the live API said right after a command, and when. */
interface Sample {
  label: string;
  familyId: string;
  /** Epoch ms, taken after the command's response arrived and before the live queries. */
  t: number;
  live: FamilyTimeline;
  introspection?: Record<string, unknown>;
  /** Generation of the refresh token the client holds after the command. */
  holds?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * SPEC §6 "state as of any instant": the replayed state at every recorded instant equals what the
 * live API answered at that instant, over real HTTP on a real store.
 */
export function forensicsTimelineSuite(storeKind: () => StoreKind): void {
  let ledger: Ledger;
  let api: LedgerClient;
  const samples: Sample[] = [];

  beforeAll(async () => {
    ledger = await startLedger({ store: storeKind() });
    api = new LedgerClient(ledger.baseUrl);
  });
  afterAll(async () => {
    await ledger?.destroy();
  });

  const timeline = async (familyId: string, query = ''): Promise<{ status: number; body: any; headers: Headers }> =>
    api.admin('GET', `/v1/families/${familyId}/timeline${query}`);

  async function sample(label: string, familyId: string, client?: { clientId: string; secret: string }, token?: string): Promise<void> {
    const t = Date.now();
    const live = await timeline(familyId);
    expect(live.status).toBe(200);
    const introspection = client && token ? (await api.form('/oauth/introspect', { token }, client)).body : undefined;
    samples.push({ label, familyId, t, live: live.body, introspection, holds: token ? parseRefreshToken(token)?.generation : undefined });
  }

  it('records a life of every kind through the live API', async () => {
    // Family 1: issue, rotate, grace replay, forged token, rotate, idle expiry.
    const web = await api.registerClient({ clientId: 'web', reuseGraceSeconds: 1, refreshIdleTtl: 2 });
    const f1 = await api.issue({ subject: 'alice', clientId: 'web', scope: 'api:read api:write', context: { ip: '203.0.113.7', userAgent: 'phone', deviceId: 'd-1' } });
    await sample('issued', f1.family_id, web, f1.refresh_token);
    const r1 = await api.refresh(f1.refresh_token, web, {});
    expect(r1.status).toBe(200);
    await sample('rotated', f1.family_id, web, r1.body.refresh_token);
    const replayed = await api.refresh(f1.refresh_token, web);
    expect(replayed.body.refresh_token).toBe(r1.body.refresh_token);
    await sample('grace replay', f1.family_id, web, r1.body.refresh_token);
    const parts = parseRefreshToken(r1.body.refresh_token)!;
    const forged = await api.refresh(formatRefreshToken({ ...parts, secret: Buffer.alloc(32, 9) }), web);
    expect(forged.status).toBe(400);
    await sample('forged (rejected, not revoked)', f1.family_id, web, r1.body.refresh_token);
    const r2 = await api.form('/oauth/token', { grant_type: 'refresh_token', refresh_token: r1.body.refresh_token, scope: 'api:read' }, web, { 'x-device-id': 'd-2' });
    expect(r2.status).toBe(200);
    await sample('rotated, narrowed', f1.family_id, web, r2.body.refresh_token);
    await sleep(2100);
    await sample('idle expiry passed (nothing recorded)', f1.family_id, web, r2.body.refresh_token);
    expect(samples.at(-1)!.introspection).toEqual({ active: false });

    // Family 2: reuse revokes.
    const strict = await api.registerClient({ clientId: 'strict', reuseGraceSeconds: 0 });
    const f2 = await api.issue({ subject: 'alice', clientId: 'strict', scope: 'api:read' });
    await sample('issued', f2.family_id, strict, f2.refresh_token);
    const s1 = await api.refresh(f2.refresh_token, strict);
    await sample('rotated', f2.family_id, strict, s1.body.refresh_token);
    const reuse = await api.refresh(f2.refresh_token, strict);
    expect(reuse.body.error).toBe('invalid_grant');
    await sample('reuse detected, revoked', f2.family_id, strict, s1.body.refresh_token);

    // Family 3: admin revocation.
    const f3 = await api.issue({ subject: 'bob', clientId: 'strict', scope: 'api:read' });
    await sample('issued', f3.family_id, strict, f3.refresh_token);
    const revoked = await api.admin('POST', `/v1/families/${f3.family_id}/revoke`, { reason: 'admin' });
    expect(revoked.body).toMatchObject({ status: 'revoked', revokedReason: 'admin' });
    await sample('revoked by admin', f3.family_id, strict, f3.refresh_token);
  });

  it('replays, at each recorded instant, exactly the state the live API answered then', async () => {
    expect(samples.length).toBe(11);
    for (const s of samples) {
      const replay = await timeline(s.familyId, `?at=${encodeURIComponent(new Date(s.t).toISOString())}`);
      expect(replay.status).toBe(200);
      const state: FamilyView = replay.body.state;
      expect({ label: s.label, state }).toEqual({ label: s.label, state: s.live.state });
      // …and it agrees with the OAuth side of the live API.
      const intro = s.introspection!;
      expect({ label: s.label, active: intro.active }).toEqual({ label: s.label, active: state.status === 'active' && s.holds === state.generation });
      if (intro.active) {
        expect(intro).toMatchObject({ sub: state.subject, client_id: state.clientId, scope: state.scope.join(' '), sid: state.familyId });
        expect(intro.exp).toBe(Math.floor(Math.min(Date.parse(state.idleExpiresAt!), Date.parse(state.absoluteExpiresAt!)) / 1000));
      }
      if (s.holds !== undefined && state.status === 'active') expect(state.generation).toBe(s.holds);
    }
    const statuses = samples.map((s) => `${s.label}: ${s.live.state!.status} gen ${s.live.state!.generation}`);
    expect(statuses).toEqual([
      'issued: active gen 1',
      'rotated: active gen 2',
      'grace replay: active gen 2',
      'forged (rejected, not revoked): active gen 2',
      'rotated, narrowed: active gen 3',
      'idle expiry passed (nothing recorded): expired gen 3',
      'issued: active gen 1',
      'rotated: active gen 2',
      'reuse detected, revoked: revoked gen 2',
      'issued: active gen 1',
      'revoked by admin: revoked gen 1',
    ]);
    expect(samples[3].live.state!.lastContext).toMatchObject({ ip: '127.0.0.1' });
    expect(samples[4].live.state!.lastContext).toMatchObject({ deviceId: 'd-2' });
  });

  it('holds at every event boundary: the state at each event equals the live answer until the next event', async () => {
    for (const familyId of [...new Set(samples.map((s) => s.familyId))]) {
      const full = await timeline(familyId, '?at=2999-01-01T00:00:00Z');
      const events: { occurredAt: string; type: string }[] = full.body.events;
      const ofFamily = samples.filter((s) => s.familyId === familyId);
      const instants = [...new Set(events.map((e) => Date.parse(e.occurredAt)))];
      for (const [i, at] of instants.entries()) {
        const until = instants[i + 1] ?? Number.POSITIVE_INFINITY;
        const atBoundary = (await timeline(familyId, `?at=${new Date(at).toISOString()}`)).body;
        expect(atBoundary.events.length).toBe(events.filter((e) => Date.parse(e.occurredAt) <= at).length);
        // Every event was followed by a live sample before the next event…
        const live = ofFamily.filter((s) => s.t >= at && s.t < until);
        expect({ familyId, at, sampled: live.length > 0 }).toEqual({ familyId, at, sampled: true });
        // …and the live answer then is the state at the boundary (time-based expiry aside).
        for (const s of live) {
          const timeless = (v: FamilyView) => ({ ...v, status: v.status === 'expired' ? 'active' : v.status });
          expect(timeless(s.live.state!)).toEqual(timeless(atBoundary.state));
        }
        // Just before the boundary the family is as it was after the previous event.
        if (i > 0) {
          const before = (await timeline(familyId, `?at=${new Date(at - 1).toISOString()}`)).body;
          expect(before.events.length).toBe(events.filter((e) => Date.parse(e.occurredAt) < at).length);
        } else {
          expect((await timeline(familyId, `?at=${new Date(at - 1).toISOString()}`)).body.state).toBeNull();
        }
      }
    }
  });

  it('answers the SPEC §3 event shape, in order, with chain links', async () => {
    const { body } = await timeline(samples[0].familyId);
    expect(body.familyId).toBe(samples[0].familyId);
    expect(body.nextCursor).toBeNull();
    expect(body.events.map((e: { type: string }) => e.type)).toEqual(['TokenFamilyIssued', 'TokenRotated', 'TokenRotationReplayed', 'RefreshRejected', 'TokenRotated']);
    const positions = body.events.map((e: { position: number }) => e.position);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    for (const [i, e] of body.events.entries()) {
      // The SPEC §3 shape, plus where its address is (null here: 203.0.113.7 and 127.0.0.1 are not public).
      expect(Object.keys(e).sort()).toEqual(['clientId', 'data', 'eventId', 'familyId', 'metadata', 'occurredAt', 'place', 'position', 'subject', 'type']);
      expect(e.place).toBeNull();
      expect(e.metadata.prevHash).toBe(i === 0 ? null : body.events[i - 1].metadata.hash);
    }
    expect(body.events[0].metadata).toMatchObject({ actor: 'admin-token', context: { ip: '203.0.113.7', userAgent: 'phone', deviceId: 'd-1' }, schemaVersion: 1 });
  });

  it('pages with cursor and limit', async () => {
    const familyId = samples[0].familyId;
    const first = await timeline(familyId, '?limit=2');
    expect(first.body.events).toHaveLength(2);
    const second = await timeline(familyId, `?limit=2&cursor=${first.body.nextCursor}`);
    const third = await timeline(familyId, `?limit=2&cursor=${second.body.nextCursor}`);
    expect([...first.body.events, ...second.body.events, ...third.body.events].map((e: { eventId: string }) => e.eventId)).toEqual(
      (await timeline(familyId)).body.events.map((e: { eventId: string }) => e.eventId),
    );
    expect(third.body.nextCursor).toBeNull();
    expect(second.body.state).toEqual(first.body.state);
  });

  it('answers RFC 9457 problems for a bad `at`, an unknown family and a missing admin token', async () => {
    const familyId = samples[0].familyId;
    for (const at of ['yesterday', '2024-05-01', '2024-02-30T00:00:00Z', '2024-05-01T12:00:00']) {
      const res = await timeline(familyId, `?at=${encodeURIComponent(at)}`);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ type: 'about:blank', title: 'Invalid query', status: 400 });
      expect(res.body.detail).toContain('ISO-8601');
    }
    // An unencoded "+02:00" arrives as " 02:00" and is still understood.
    expect((await timeline(familyId, '?at=2024-05-01T14:00:00+02:00')).status).toBe(200);
    for (const query of ['?limit=0', '?limit=abc', '?cursor=-1', '?at=2024-05-01T12:00:00Z&at=2024-05-01T12:00:00Z', '?foo=1']) {
      expect((await timeline(familyId, query)).status).toBe(400);
    }
    for (const id of ['fam_00000000000000000000000000', 'not-a-family', '%20']) {
      const res = await timeline(id);
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ title: 'Not Found', status: 404 });
    }
    const anonymous = await fetch(`${ledger.baseUrl}/v1/families/${familyId}/timeline`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('before the family existed, the state is null and there are no events', async () => {
    const { body } = await timeline(samples[0].familyId, '?at=2000-01-01T00:00:00Z');
    expect(body).toMatchObject({ state: null, events: [], at: '2000-01-01T00:00:00.000Z' });
  });
}
