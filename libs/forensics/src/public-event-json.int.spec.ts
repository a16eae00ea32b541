/**
 * The NDJSON export's copy path (PublicEventJson over capabilities.eventsInSql.readAllJsonText) against the
 * parsing path (JSON.stringify(toPublicEvent(readAll))) on real jsonb output: PGlite always,
 * PostgreSQL when DATABASE_URL is set (test/backends.ts). Byte for byte, for every event type.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { Writable } from 'node:stream';
import pino from 'pino';
import { CAEP_SESSION_REVOKED, SSF_POLL, SSF_PUSH, formatFamilyId, type LedgerEvent, type LedgerEventType } from '@token-ledger/domain';
import { dropPostgresSchema, EmbeddedEventStore, PostgresEventStore, type NewEvent, type OpenedStore, type SqlEventStore } from '@token-ledger/event-store';
import { describeWithBackend } from '../../../test/backends';
import { freshEmbeddedDataDir } from '../../event-store/src/testing/embedded-template';
import * as replay from '../../../apps/cli/src/commands/replay';
import type { LedgerConfig } from '../../../apps/token-ledger/src';
import { toPublicEvent } from '@token-ledger/envelope';
import { dataIsPublicAsIs, PublicEventJson } from './public-event-json';
import { exportAllNdjson, readJsonTextPages } from './ndjson';
import { append, iso, POLICY, S, T0 } from './testing/fixtures';

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _e: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** The same store without its events in SQL: what the export does on EventStoreDB (the parsing path). */
function parsingOnly(store: OpenedStore): OpenedStore {
  return new Proxy(store, {
    get: (target, key) => (key === 'capabilities' ? { ...target.capabilities, eventsInSql: undefined } : (Reflect.get(target, key, target) as unknown)),
  });
}

const FAM = formatFamilyId(Buffer.alloc(16, 9));
const CTX = { ip: '203.0.113.7', userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0', deviceId: 'dev-1' };

/** One payload per event type; adding a type to LedgerEvent fails the typecheck here until it has one. */
const SAMPLES: { [T in LedgerEventType]: Extract<LedgerEvent, { type: T }>['data'] } = {
  TokenFamilyIssued: {
    scope: ['api:read', 'api:write'],
    audience: ['https://api.example.com'],
    generation: 1,
    tokenHash: 'h1',
    createdAt: iso(T0),
    idleExpiresAt: iso(T0 + 3600 * S),
    absoluteExpiresAt: iso(T0 + 86_400 * S),
    policy: POLICY,
    context: CTX,
  },
  TokenRotated: { fromGeneration: 1, generation: 2, tokenHash: 'h2', idleExpiresAt: iso(T0 + 7200 * S), scope: ['api:read'], context: CTX },
  TokenRotationReplayed: { presentedGeneration: 1, generation: 2, scope: ['api:read'], context: CTX },
  TokenReuseDetected: { presentedGeneration: 1, headGeneration: 2, context: { ip: '198.51.100.9' } },
  TokenFamilyRevoked: { reason: 'reuse_detected', revokedAt: iso(T0 + 9 * S), accessTokensValidUntil: iso(T0 + 309 * S) },
  TokenFamilyExpired: { reason: 'idle', expiredAt: iso(T0 + 3600 * S) },
  RefreshRejected: { reason: 'bad_secret', presentedGeneration: 2, context: { ip: '198.51.100.9', userAgent: 'curl/8.5.0' } },
  AccessTokenRevoked: { jti: 'jti-1', expiresAt: iso(T0 + 300 * S) },
  FamilyLinkedToSubject: { familyId: FAM, clientId: 'web' },
  SubjectRevoked: { reason: 'admin', familyIds: [FAM] },
  SubjectRevocationCompleted: { reason: 'admin', familyIds: [FAM] },
  ClientRegistered: {
    type: 'confidential',
    secretHash: 'scrypt$N=16384$c2FsdA$aGFzaA',
    allowedScopes: ['api:read'],
    policy: POLICY,
    maxFamiliesPerSubject: 200,
  },
  ApiKeyCreated: { keyId: 'key_1', name: 'orders-api', scopes: ['revocations:read'], keyHash: 'apikeyhash$aGFzaA', createdAt: iso(T0), expiresAt: null },
  ApiKeyRevoked: { keyId: 'key_1', revokedAt: iso(T0 + S) },
  ClientSecretRotated: { secretHash: 'scrypt$N=16384$c2FsdA$cm90YXRlZA', previousValidUntil: iso(T0 + 60 * S) },
  ClientDisabled: { revokeFamilies: true },
  ClientEnabled: {},
  ClientPolicyChanged: { allowedScopes: ['api:read'], policy: POLICY, maxFamiliesPerSubject: 100, introspectAll: true },
  AnomalyDetected: { anomalyId: 'anm_1', rule: 'reuse_burst', severity: 'high', action: 'alert', scope: 'family', scopeKey: FAM, evidence: { count: 3 }, trigger: { eventId: 'e-1', position: 4, occurredAt: iso(T0) } },
  AnomalyAcknowledged: { anomalyId: 'anm_1', by: 'api-key:key_1', note: 'looking — "why" \\ 東京' },
  AnomalyDismissed: { anomalyId: 'anm_1', by: 'admin-token', note: null },
  SsfStreamCreated: {
    streamId: 'ssf_1',
    status: 'enabled',
    aud: ['https://rp.example.com'],
    eventsRequested: [CAEP_SESSION_REVOKED, 'https://example.com/unknown'],
    eventsDelivered: [CAEP_SESSION_REVOKED],
    delivery: { method: SSF_PUSH, endpointUrl: 'https://rp.example.com/ssf', authorizationHeaderSealed: 'sealed:abc' },
    description: null,
  },
  SsfStreamUpdated: {
    streamId: 'ssf_1',
    aud: ['https://rp.example.com'],
    eventsRequested: [CAEP_SESSION_REVOKED],
    eventsDelivered: [CAEP_SESSION_REVOKED],
    delivery: { method: SSF_POLL, endpointUrl: 'https://ledger.example.com/ssf/poll/ssf_1' },
    description: 'RP',
  },
  SsfStreamStatusChanged: { streamId: 'ssf_1', status: 'paused', reason: 'maintenance' },
  SsfSubjectAdded: { streamId: 'ssf_1', subjectId: { format: 'email', email: 'Alice@Example.com' }, verified: true },
  SsfSubjectRemoved: { streamId: 'ssf_1', subjectId: { format: 'iss_sub', iss: 'https://ledger.example.com', sub: 'u-1' } },
  SsfVerificationRequested: { streamId: 'ssf_1', state: 'VGhpcyBpcyBhbiBleGFtcGxl' },
  SsfStreamDeleted: { streamId: 'ssf_1' },
};

/** Events beyond the domain's: payloads and metadata the copy path must get right or hand to the parser. */
function oddEvents(): { event: NewEvent; parsed: boolean }[] {
  const meta = (extra: Record<string, unknown> = {}) => ({ familyId: FAM, subject: 'alice', clientId: 'web', occurredAt: iso(T0), schemaVersion: 1, ...extra });
  const e = (type: string, data: unknown, metadata: Record<string, unknown>, parsed = false) => ({ event: { eventId: randomUUID(), type, data, metadata }, parsed });
  return [
    e('AnomalyDetected', { anomalyId: 'an_1', rule: 'impossible_travel', severity: 'high', action: 'alert', scope: 'family', scopeKey: FAM, evidence: { speedKmh: 4321.987654321, distanceKm: 8875.1, hours: 2.05, from: { lat: 52.52, lon: 13.405 }, to: { lat: -33.8688, lon: 151.2093 }, tiny: 1e-7, big: 1e21, third: 1 / 3 }, trigger: { eventId: randomUUID(), position: 17, occurredAt: iso(T0) } }, meta({ actor: 'anomaly-engine' })),
    e('Odd.Strings', { text: 'quote " backslash \\ newline \n tab \t bell \u0007 nul-free', separators: 'a, b: c', unicode: 'Zoë — 東京 😀 \u2028', endsInBackslash: 'x\\', emptyKey: { '': 'empty' } }, meta({ context: { ip: '::1', userAgent: 'Mozilla/5.0 (KHTML, like Gecko)' } })),
    e('Odd.Numbers', { ints: [0, -1, 2 ** 31, 2 ** 53 - 1, 123456789012345], floats: [0.1 + 0.2, -2.5, 1.5e-10, 6.02e23], nested: [[[1]], { n: -0 }] }, meta()),
    e('Odd.NoHeader', { a: 1 }, { correlationId: 'c-1', actor: 'admin' }),
    e('Odd.OnlySchemaVersion', { a: 1 }, { schemaVersion: 2 }),
    e('Odd.EmptyMetadata', { a: 1 }, {}),
    e('Odd.HeaderNamesNested', { familyId: 'in data', subject: { clientId: 'x' } }, meta({ context: { familyId: 'nested', subject: 'nested', occurredAt: 'nested' }, schemaVersionX: 3, familyIds: ['f'] })),
    e('Odd.HeaderValuesNotStrings', { a: 1 }, { familyId: 42, subject: null, clientId: { id: 'web' }, occurredAt: ['2025-01-01T00:00:00Z'], schemaVersion: '1' }),
    e('Odd.ArrayData', [1, 'two', { three: 3 }], meta()),
    e('Odd.ScalarData', 'just a string', meta(), true),
    e('Odd.NullData', null, meta(), true),
    e('Odd.IndexKeyInData', { byHour: { '0': 3, '13': 5, x: 1 } }, meta(), true),
    e('Odd.IndexKeyInMetadata', { a: 1 }, meta({ '7': 'seven' }), true),
    e('Odd.ProtoKey', JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}'), meta(JSON.parse('{"__proto__": 1}') as Record<string, unknown>)),
    e('Type "with" \\ odd \u0001 chars', { a: 1 }, meta()),
    e('ClientRegistered', { type: 'public', secretHash: null, allowedScopes: [], policy: POLICY, maxFamiliesPerSubject: 5 }, { familyId: '', subject: '', clientId: 'spa', occurredAt: iso(T0), schemaVersion: 1 }, true),
  ];
}

function describeCopyPath(name: string, open: () => Promise<{ store: SqlEventStore; cleanup: () => Promise<void> }>): void {
  describe(`NDJSON copy path on ${name}`, () => {
    let store: SqlEventStore;
    let cleanup: () => Promise<void>;
    let expectParsed = 0;

    beforeAll(async () => {
      ({ store, cleanup } = await open());
      // Every domain type, written the way the ledger writes it (header metadata, actor, context, hash chain).
      for (const [type, data] of Object.entries(SAMPLES)) {
        const isClient = type.startsWith('Client');
        const unattached = type.startsWith('ApiKey') || type.startsWith('Ssf');
        const header = isClient ? { familyId: '', subject: '', clientId: 'web' } : unattached ? { familyId: '', subject: '', clientId: '' } : { familyId: FAM, subject: 'alice', clientId: 'web' };
        const stream = isClient ? 'client-web' : type.startsWith('ApiKey') ? 'apikey-key_1' : type.startsWith('Ssf') ? 'ssf-stream-ssf_1' : type.startsWith('Subject') || type === 'FamilyLinkedToSubject' ? 'subject-alice' : `family-${FAM}`;
        await append(store, stream, [{ type, ...header, occurredAt: iso(T0 + S), data } as LedgerEvent], { actor: 'admin', correlationId: randomUUID(), context: CTX });
      }
      // ClientRegistered, ClientSecretRotated and ApiKeyCreated: publicEventData drops secretHash and keyHash;
      // SsfStreamCreated and SsfStreamUpdated: it looks into delivery (for a sealed Authorization header).
      expectParsed = 5;
      for (const { event, parsed } of oddEvents()) {
        await store.append(`odd-${randomUUID()}`, [event], { expectedRevision: 'no_stream' });
        if (parsed) expectParsed++;
      }
    });
    afterAll(async () => {
      await cleanup?.();
    });

    it('writes exactly JSON.stringify(toPublicEvent(event)) for every event, copying all it can', async () => {
      const recorded = await store.readAll();
      const texts = await store.readAllJsonText();
      expect(texts.map((t) => t.position)).toEqual(recorded.map((r) => r.position));
      const writer = new PublicEventJson();
      for (let i = 0; i < recorded.length; i++) {
        const expected = JSON.stringify(toPublicEvent(recorded[i]));
        expect({ type: recorded[i].type, json: writer.json(texts[i]) }).toEqual({ type: recorded[i].type, json: expected });
      }
      expect(writer.parsed).toBe(expectParsed);
      expect(texts.find((t) => t.type === 'TokenFamilyIssued')!.data).toContain('": '); // it really was jsonb text
    });

    it("ClientRegistered's secret hash never leaves: publicEventData decides, and is asked", async () => {
      expect(dataIsPublicAsIs('ClientRegistered')).toBe(false);
      expect(dataIsPublicAsIs('ClientSecretRotated')).toBe(false);
      expect(dataIsPublicAsIs('TokenRotated')).toBe(true);
      const out = new Sink();
      await exportAllNdjson(store, out);
      const clients = out.text.trimEnd().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'ClientRegistered' || e.type === 'ClientSecretRotated');
      expect(clients).toHaveLength(3);
      for (const c of clients) expect(c.data).not.toHaveProperty('secretHash');
      expect(out.text).not.toContain('scrypt$');
      expect(dataIsPublicAsIs('ApiKeyCreated')).toBe(false);
      expect(out.text).not.toContain('apikeyhash$');
      expect(out.text).toContain('"keyId":"key_1"');
    });

    it('exportAllNdjson: the same bytes as the parsing path, whatever the window, range, page size or concurrency', async () => {
      expect(store.capabilities.eventsInSql).toBeDefined();
      expect(parsingOnly(store).capabilities.eventsInSql).toBeUndefined();
      const head = await store.headPosition();
      const windows = [{}, { after: 3, until: head - 2 }, { occurred: { from: T0 + S } }, { occurred: { to: T0 } }, { occurred: { from: T0, to: T0 } }];
      for (const w of windows) {
        const slow = new Sink();
        const slowResult = await exportAllNdjson(parsingOnly(store), slow, w);
        for (const pageSize of [1, 3, 1000]) {
          for (const concurrency of [1, 3]) {
            const fast = new Sink();
            const progress: number[] = [];
            const fastResult = await exportAllNdjson(store, fast, { ...w, pageSize, concurrency, onProgress: (p) => progress.push(p.read) });
            expect({ w, pageSize, concurrency, text: fast.text }).toEqual({ w, pageSize, concurrency, text: slow.text });
            expect(fastResult).toEqual(slowResult);
            expect(progress[progress.length - 1]).toBe(Math.min(head, w.until ?? head) - (w.after ?? 0));
          }
        }
      }
    });

    it('readJsonTextPages skips a long gap in the positions with a probe, in order', async () => {
      const before = await store.headPosition();
      await store.sql.query(`select setval(pg_get_serial_sequence('tl_events', 'position'), $1)`, [before + 10_000]);
      await append(store, `family-${FAM}-gap`, [SAMPLES_EVENT()]);
      const head = await store.headPosition();
      expect(head).toBe(before + 10_001);
      let reads = 0;
      const counting = { readAllJsonText: (o: Parameters<SqlEventStore['readAllJsonText']>[0]) => (reads++, store.readAllJsonText(o)) };
      const positions: number[] = [];
      for await (const page of readJsonTextPages(counting, { after: before - 2, until: head, pageSize: 10, concurrency: 2 })) positions.push(...page.map((e) => e.position));
      expect(positions).toEqual([before - 1, before, head]);
      expect(reads).toBeLessThan(20); // not 1,000 empty ranges
    });

    it('replay --all --format ndjson (the CLI) with --from/--to/--at: the same bytes as the parsing path', async () => {
      const run = async (s: OpenedStore, args: string[]) => {
        const stdout = new Sink();
        const stderr = new Sink();
        const code = await replay.run(['--all', '--format', 'ndjson', ...args], {} as LedgerConfig, pino({ level: 'silent' }), {
          stdout,
          stderr,
          openStore: async () => ({ store: s, close: async () => undefined }),
        });
        return { code, out: stdout.text, err: stderr.text };
      };
      for (const args of [[], ['--from', iso(T0 + S)], ['--to', iso(T0)], ['--at', iso(T0)], ['--from', iso(T0), '--to', iso(T0 + S)]]) {
        const fast = await run(store, args);
        const slow = await run(parsingOnly(store), args);
        expect({ args, ...fast }).toEqual({ args, ...slow });
        expect(fast.code).toBe(0);
        expect(fast.out.length).toBeGreaterThan(0);
      }
    });
  });
}

const SAMPLES_EVENT = (): LedgerEvent => ({ type: 'TokenRotated', familyId: FAM, subject: 'alice', clientId: 'web', occurredAt: iso(T0 + 2 * S), data: SAMPLES.TokenRotated });

describeCopyPath('PGlite (embedded)', async () => {
  const dataDir = await freshEmbeddedDataDir('tl-ndjson-');
  const store = await EmbeddedEventStore.open({ dataDir });
  return {
    store,
    cleanup: async () => {
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
});

describeWithBackend('postgres', 'NDJSON copy path on PostgreSQL', (url) => {
  describeCopyPath('PostgreSQL', async () => {
    const schema = `fx_test_${randomBytes(6).toString('hex')}`;
    const store = await PostgresEventStore.open({ url, schema });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await dropPostgresSchema(url, schema);
      },
    };
  });
});
