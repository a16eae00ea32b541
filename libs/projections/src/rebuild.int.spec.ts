import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import fc from 'fast-check';
import { dropPostgresSchema, EmbeddedEventStore, PostgresEventStore, type NewEvent, type OpenedStore, type RecordedEvent } from '@token-ledger/event-store';
import { describeWithBackend } from '../../../test/backends';
import { freshEmbeddedDataDir } from '../../event-store/src/testing/embedded-template';
import { ALL_PROJECTIONS } from './index';
import type { Projection } from './projection';
import { CheckpointConflictError, commitBatch, migrateReadModels, ProjectionRunner, readCheckpoints, type SqlBackedStore } from './projection-runner';
import { familiesDueForExpiry } from './queries';
import { rebuildProjections } from './rebuild';

/**
 * The set-based rebuild (SQL straight from tl_events) must produce exactly what the projections'
 * JavaScript `apply` produces live, batch by batch, for every event type and every order, including
 * the odd ones (a revocation before the issue, expiry then revocation, a second issue, events
 * without a family, header fields missing, JSON nulls): random histories, compared column by column
 * as PostgreSQL prints them (timestamps to the microsecond, jsonb normalised). Replay must agree too.
 */

const FAMILIES = ['fam_aaaaaaaaaaaaaaaaaaaaaaaaaa', 'fam_bbbbbbbbbbbbbbbbbbbbbbbbbb', 'fam_cccccccccccccccccccccccccc', 'fam_dddddddddddddddddddddddddd'];
const T0 = Date.parse('2026-01-01T00:00:00.000Z');

const iso = fc.integer({ min: 0, max: 10 * 86_400_000 }).map((ms) => new Date(T0 + ms).toISOString());
const context = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.record({ ip: fc.constantFrom('198.51.100.7', '203.0.113.9', ''), userAgent: fc.constantFrom('ua-1', 'ua-2') }, { requiredKeys: [] }),
);
const header = fc.record(
  {
    // Two busy families, two with few events (so some never see an issue), and events without one.
    familyId: fc.oneof(
      { arbitrary: fc.constantFrom(FAMILIES[0], FAMILIES[1]), weight: 12 },
      { arbitrary: fc.constant(FAMILIES[2]), weight: 3 },
      { arbitrary: fc.constant(FAMILIES[3]), weight: 1 },
      fc.constant(''),
      fc.constant(undefined),
    ),
    subject: fc.oneof(fc.constantFrom('alice', 'bob'), fc.constant(undefined)),
    clientId: fc.oneof(fc.constantFrom('web', 'app'), fc.constant(undefined)),
    occurredAt: fc.oneof(iso, iso, fc.constant(undefined)),
    context: context,
  },
  { requiredKeys: ['familyId', 'subject', 'clientId', 'occurredAt', 'context'] },
);
const generation = fc.integer({ min: 1, max: 9 });

/** Every event type the ledger writes, with the payload variations the projections look at. */
const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
const payload = fc.oneof(
  w(3, fc.record({ type: fc.constant('TokenFamilyIssued'), data: fc.record({ scope: fc.constantFrom(['api:read'], ['api:read', 'api:write'], []), audience: fc.constant(['https://api']), generation: fc.constant(1), tokenHash: fc.constant('h'), createdAt: iso, idleExpiresAt: iso, absoluteExpiresAt: iso, policy: fc.constant({ accessTokenTtl: 300 }), context, dpopJkt: fc.constantFrom('A'.repeat(43), 'B'.repeat(43)) }, { requiredKeys: ['scope', 'generation', 'createdAt', 'idleExpiresAt', 'absoluteExpiresAt'] }) })),
  w(4, fc.record({ type: fc.constant('TokenRotated'), data: fc.record({ fromGeneration: generation, generation, tokenHash: fc.constant('h'), idleExpiresAt: iso, scope: fc.constant(['api:read']), context }, { requiredKeys: ['generation', 'idleExpiresAt'] }) })),
  w(2, fc.record({ type: fc.constant('TokenRotationReplayed'), data: fc.record({ presentedGeneration: generation, generation, scope: fc.constant(['api:read']), context }, { requiredKeys: ['generation'] }) })),
  w(1, fc.record({ type: fc.constant('TokenReuseDetected'), data: fc.record({ presentedGeneration: generation, headGeneration: generation, context }) })),
  w(2, fc.record({ type: fc.constant('TokenFamilyRevoked'), data: fc.record({ reason: fc.constantFrom('logout', 'admin', 'reuse_detected'), revokedAt: iso, accessTokensValidUntil: iso }, { requiredKeys: ['reason'] }) })),
  w(2, fc.record({ type: fc.constant('TokenFamilyExpired'), data: fc.record({ reason: fc.constantFrom('idle', 'absolute'), expiredAt: iso }) })),
  w(1, fc.record({ type: fc.constant('RefreshRejected'), data: fc.record({ reason: fc.constantFrom('bad_secret', 'expired'), presentedGeneration: generation, context }) })),
  w(1, fc.record({ type: fc.constant('AccessTokenRevoked'), data: fc.record({ jti: fc.uuid(), expiresAt: iso }) })),
  w(1, fc.record({ type: fc.constant('FamilyLinkedToSubject'), data: fc.record({ familyId: fc.constantFrom(...FAMILIES), clientId: fc.constant('web') }) })),
  w(1, fc.record({ type: fc.constant('ClientRegistered'), data: fc.record({ clientId: fc.constant('web'), type: fc.constant('confidential'), secretHash: fc.constant('s3cr3t-hash'), allowedScopes: fc.constant(['api:read']) }) })),
  w(1, fc.record({ type: fc.constant('ApiKeyCreated'), data: fc.record({ keyId: fc.constant('key_1'), name: fc.constant('rs'), scopes: fc.constant(['revocations:read']), keyHash: fc.constant('k3y-hash'), expiresAt: fc.constant(null) }) })),
  w(1, fc.record({ type: fc.constant('ClientSecretRotated'), data: fc.record({ secretHash: fc.constant('s3cr3t-hash-2'), previousValidUntil: fc.oneof(iso, fc.constant(null)) }) })),
  w(1, fc.record({ type: fc.constant('ClientDisabled'), data: fc.record({ revokeFamilies: fc.boolean() }) })),
  w(1, fc.record({ type: fc.constant('SigningKeyRotated'), data: fc.record({ kid: fc.constant('k1') }) })),
  w(1, fc.record({
    type: fc.constant('AnomalyDetected'),
    data: fc.record(
      { anomalyId: fc.oneof(fc.constantFrom('an-1', 'an-2', 'an-3'), fc.constant(null)), rule: fc.constantFrom('reuse_detected', 'refresh_burst'), severity: fc.constantFrom('high', 'low'), evidence: fc.oneof(fc.constant({ count: 11 }), fc.constant(null)), action: fc.constantFrom('alert', 'revoke_family') },
      { requiredKeys: ['rule', 'severity', 'action'] },
    ),
  })),
  // Triage, in any order and number (the decider allows fewer): the projection and its rebuild must still agree.
  w(2, fc.record({
    type: fc.constantFrom('AnomalyAcknowledged', 'AnomalyDismissed'),
    data: fc.record({ anomalyId: fc.constantFrom('an-1', 'an-2', 'an-3'), by: fc.constantFrom('admin-token', 'api-key:key_1'), note: fc.oneof(fc.constant(null), fc.constant('checked')) }),
  })),
);

const event = fc.tuple(payload, header, fc.constantFrom('family-x', 'subject-y', 'anomaly-z'), fc.boolean()).map(([p, h, stream, contextInData]) => {
  const { context: ctx, ...head } = h;
  const metadata: Record<string, unknown> = { ...head, schemaVersion: 1 };
  if (ctx !== undefined && !contextInData) metadata.context = ctx;
  // AnomalyDetected always carries occurredAt (its detectedAt); others may lack it (recordedAt stands in).
  if (p.type.startsWith('Anomaly') && metadata.occurredAt === undefined) metadata.occurredAt = new Date(T0).toISOString();
  for (const k of Object.keys(metadata)) if (metadata[k] === undefined) delete metadata[k];
  const data = JSON.parse(JSON.stringify(p.data)) as Record<string, unknown>;
  return { streamId: stream, event: { eventId: randomUUID(), type: p.type, data, metadata } satisfies NewEvent };
});

interface Harness {
  store: OpenedStore & SqlBackedStore;
  close(): Promise<void>;
}

/** Every read-model row, every column, as PostgreSQL prints it. */
async function snapshot(store: SqlBackedStore): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const [table, key] of [['rm_families', 'family_id'], ['rm_audit', 'position'], ['rm_anomalies', 'anomaly_id']]) {
    const rows = await store.sql.query<{ row: string }>(`select row_to_json(t)::text as row from ${table} t order by ${key}`);
    out[table] = rows.map((r) => r.row);
  }
  return out;
}

async function reset(store: SqlBackedStore): Promise<void> {
  // The event log is append-only: emptied here, it also starts its positions again, as a new store's
  // do (the embedded store's subscriptions take what it appended from memory, by position: RecentEvents).
  await store.sql.exec(
    "delete from rm_families; delete from rm_audit; delete from rm_anomalies; delete from rm_checkpoints; delete from tl_events; delete from tl_streams; select setval(pg_get_serial_sequence('tl_events', 'position'), 1, false)",
  );
}

/**
 * Live projection: the runner's own commit path, in batches of the given sizes; by default every
 * projection's JavaScript `apply`, with `eventsInSql` the path the runner takes on these stores
 * (applyFromEventsTable where a projection has it).
 */
async function projectLive(store: SqlBackedStore, projections: readonly Projection[], events: RecordedEvent[], sizes: number[], eventsInSql = false): Promise<void> {
  let checkpoints = await readCheckpoints(store.sql, projections.map((p) => p.name));
  for (let i = 0, k = 0; i < events.length; k++) {
    const size = sizes[k % sizes.length];
    checkpoints = await commitBatch(store.sql, projections, checkpoints, events.slice(i, i + size), { eventsInSql });
    i += size;
  }
}

function rebuildSuite(open: () => Promise<Harness>, runs: number): void {
  let h: Harness;
  beforeAll(async () => {
    h = await open();
  });
  afterAll(() => h?.close());

  it('rm_families of the previous shape is migrated (sweep_at filled, the old expiry index dropped), and a rotation updates its row HOT', async () => {
    const { sql } = h.store;
    await sql.exec(`drop table rm_families;
      create table rm_families (family_id text not null, subject text not null, client_id text not null, scope jsonb not null,
        status text not null, generation integer not null, created_at timestamptz, last_used_at timestamptz,
        idle_expires_at timestamptz, absolute_expires_at timestamptz, revoked_at timestamptz, revoked_reason text,
        last_context jsonb, dpop_jkt text, position bigint not null, primary key (family_id));
      create index rm_families_subject on rm_families (subject, status, created_at);
      create index rm_families_expiry on rm_families ((least(idle_expires_at, absolute_expires_at))) where status = 'active';
      create index rm_families_client_active on rm_families (client_id, created_at) where status = 'active';
      insert into rm_families values ('fam_old', 's', 'c', '[]', 'active', 1, now() - interval '2 hours', now() - interval '2 hours',
        '2020-05-01T10:07:42.5Z', '2020-06-01T00:00:00Z', null, null, null, null, 7),
        ('fam_live', 's', 'c', '[]', 'active', 1, now(), now(), now() + interval '1 hour', now() + interval '30 days', null, null, null, null, 8);`);
    await migrateReadModels(sql);
    const [old] = await sql.query<{ sweep: string }>(`select to_char(sweep_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') as sweep from rm_families where family_id = 'fam_old'`);
    expect(old.sweep).toBe('2020-05-01T10:07:00');
    const indexes = (await sql.query<{ name: string }>(`select indexname as name from pg_indexes where tablename = 'rm_families' and schemaname = current_schema() order by 1`)).map((r) => r.name);
    expect(indexes).toEqual(['rm_families_client_active', 'rm_families_pkey', 'rm_families_subject', 'rm_families_sweep']);
    expect(await familiesDueForExpiry(sql, 10)).toEqual(['fam_old']);
    // A rotation moves idle_expires_at (here within the same minute) and generation: no indexed value changes.
    const hot = await sql.transaction(async (tx) => {
      await tx.query(`update rm_families set generation = generation + 1, idle_expires_at = date_bin('1 minute', idle_expires_at, timestamptz '2000-01-01') + interval '1 second' where family_id = 'fam_live'`);
      const [row] = await tx.query<{ hot: string | number; all: string | number }>(
        `select pg_stat_get_xact_tuples_hot_updated('rm_families'::regclass) as hot, pg_stat_get_xact_tuples_updated('rm_families'::regclass) as all`,
      );
      return row;
    });
    expect([Number(hot.all), Number(hot.hot)]).toEqual([1, 1]);
    await reset(h.store);
  });

  it('set-based rebuild = live = replay, for random histories of every event type', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(event, { minLength: 1, maxLength: 80, size: 'max' }),
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 25 }),
        async (history, sizes, chunkSize) => {
          const { store } = h;
          await reset(store);
          for (const { streamId, event: e } of history) await store.append(streamId, [e], { expectedRevision: 'any' });
          const events = await store.readAll({});
          await projectLive(store, ALL_PROJECTIONS, events, sizes);
          const live = await snapshot(store);
          expect(live.rm_audit).toHaveLength(events.length);
          // The runner's path on these stores (audit rows written from tl_events) writes the same rows.
          await store.sql.exec('delete from rm_families; delete from rm_audit; delete from rm_anomalies; delete from rm_checkpoints');
          await projectLive(store, ALL_PROJECTIONS, events, sizes, true);
          expect(await snapshot(store)).toEqual(live);

          const sql = await rebuildProjections(store, ALL_PROJECTIONS, { method: 'sql', chunkSize, batchSize: 7 });
          expect(sql).toMatchObject({ method: 'sql', done: events.length, total: events.length, fraction: 1 });
          expect(await snapshot(store)).toEqual(live);
          const head = events[events.length - 1].position;
          expect(Object.fromEntries(await readCheckpoints(store.sql, ALL_PROJECTIONS.map((p) => p.name)))).toEqual({ families: head, audit: head, anomalies: head });

          const replay = await rebuildProjections(store, ALL_PROJECTIONS, { method: 'replay', batchSize: sizes[0] });
          expect(replay.method).toBe('replay');
          expect(await snapshot(store)).toEqual(live);
        },
      ),
      { numRuns: runs },
    );
  });

  it('rebuilds an empty store to empty read models', async () => {
    const { store } = h;
    await reset(store);
    for (const method of ['sql', 'replay'] as const) {
      const result = await rebuildProjections(store, ALL_PROJECTIONS, { method });
      expect(result).toMatchObject({ method, done: 0, total: 0, head: 0, fraction: 1 });
      expect(await snapshot(store)).toEqual({ rm_families: [], rm_audit: [], rm_anomalies: [] });
    }
  });

  it('rebuilds one projection alone, leaving the others and their checkpoints as they were', async () => {
    const { store } = h;
    await reset(store);
    const history = fc.sample(event, { numRuns: 40, seed: 7 });
    for (const { streamId, event: e } of history) await store.append(streamId, [e], { expectedRevision: 'any' });
    const events = await store.readAll({});
    await projectLive(store, ALL_PROJECTIONS, events, [10]);
    const live = await snapshot(store);
    await store.sql.query(`update rm_checkpoints set position = 3 where projection = 'anomalies'`);
    const families = ALL_PROJECTIONS.filter((p) => p.name === 'families');
    await store.sql.query('delete from rm_families');
    const result = await rebuildProjections(store, families, {});
    expect(result.method).toBe('sql');
    expect(await snapshot(store)).toEqual(live);
    const cps = await readCheckpoints(store.sql, ALL_PROJECTIONS.map((p) => p.name));
    expect(cps.get('anomalies')).toBe(3);
  });

  it('a failing set-based rebuild leaves the live read models and checkpoints untouched', async () => {
    const { store } = h;
    await reset(store);
    for (const { streamId, event: e } of fc.sample(event, { numRuns: 30, seed: 11 })) await store.append(streamId, [e], { expectedRevision: 'any' });
    await projectLive(store, ALL_PROJECTIONS, await store.readAll({}), [8]);
    const before = await snapshot(store);
    const checkpoints = await readCheckpoints(store.sql, ALL_PROJECTIONS.map((p) => p.name));
    // An event no projection can store (an anomaly without a rule): both methods must refuse it.
    await store.append('anomaly-bad', [{ eventId: randomUUID(), type: 'AnomalyDetected', data: { severity: 'high', action: 'alert' }, metadata: { occurredAt: new Date(T0).toISOString() } }], {
      expectedRevision: 'any',
    });
    await expect(rebuildProjections(store, ALL_PROJECTIONS, { method: 'sql' })).rejects.toThrow();
    expect(await snapshot(store)).toEqual(before);
    expect(await readCheckpoints(store.sql, ALL_PROJECTIONS.map((p) => p.name))).toEqual(checkpoints);
    const [{ n }] = await store.sql.query<{ n: string | number }>(`select count(*) as n from pg_namespace where nspname = current_schema() || '_rm_rebuild'`);
    expect(Number(n)).toBe(0);
  });
}

/** A live runner keeps projecting while events arrive and a set-based rebuild runs beside it. */
function besideALiveRunner(open: () => Promise<Harness>): void {
  it('rebuilds beside a live runner under load: no event lost or doubled, the runner carries on', async () => {
    const { store, close } = await open();
    const errors: unknown[] = [];
    const runner = new ProjectionRunner(store, ALL_PROJECTIONS, { batchSize: 50, onError: (e) => errors.push(e) });
    try {
      const history = fc.sample(event, { numRuns: 1500, seed: 3 });
      const append = async (from: number, to: number, per: number) => {
        for (let i = from; i < to; i += per) {
          await Promise.all(history.slice(i, Math.min(to, i + per)).map(({ streamId, event: e }) => store.append(streamId, [e], { expectedRevision: 'any' })));
        }
      };
      await append(0, 1000, 50);
      await runner.start();
      expect(await runner.waitFor(await store.headPosition(), 20_000)).toBe(true);
      // Events keep arriving (and the runner keeps applying them) during the whole rebuild.
      const load = append(1000, 1500, 5);
      const result = await rebuildProjections(store, ALL_PROJECTIONS, { method: 'sql', chunkSize: 100, batchSize: 20 });
      expect(result.method).toBe('sql');
      await load;
      const head = await store.headPosition();
      expect(await runner.waitFor(head, 20_000)).toBe(true);
      const afterRebuild = await snapshot(store);
      expect(afterRebuild.rm_audit).toHaveLength((await store.readAll({})).length);
      await runner.stop();
      // The same history replayed from scratch.
      await rebuildProjections(store, ALL_PROJECTIONS, { method: 'replay', batchSize: 97 });
      expect(await snapshot(store)).toEqual(afterRebuild);
      expect(errors).toEqual([]);
    } finally {
      await runner.stop();
      await close();
    }
  });
}

/**
 * commitBatch sends its statements without waiting for the checkpoint lock's answer: many runners
 * committing the same batch from the same checkpoints at once must still apply it exactly once.
 */
function racingCommits(open: () => Promise<Harness>): void {
  it('twelve commitBatch calls racing from the same checkpoints: one applies the batch, the others get CheckpointConflictError', async () => {
    const { store, close } = await open();
    try {
      for (const { streamId, event: e } of fc.sample(event, { numRuns: 80, seed: 5 })) await store.append(streamId, [e], { expectedRevision: 'any' });
      const events = await store.readAll({});
      const names = ALL_PROJECTIONS.map((p) => p.name);
      const eventsInSql = store.capabilities?.eventsInSql !== undefined;
      const before = await commitBatch(store.sql, ALL_PROJECTIONS, await readCheckpoints(store.sql, names), events.slice(0, 30), { eventsInSql });
      const outcomes = await Promise.allSettled(
        Array.from({ length: 12 }, () => commitBatch(store.sql, ALL_PROJECTIONS, before, events.slice(30), { eventsInSql })),
      );
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(CheckpointConflictError);
      const last = events[events.length - 1].position;
      expect(await readCheckpoints(store.sql, names)).toEqual(new Map(names.map((n) => [n, last])));
      // Exactly what one application of the history gives.
      const raced = await snapshot(store);
      expect(raced.rm_audit).toHaveLength(events.length);
      await rebuildProjections(store, ALL_PROJECTIONS, { method: 'replay', batchSize: 97 });
      expect(await snapshot(store)).toEqual(raced);
    } finally {
      await close();
    }
  });
}

/** `thread`: PGlite in a worker thread of its own, as `serve` runs it. */
const embeddedWith = (thread: boolean) => async (): Promise<Harness> => {
  const dataDir = await freshEmbeddedDataDir('tl-rebuild-');
  const store = await EmbeddedEventStore.open({ dataDir, thread });
  await migrateReadModels(store.sql);
  return {
    store,
    close: async () => {
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
};
const embedded = embeddedWith(false);

describe('rebuildProjections on the embedded (PGlite) store', () => {
  rebuildSuite(embedded, 40);
  besideALiveRunner(embedded);
  racingCommits(embedded);
});

describe('commitBatch on the embedded store with PGlite in its thread (as serve runs it)', () => {
  racingCommits(embeddedWith(true));
});

describe('ProjectionRunner on the embedded store, which gathers its wake-ups', () => {
  it('reaches a position someone waits for without waiting for the gather delay (minPosition)', async () => {
    const dataDir = await freshEmbeddedDataDir('tl-runner-');
    // Gather and fallback poll far beyond the test: only waitFor's wake-up can deliver the append.
    const store = await EmbeddedEventStore.open({ dataDir, gatherWakeupsMs: 600_000, pollIntervalMs: 600_000 });
    const runner = new ProjectionRunner(store, ALL_PROJECTIONS);
    try {
      await migrateReadModels(store.sql);
      await runner.start();
      const appended = await Promise.all(
        FAMILIES.map((familyId) =>
          store.append(`family-${familyId}`, [{ eventId: randomUUID(), type: 'TokenFamilyRevoked', data: { familyId, reason: 'admin' }, metadata: { familyId, subject: 'alice', occurredAt: new Date(T0).toISOString() } }], { expectedRevision: 'any' }),
        ),
      );
      const last = Math.max(...appended.map((a) => a.position));
      expect(await runner.waitFor(last, 20_000)).toBe(true);
      const [{ n }] = await store.sql.query<{ n: string | number }>('select count(*) as n from rm_audit');
      expect(Number(n)).toBe(FAMILIES.length);
    } finally {
      await runner.stop();
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});

describeWithBackend('postgres', 'rebuildProjections on PostgreSQL', (url) => {
  const postgres = async (): Promise<Harness> => {
    const schema = `tl_rebuild_${randomBytes(6).toString('hex')}`;
    const store = await PostgresEventStore.open({ url, schema });
    await migrateReadModels(store.sql);
    return {
      store,
      close: async () => {
        await store.close();
        await dropPostgresSchema(url, schema);
        await dropPostgresSchema(url, `${schema}_rm_rebuild`); // left only by a rebuild that failed mid-way
      },
    };
  };
  rebuildSuite(postgres, 80);
  besideALiveRunner(postgres);
  racingCommits(postgres);

  it('one rebuild per schema at a time', async () => {
    const { store, close } = await postgres();
    try {
      for (const { streamId, event: e } of fc.sample(event, { numRuns: 200, seed: 5 })) await store.append(streamId, [e], { expectedRevision: 'any' });
      const results = await Promise.allSettled([
        rebuildProjections(store, ALL_PROJECTIONS, { method: 'sql', chunkSize: 10 }),
        rebuildProjections(store, ALL_PROJECTIONS, { method: 'sql', chunkSize: 10 }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThanOrEqual(1);
      for (const r of results) if (r.status === 'rejected') expect(String(r.reason)).toMatch(/another rebuild/);
    } finally {
      await close();
    }
  });
});
