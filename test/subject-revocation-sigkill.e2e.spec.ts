import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describeWithBackend } from './backends';
import { freshDatabase } from './support/fresh-database';
import { ADMIN_TOKEN, LedgerClient } from './support/ledger-harness';
import { spawnLedger, type LedgerProcess } from './support/ledger-process';

/**
 * The server SIGKILLed while it revokes a subject with 500 families, then restarted on the same
 * data: without anyone retrying, every family is dead within 10 s of the restart (the reconciler
 * `serve` runs); with a retry instead, it answers with the families it revoked. `serve` runs as a
 * child process, with its default reconciler settings unless a test says otherwise. On each store:
 * embedded (PGlite), PostgreSQL, and EventStoreDB (with its read models in PostgreSQL) where one is
 * reachable — skipped with the reason otherwise, like the other EventStoreDB suites.
 */
const FAMILIES = 500;
/** Per test: an EventStoreDB keeps the streams of earlier tests (it has no database to drop). */
let SUBJECT = 'kill-me';

interface Family {
  family_id: string;
  refresh_token: string;
}

/** Runs `work` over `items`, `concurrency` at a time, in order of start. */
async function pool<T, R>(items: readonly T[], concurrency: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await work(items[i]);
      }
    }),
  );
  return out;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, everyMs = 50): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** TokenFamilyRevoked events of the subject (audit view), once there are `count` of them. */
async function familyRevocations(api: LedgerClient, count: number, timeoutMs: number): Promise<{ familyId: string; actor: string; correlationId: string }[]> {
  return until(`${count} TokenFamilyRevoked in the audit view`, timeoutMs, async () => {
    const all: { familyId: string; metadata: { actor: string; correlationId: string } }[] = [];
    let cursor: string | null = null;
    do {
      const page = await api.admin('GET', `/v1/audit?subject=${SUBJECT}&type=TokenFamilyRevoked&limit=500${cursor ? `&cursor=${cursor}` : ''}`);
      all.push(...page.body.items);
      cursor = page.body.nextCursor;
    } while (cursor);
    return all.length >= count ? all.map((e) => ({ familyId: e.familyId, actor: e.metadata.actor, correlationId: e.metadata.correlationId })) : undefined;
  });
}

function sigkillSuite(name: string, storeEnv: () => Promise<{ env: Record<string, string>; cleanUp: () => Promise<void> }>): void {
  describe(`RevokeSubject survives SIGKILL (${name})`, () => {
    let env: Record<string, string>;
    let cleanUp: () => Promise<void>;
    const running: LedgerProcess[] = [];
    let families: Family[];
    let client: { clientId: string; secret: string };

    beforeEach(async () => {
      SUBJECT = `kill-me-${randomBytes(4).toString('hex')}`;
      ({ env, cleanUp } = await storeEnv());
    });
    afterEach(async () => {
      for (const p of running.splice(0)) await p.kill();
      await cleanUp();
    });

    async function start(extra: Record<string, string> = {}): Promise<{ server: LedgerProcess; api: LedgerClient }> {
      const server = await spawnLedger({ ...env, LEDGER_ANOMALY_ENGINE: 'off', ...extra });
      running.push(server);
      return { server, api: new LedgerClient(server.baseUrl) };
    }

    /** 500 families for the subject, then RevokeSubject over HTTP; SIGKILL once some but not all are revoked. */
    async function killMidRevocation(): Promise<void> {
      const { server, api } = await start({ LOG_LEVEL: 'debug' });
      client = await api.registerClient({ clientId: 'sigkill', maxFamiliesPerSubject: 1000, reuseGraceSeconds: 0 });
      const t0 = performance.now();
      // One at a time: they all link on the same subject stream, so parallel issues mostly conflict;
      // and the revocation takes them in link order, which is then this order.
      families = await pool(Array.from({ length: FAMILIES }), 1, () => api.issue({ subject: SUBJECT, clientId: client.clientId, scope: 'api:read' }));
      console.log(`${name}: ${FAMILIES} families issued in ${Math.round(performance.now() - t0)} ms`);

      const revoking = fetch(`${server.baseUrl}/v1/subjects/${SUBJECT}/revoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', 'x-correlation-id': 'first-attempt' },
        body: JSON.stringify({ reason: 'password_change' }),
      }).then(
        (r) => r.status,
        () => 'connection lost' as const,
      );
      // The command logs its progress (debug) every 100 families: kill it at the first such line.
      await server.waitFor(new RegExp(`subject ${SUBJECT}: \\d+ of ${FAMILIES} families revoked`), 60_000);
      await server.kill();
      expect(await revoking).toBe('connection lost');
    }

    /** Every token inactive on the command side; refreshing fails (tried on every 10th: each try appends a RefreshRejected). */
    async function expectAllDead(api: LedgerClient): Promise<void> {
      const active = await pool(families, 8, async (f) => (await api.form('/oauth/introspect', { token: f.refresh_token }, client)).body.active);
      expect(active.filter((a) => a !== false)).toEqual([]);
      const errors = await pool(families.filter((_, i) => i % 10 === 0 || i === FAMILIES - 1), 4, async (f) => (await api.refresh(f.refresh_token, client)).body.error);
      expect(errors.filter((e) => e !== 'invalid_grant')).toEqual([]);
    }

    it('restarted, with nobody retrying: every family is dead within 10 s', async () => {
      await killMidRevocation();
      const { server, api } = await start();
      // The completion is appended only once every family is revoked; then every token is tried.
      const doneAt = await until('the reconciler completing the revocation', 15_000, async () => {
        const page = await api.admin('GET', `/v1/audit?subject=${SUBJECT}&type=SubjectRevocationCompleted&limit=1`);
        return page.body.items.length > 0 ? performance.now() : undefined;
      });
      const seconds = (doneAt - server.readyAt) / 1000;
      console.log(`${name}: revocation completed ${seconds.toFixed(2)} s after the restart`);
      expect(seconds).toBeLessThan(10);
      await expectAllDead(api);

      // Killed mid-way: the first attempt revoked some, the reconciler the rest, each family once.
      const revocations = await familyRevocations(api, FAMILIES, 10_000);
      const byFirst = revocations.filter((r) => r.correlationId === 'first-attempt').length;
      const byReconciler = revocations.filter((r) => r.actor === 'subject-revocation-reconciler').length;
      console.log(`${name}: ${byFirst} revoked before the kill, ${byReconciler} by the reconciler`);
      expect(byFirst).toBeGreaterThan(0);
      expect(byReconciler).toBeGreaterThan(0);
      expect(byFirst + byReconciler).toBe(FAMILIES);
      expect(new Set(revocations.map((r) => r.familyId)).size).toBe(FAMILIES);
    }, 240_000);

    it('restarted, a retry answers with the families it revoked', async () => {
      await killMidRevocation();
      // The reconciler held off (grace), so the retry does the work and its answer is exact.
      const { api } = await start({ LEDGER_RECONCILE_GRACE_SECONDS: '3600' });
      const retry = await api.admin('POST', `/v1/subjects/${SUBJECT}/revoke`, { reason: 'admin' });
      expect(retry.status).toBe(200);
      await expectAllDead(api);
      const revocations = await familyRevocations(api, FAMILIES, 10_000);
      const before = revocations.filter((r) => r.correlationId === 'first-attempt').map((r) => r.familyId);
      expect(before.length).toBeGreaterThan(0);
      expect(retry.body.revokedFamilies.length).toBeGreaterThan(0);
      expect([...retry.body.revokedFamilies].sort()).toEqual(
        families
          .map((f) => f.family_id)
          .filter((id) => !before.includes(id))
          .sort(),
      );
    }, 240_000);
  });
}

sigkillSuite('embedded store', async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tl-sigkill-'));
  return { env: { LEDGER_DATA_DIR: dataDir }, cleanUp: async () => rmSync(dataDir, { recursive: true, force: true }) };
});

describeWithBackend('postgres', 'on PostgreSQL', (url) => {
  sigkillSuite('PostgreSQL', async () => {
    const db = await freshDatabase(url, 'tl_sigkill');
    return { env: { LEDGER_STORE: 'postgres', DATABASE_URL: db.url }, cleanUp: db.drop };
  });
});

describeWithBackend('eventstoredb', 'on EventStoreDB', (esdbUrl) => {
  describeWithBackend('postgres', 'with its read models on PostgreSQL', (url) => {
    sigkillSuite('EventStoreDB', async () => {
      const db = await freshDatabase(url, 'tl_sigkill');
      return { env: { LEDGER_STORE: 'eventstoredb', EVENTSTORE_URL: esdbUrl, DATABASE_URL: db.url }, cleanUp: db.drop };
    });
  });
});
