import { evolveFamily, initialFamilyState, describeFamilyStatus, type FamilyEvent } from '@token-ledger/domain';
import { ALL_PROJECTIONS, rebuildProjections, type Projection } from '@token-ledger/projections';
import type { RecordedEvent } from '@token-ledger/event-store';
import fc from 'fast-check';
import { LedgerClient, startLedger, type Ledger, type StoreKind } from './ledger-harness';

/** Read models (SPEC §3) over real HTTP on a real store; run once per store adapter. */
export function readModelSuite(storeKind: () => StoreKind): void {
  let ledger: Ledger;
  let api: LedgerClient;
  let client: { clientId: string; secret: string };

  beforeAll(async () => {
    // The anomaly engine is off: its AnomalyDetected events would land in the audit view at times of
    // their own. test/anomaly covers them and the anomalies view.
    ledger = await startLedger({ store: storeKind(), env: { LEDGER_ANOMALY_ENGINE: 'off' } });
    api = new LedgerClient(ledger.baseUrl);
    client = await api.registerClient({ clientId: 'rm-web', reuseGraceSeconds: 0 });
  });
  afterAll(() => ledger?.destroy());

  const issue = async (subject: string, extra: Record<string, unknown> = {}) => {
    const res = await api.admin('POST', '/v1/families', { subject, clientId: 'rm-web', scope: 'api:read', ...extra });
    if (res.status !== 201) throw new Error(JSON.stringify(res.body));
    return { ...res.body, position: Number(res.headers.get('x-event-position')) };
  };

  it('shows a family as it changes, read-your-writes with minPosition', async () => {
    const f = await issue('rm-alice', { context: { ip: '198.51.100.4', userAgent: 'rm-test' } });
    const view = await api.admin('GET', `/v1/families/${f.family_id}?minPosition=${f.position}`);
    expect(view.status).toBe(200);
    expect(Number(view.headers.get('x-projection-position'))).toBeGreaterThanOrEqual(f.position);
    expect(view.body).toMatchObject({ familyId: f.family_id, subject: 'rm-alice', clientId: 'rm-web', scope: ['api:read'], status: 'active', generation: 1, revokedAt: null, lastContext: { ip: '198.51.100.4' } });
    const rotated = await api.refresh(f.refresh_token, client);
    expect(rotated.status).toBe(200);
    const revoked = await api.admin('POST', `/v1/families/${f.family_id}/revoke`, { reason: 'admin' });
    expect(revoked.status).toBe(200);
    const head = await ledger.store.headPosition();
    const after = await api.admin('GET', `/v1/families/${f.family_id}?minPosition=${head}`);
    expect(after.body).toMatchObject({ status: 'revoked', generation: 2, revokedReason: 'admin' });
    expect((await api.admin('GET', `/v1/families/fam_${'0'.repeat(26)}`)).status).toBe(404);
    expect((await api.admin('GET', `/v1/families/${f.family_id}?minPosition=${head + 1_000_000}`)).status).toBe(503);
  });

  it("lists a subject's families by status, newest first, with cursors", async () => {
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await issue('rm-bob'));
    await api.admin('POST', `/v1/families/${made[0].family_id}/revoke`, { reason: 'logout' });
    const head = await ledger.store.headPosition();
    const active = await api.admin('GET', `/v1/subjects/rm-bob/families?status=active&limit=2&minPosition=${head}`);
    expect(active.body.items).toHaveLength(2);
    expect(active.body.items[0].familyId).toBe(made[4].family_id);
    const rest = await api.admin('GET', `/v1/subjects/rm-bob/families?status=active&limit=10&cursor=${active.body.nextCursor}`);
    expect(rest.body.nextCursor).toBeNull();
    expect([...active.body.items, ...rest.body.items].map((f: { familyId: string }) => f.familyId)).toEqual(made.slice(1).reverse().map((f) => f.family_id));
    const revoked = await api.admin('GET', '/v1/subjects/rm-bob/families?status=revoked');
    expect(revoked.body.items.map((f: { familyId: string }) => f.familyId)).toEqual([made[0].family_id]);
    expect((await api.admin('GET', '/v1/subjects/rm-bob/families?status=bogus')).status).toBe(400);
    expect((await api.admin('GET', '/v1/subjects/rm-bob/families?cursor=garbage')).status).toBe(400);
  });

  it('answers audit queries by subject, type, ip and time, paginated both ways', async () => {
    const start = new Date().toISOString();
    const f = await issue('rm-carol', { context: { ip: '203.0.113.99' } });
    await api.refresh(f.refresh_token, client);
    await api.refresh(f.refresh_token, client); // reuse: TokenReuseDetected + TokenFamilyRevoked
    const head = await ledger.store.headPosition();
    const all = await api.admin('GET', `/v1/audit?subject=rm-carol&minPosition=${head}`);
    const types = all.body.items.map((e: { type: string }) => e.type);
    expect(types).toEqual(['TokenFamilyRevoked', 'TokenReuseDetected', 'TokenRotated', 'TokenFamilyIssued', 'FamilyLinkedToSubject']);
    expect(all.body.items[3]).toMatchObject({ familyId: f.family_id, subject: 'rm-carol', clientId: 'rm-web', data: { generation: 1 } });
    const oldest = await api.admin('GET', '/v1/audit?subject=rm-carol&order=asc&limit=1');
    expect(oldest.body.items[0].type).toBe('FamilyLinkedToSubject');
    const next = await api.admin('GET', `/v1/audit?subject=rm-carol&order=asc&limit=1&cursor=${oldest.body.nextCursor}`);
    expect(next.body.items[0].type).toBe('TokenFamilyIssued');
    const byType = await api.admin('GET', `/v1/audit?type=TokenReuseDetected&familyId=${f.family_id}`);
    expect(byType.body.items).toHaveLength(1);
    const byIp = await api.admin('GET', '/v1/audit?ip=203.0.113.99');
    expect(byIp.body.items.map((e: { familyId: string }) => e.familyId)).toContain(f.family_id);
    const none = await api.admin('GET', `/v1/audit?subject=rm-carol&to=${start}`);
    expect(none.body.items).toEqual([]);
    expect((await api.admin('GET', '/v1/audit?from=yesterday')).status).toBe(400);
    const anomalies = await api.admin('GET', '/v1/anomalies');
    expect(anomalies.body).toEqual({ items: [], nextCursor: null });
  });

  it('limits families per subject and client: one too many revokes the oldest (limit_exceeded)', async () => {
    await api.registerClient({ clientId: 'rm-limited', maxFamiliesPerSubject: 2 });
    const issued = [];
    for (let i = 0; i < 3; i++) {
      const res = await api.admin('POST', '/v1/families', { subject: 'rm-dora', clientId: 'rm-limited', scope: 'api:read' });
      issued.push(res.body);
      await api.admin('GET', `/v1/families/${res.body.family_id}?minPosition=${res.headers.get('x-event-position')}`);
    }
    const head = await ledger.store.headPosition();
    const first = await api.admin('GET', `/v1/families/${issued[0].family_id}?minPosition=${head}`);
    expect(first.body).toMatchObject({ status: 'revoked', revokedReason: 'limit_exceeded' });
    const active = await api.admin('GET', '/v1/subjects/rm-dora/families?status=active');
    expect(active.body.items).toHaveLength(2);
  });

  it('the expiry sweeper records TokenFamilyExpired once, and the views show it', async () => {
    await api.registerClient({ clientId: 'rm-short', refreshIdleTtl: 1, refreshAbsoluteTtl: 60 });
    const res = await api.admin('POST', '/v1/families', { subject: 'rm-eve', clientId: 'rm-short', scope: 'api:read' });
    await new Promise((r) => setTimeout(r, 1100));
    const view = await api.admin('GET', `/v1/families/${res.body.family_id}?minPosition=${res.headers.get('x-event-position')}`);
    expect(view.body.status).toBe('expired'); // effective status, before the sweeper ran
    const { ExpirySweeper } = await import('../../apps/token-ledger/src/read-models/expiry-sweeper');
    const sweeper = ledger.app.get(ExpirySweeper);
    const counts = await Promise.all([sweeper.sweepOnce(), sweeper.sweepOnce()]);
    expect(counts.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
    expect(await sweeper.sweepOnce()).toBe(0);
    const events = await ledger.store.readStream(`family-${res.body.family_id}`);
    expect(events.filter((e) => e.type === 'TokenFamilyExpired')).toHaveLength(1);
  });

  it('keeps projecting after a batch fails (a checkpoint race with another runner)', async () => {
    const first = await issue('rm-race');
    expect(await ledger.runtime.readModels.runner.waitFor(first.position, 10_000)).toBe(true);
    // Another runner (say a rebuild) moves the checkpoint: our next batch conflicts and must recover.
    await ledger.runtime.readModels.sql.query(`update rm_checkpoints set position = position - 1 where projection = 'anomalies'`);
    const second = await issue('rm-race');
    const view = await api.admin('GET', `/v1/families/${second.family_id}?minPosition=${second.position}`);
    expect(view.status).toBe(200);
    const third = await issue('rm-race');
    expect((await api.admin('GET', `/v1/families/${third.family_id}?minPosition=${third.position}`)).status).toBe(200);
  });

  it('random command sequences, some concurrent: the family view equals a fold of the events', async () => {
    const registered = await api.registerClient({ clientId: 'rm-prop2', reuseGraceSeconds: 1 });
    const subjects = ['p1', 'p2', 'p3'];
    const tokens: { family: string; token: string; subject: string }[] = [];
    const command = fc.oneof(
      fc.record({ kind: fc.constant('issue' as const), subject: fc.constantFrom(...subjects) }),
      fc.record({ kind: fc.constant('refresh' as const), pick: fc.nat(), concurrency: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constant('revokeFamily' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('revokeSubject' as const), subject: fc.constantFrom(...subjects) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(command, { minLength: 1, maxLength: 3 }), { minLength: 3, maxLength: 8 }), async (steps) => {
        for (const step of steps) {
          // Commands within a step run concurrently.
          await Promise.all(
            step.map(async (c) => {
              if (c.kind === 'issue') {
                const r = await api.admin('POST', '/v1/families', { subject: c.subject, clientId: 'rm-prop2', scope: 'api:read' });
                if (r.status === 201) tokens.push({ family: r.body.family_id, token: r.body.refresh_token, subject: c.subject });
              } else if (c.kind === 'refresh' && tokens.length > 0) {
                const t = tokens[c.pick % tokens.length];
                const results = await Promise.all(Array.from({ length: c.concurrency }, () => api.refresh(t.token, registered)));
                const ok = results.find((r) => r.status === 200);
                if (ok) t.token = ok.body.refresh_token;
                expect(results.every((r) => r.status < 500)).toBe(true);
              } else if (c.kind === 'revokeFamily' && tokens.length > 0) {
                await api.admin('POST', `/v1/families/${tokens[c.pick % tokens.length].family}/revoke`, { reason: 'admin' });
              } else if (c.kind === 'revokeSubject') {
                await api.admin('POST', `/v1/subjects/${c.subject}/revoke`, { reason: 'admin' });
              }
            }),
          );
        }
        const head = await ledger.store.headPosition();
        expect(await ledger.runtime.readModels.runner.waitFor(head, 10_000)).toBe(true);
        await expectViewsEqualFold(ledger);
      }),
      { numRuns: 6 },
    );
  });

  it('rebuild equals live, and a batch that fails mid-way is replayed without loss or duplicates', async () => {
    const head = await ledger.store.headPosition();
    await ledger.runtime.readModels.runner.waitFor(head, 10_000);
    const sql = ledger.runtime.readModels.sql;
    // Every column of every read model, as PostgreSQL prints it (timestamps to the microsecond).
    const snapshot = async () => ({
      families: await sql.query('select row_to_json(t)::text as row from rm_families t order by family_id'),
      audit: await sql.query('select row_to_json(t)::text as row from rm_audit t order by position'),
      anomalies: await sql.query('select row_to_json(t)::text as row from rm_anomalies t order by anomaly_id'),
    });
    const live = await snapshot();
    expect(live.audit.length).toBe((await ledger.store.readAll({})).length);

    // Rebuild with a projection that crashes inside its transaction on the third batch (a wrapped
    // projection has no set-based rebuild: this one replays, batch by batch), in whichever of its
    // writes the runner takes (on these stores the audit view's applyFromEventsTable).
    let batches = 0;
    type Write = Projection['apply'];
    const crashing = ALL_PROJECTIONS.map((p) => {
      const crashAfter = (write: Write): Write => async (tx, events) => {
        await write(tx, events);
        if (p.name === 'audit' && ++batches === 3) throw new Error('simulated crash mid-batch');
      };
      const fromTable = p.applyFromEventsTable;
      return {
        ...p,
        apply: crashAfter((tx, events) => p.apply(tx, events)),
        ...(fromTable ? { applyFromEventsTable: crashAfter((tx, events) => fromTable.call(p, tx, events)) } : {}),
      };
    });
    await ledger.runtime.readModels.runner.stop();
    const store = ledger.store;
    await expect(rebuildProjections(store, crashing, { batchSize: 7 })).rejects.toThrow('simulated crash');
    const partial = await sql.query<{ n: string }>('select count(*) as n from rm_audit');
    expect(Number(partial[0].n)).toBe(14); // two committed batches; the third rolled back whole
    // Resume where the checkpoint says (the live runner), then compare with live.
    await ledger.runtime.readModels.runner.start();
    expect(await ledger.runtime.readModels.runner.waitFor(head, 20_000)).toBe(true);
    expect(await snapshot()).toEqual(live);
    // And a clean rebuild gives the same: set-based (the default here: the events are in SQL) and replay.
    await ledger.runtime.readModels.runner.stop();
    const progress = await rebuildProjections(store, ALL_PROJECTIONS, { batchSize: 50 });
    expect(progress).toMatchObject({ method: 'sql', done: live.audit.length });
    expect(await snapshot()).toEqual(live);
    const replayed = await rebuildProjections(store, ALL_PROJECTIONS, { method: 'replay', batchSize: 50 });
    expect(replayed).toMatchObject({ method: 'replay', done: live.audit.length });
    expect(await snapshot()).toEqual(live);
    await ledger.runtime.readModels.runner.start();
  });
}

/** The family view must equal what the domain's own evolve says about every family. */
async function expectViewsEqualFold(ledger: Ledger): Promise<void> {
  const events: RecordedEvent[] = await ledger.store.readAll({});
  const byFamily = new Map<string, RecordedEvent[]>();
  for (const e of events) {
    const id = (e.metadata as { familyId?: string }).familyId;
    if (!id || !e.streamId.startsWith('family-')) continue;
    byFamily.set(id, [...(byFamily.get(id) ?? []), e]);
  }
  const rows = await ledger.runtime.readModels.sql.query<any>('select * from rm_families');
  expect(rows.length).toBe(byFamily.size);
  const now = Date.now();
  for (const row of rows) {
    const state = byFamily.get(row.family_id)!.reduce(
      (s, e) => evolveFamily(s, { type: e.type, ...(e.metadata as object), data: e.data } as FamilyEvent),
      initialFamilyState(),
    );
    const stored = row.status as string;
    const expected = state.status === 'none' ? 'revoked' : state.status;
    expect({ id: row.family_id, status: stored, generation: Number(row.generation) }).toEqual({
      id: row.family_id,
      status: expected,
      generation: state.generation,
    });
    if (state.status === 'revoked') expect(row.revoked_reason).toBe(state.revokedReason);
    expect(['active', 'revoked', 'expired']).toContain(describeFamilyStatus(state, now) === 'none' ? 'revoked' : describeFamilyStatus(state, now));
  }
}
