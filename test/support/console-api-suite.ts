import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { anomalyIdOf, recordDetection, type Detection } from '@token-ledger/anomaly';
import { anomalyStreamId } from '@token-ledger/envelope';
import { verifyChain } from '@token-ledger/forensics';
import { TEST_ADDRESSES } from '../../libs/anomaly/src/geo/test-addresses';
import { eventually } from '../messaging/support';
import { ADMIN_TOKEN, LedgerClient, startLedger, type Ledger, type StoreKind } from './ledger-harness';
import { call, createKey } from './api-keys-suite';

/**
 * The server side of the analyst console (issue 18) over real HTTP on a real store: who am I, the
 * family's hash-chain verification, anomaly triage recorded as events (also under concurrency),
 * the overview series, places on the timeline and the console's static files.
 */
const CONSOLE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** A tiny console build, a secret beside it and a symlink leading out of it. */
function consoleFixture(): { dir: string; root: string } {
  const root = mkdtempSync(path.join(tmpdir(), 'tl-console-'));
  const dir = path.join(root, 'console');
  mkdirSync(path.join(dir, 'assets'), { recursive: true });
  writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>console</title><script type="module" src="/console/assets/index-AbC123_x.js"></script>');
  writeFileSync(path.join(dir, 'assets', 'index-AbC123_x.js'), 'console.log("hi")');
  writeFileSync(path.join(dir, 'world.geojson'), '{"type":"FeatureCollection","features":[]}');
  writeFileSync(path.join(dir, '.env'), 'SECRET=dotfile');
  writeFileSync(path.join(root, 'secret.txt'), 'SECRET=outside');
  symlinkSync(path.join(root, 'secret.txt'), path.join(dir, 'link.txt'));
  return { dir, root };
}

/** GET with the path sent exactly as written (fetch would normalise `..` away). */
function rawGet(base: string, rawPath: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path: rawPath, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** An anomaly recorded the way the engine records one (its own stream, "no stream"). */
export async function recordAnomaly(ledger: Ledger, over: Partial<Detection> = {}): Promise<string> {
  const triggerId = randomUUID();
  const rule = over.rule ?? 'refresh_burst';
  const detection: Detection = {
    rule: rule as Detection['rule'],
    scope: 'family',
    scopeKey: over.familyId ?? 'fam_none',
    evidence: { refreshes: 31, windowSeconds: 60 },
    anomalyId: anomalyIdOf(rule, 'family', over.familyId ?? 'fam_none', triggerId),
    severity: 'medium',
    action: 'alert',
    familyId: 'fam_none',
    subject: 'nobody',
    clientId: 'console-app',
    trigger: { eventId: triggerId, position: 1, occurredAt: new Date().toISOString() },
    ...over,
  };
  expect(await recordDetection(ledger.store, detection, new Date(), ledger.runtime.chainMacKey)).toBe(true);
  return detection.anomalyId;
}

/**
 * Many concurrent acknowledge/dismiss requests at one anomaly: exactly the decider's outcome (an
 * acknowledgement then a dismissal, or a dismissal alone), one event per 200, every other answer a
 * 409 — never a 5xx — and the stream's chain and snapshot intact.
 */
export function triageConcurrencySuite(storeKind: () => StoreKind): void {
  let ledger: Ledger;
  let triager: { keyId: string; key: string };
  beforeAll(async () => {
    ledger = await startLedger({ store: storeKind() });
    triager = await createKey(ledger.baseUrl, { name: 'analyst on call', scopes: ['anomalies:triage'] });
  });
  afterAll(async () => {
    await ledger?.destroy();
  });

  it('concurrent acknowledge/dismiss requests at one anomaly: one event per accepted transition', async () => {
    for (let round = 0; round < 3; round++) {
      const anomalyId = await recordAnomaly(ledger);
      const requests = Array.from({ length: 24 }, (_, i) => {
        const action = i % 2 === 0 ? 'acknowledge' : 'dismiss';
        const bearer = i % 3 === 0 ? ADMIN_TOKEN : triager.key;
        return call(ledger.baseUrl, bearer, 'POST', `/v1/anomalies/${anomalyId}/${action}`, { note: `request ${i}` }).then((res) => ({ i, action, bearer, res }));
      });
      const answers = await Promise.all(requests);
      expect(answers.filter((a) => a.res.status !== 200 && a.res.status !== 409).map((a) => [a.res.status, a.res.body])).toEqual([]);
      const accepted = answers.filter((a) => a.res.status === 200);
      const events = (await ledger.store.readStream(anomalyStreamId(anomalyId))).slice(1);
      expect(events.map((e) => e.type)).toEqual(accepted.map((a) => (a.action === 'acknowledge' ? 'AnomalyAcknowledged' : 'AnomalyDismissed')).sort());
      expect([['AnomalyDismissed'], ['AnomalyAcknowledged', 'AnomalyDismissed']]).toContainEqual(events.map((e) => e.type));
      // Each accepted answer is its own event: same actor, note and time.
      for (const a of accepted) {
        const e = events.find((x) => x.type === (a.action === 'acknowledge' ? 'AnomalyAcknowledged' : 'AnomalyDismissed'))!;
        const by = a.bearer === ADMIN_TOKEN ? 'admin-token' : `api-key:${triager.keyId}`;
        expect(a.res.body).toEqual({ anomalyId, status: a.action === 'acknowledge' ? 'acknowledged' : 'dismissed', by, at: e.metadata.occurredAt });
        expect(e.metadata.actor).toBe(by);
        expect(e.data).toEqual({ anomalyId, by, note: `request ${a.i}` });
      }
      for (const refused of answers.filter((a) => a.res.status === 409)) {
        expect(refused.res.body).toMatchObject({ status: 409, currentStatus: expect.stringMatching(/^(acknowledged|dismissed)$/) });
        expect(refused.res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      }
      expect(await verifyChain(ledger.store, { streamId: anomalyStreamId(anomalyId) })).toMatchObject({ ok: true, events: 1 + events.length });
    }
  });
}

export function consoleApiSuite(storeKind: () => StoreKind, env: Record<string, string> = {}): void {
  const fixture = consoleFixture();
  let ledger: Ledger;
  let api: LedgerClient;
  let base: string;
  let reader: { keyId: string; key: string };
  let issuer: { keyId: string; key: string };
  let app: { clientId: string; secret: string };

  beforeAll(async () => {
    ledger = await startLedger({ store: storeKind(), env: { LEDGER_CONSOLE_DIR: fixture.dir, ...env } });
    api = new LedgerClient(ledger.baseUrl);
    base = ledger.baseUrl;
    app = await api.registerClient({ clientId: 'console-app', reuseGraceSeconds: 0 });
    reader = await createKey(base, { name: 'analyst', scopes: ['audit:read'] });
    issuer = await createKey(base, { name: 'login service', scopes: ['families:issue'] });
  });
  afterAll(async () => {
    await ledger?.destroy();
    rmSync(fixture.root, { recursive: true, force: true });
  });

  describe('GET /v1/api-keys/self', () => {
    it('names the calling key and its scopes, whatever they are', async () => {
      const me = await call(base, issuer.key, 'GET', '/v1/api-keys/self');
      expect(me.status).toBe(200);
      expect(me.body).toEqual({ keyId: issuer.keyId, name: 'login service', scopes: ['families:issue'], principal: 'api-key' });
      expect((await call(base, reader.key, 'GET', '/v1/api-keys/self')).body).toMatchObject({ keyId: reader.keyId, scopes: ['audit:read'] });
      expect((await call(base, ADMIN_TOKEN, 'GET', '/v1/api-keys/self')).body).toEqual({ keyId: null, name: null, scopes: ['admin'], principal: 'admin-token' });
    });

    it('refuses a missing, unknown or revoked key with 401 problem+json', async () => {
      const gone = await createKey(base, { name: 'short-lived', scopes: ['audit:read'] });
      expect((await call(base, ADMIN_TOKEN, 'POST', `/v1/api-keys/${gone.keyId}/revoke`)).status).toBe(200);
      for (const bearer of [undefined, 'tlk_nonsense', gone.key]) {
        const res = await call(base, bearer, 'GET', '/v1/api-keys/self');
        expect(res.status).toBe(401);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      }
    });
  });

  describe('GET /v1/families/{id}/verification', () => {
    it("checks the family's hash chain: intact, then broken after an edit in the store", async () => {
      const fam = await api.issue({ subject: 'verify-me', clientId: 'console-app', scope: 'api:read' });
      const r1 = await api.refresh(fam.refresh_token, app);
      expect(r1.status).toBe(200);
      const ok = await call(base, reader.key, 'GET', `/v1/families/${fam.family_id}/verification`);
      expect(ok.status).toBe(200);
      // The harness sets no LEDGER_KEK unless env does: the chain is then intact but only self-consistent.
      expect(ok.body).toEqual({ familyId: fam.family_id, status: env.LEDGER_KEK ? 'ok' : 'unkeyed', checkedEvents: 2, problemCount: 0, problems: [] });

      const sql = ledger.runtime.readModels.sql;
      await sql.query(`update tl_events set metadata = jsonb_set(metadata, '{context}', '{"ip":"10.66.66.66"}') where stream_id = $1 and revision = 1`, [`family-${fam.family_id}`]);
      const broken = await call(base, reader.key, 'GET', `/v1/families/${fam.family_id}/verification`);
      expect(broken.status).toBe(200);
      expect(broken.body).toMatchObject({ familyId: fam.family_id, status: 'broken', checkedEvents: 2 });
      expect(broken.body.problems[0]).toMatchObject({ kind: 'altered', revision: 1, position: expect.any(Number) });
    });

    it('answers 404 for an unknown or malformed family, 401 without a key, 403 without audit:read', async () => {
      expect((await call(base, reader.key, 'GET', '/v1/families/fam_00000000000000000000000000/verification')).status).toBe(404);
      expect((await call(base, reader.key, 'GET', '/v1/families/nope/verification')).status).toBe(404);
      expect((await call(base, undefined, 'GET', '/v1/families/nope/verification')).status).toBe(401);
      const forbidden = await call(base, issuer.key, 'GET', '/v1/families/nope/verification');
      expect(forbidden.status).toBe(403);
      expect(forbidden.body).toMatchObject({ requiredScope: 'audit:read' });
    });
  });

  describe('GET /console', () => {
    it('serves index.html with the console CSP, and index.html for a deep link without an extension', async () => {
      for (const route of ['/console', '/console/', '/console/index.html', '/console/families/fam_x', '/console/anomalies?status=open']) {
        const res = await rawGet(base, route);
        expect({ route, status: res.status }).toEqual({ route, status: 200 });
        expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
        expect(res.headers['cache-control']).toBe('no-cache');
        expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
        expect(res.headers['content-security-policy']).not.toContain('unsafe-inline');
        expect(res.headers).toMatchObject({ 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer' });
        expect(res.body).toContain('<title>console</title>');
      }
    });

    it('serves hashed assets as immutable with their content type; the API keeps its own CSP', async () => {
      const js = await rawGet(base, '/console/assets/index-AbC123_x.js');
      expect(js.status).toBe(200);
      expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
      expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(js.body).toBe('console.log("hi")');
      const geo = await rawGet(base, '/console/world.geojson');
      expect(geo.headers['content-type']).toBe('application/geo+json; charset=utf-8');
      expect(geo.headers['cache-control']).toBe('no-cache');
      for (const route of ['/healthz', '/v1/api-keys/self', '/consoles', '/openapi.json']) {
        expect((await rawGet(base, route)).headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'");
      }
      const missing = await rawGet(base, '/console/assets/nope-12345678.js');
      expect(missing.status).toBe(404);
      expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
    });

    it('refuses path traversal, dot files and symlinks leading out of the build directory', async () => {
      for (const route of [
        '/console/../secret.txt',
        '/console/%2e%2e/secret.txt',
        '/console/assets/..%2f..%2fsecret.txt',
        '/console/%2e%2e%2fsecret.txt',
        '/console/..%5csecret.txt',
        '/console/.env',
        '/console/assets/%2e%2e/.env',
        '/console/link.txt',
        '/console/%00.js',
      ]) {
        const res = await rawGet(base, route);
        expect({ route, status: res.status >= 400 && res.status < 500 }).toEqual({ route, status: true });
        expect(res.body).not.toContain('SECRET=');
      }
    });

    it('answers 404 problem+json naming npm run build while the console is not built', async () => {
      renameSync(path.join(fixture.dir, 'index.html'), path.join(fixture.dir, 'index.off'));
      try {
        const res = await rawGet(base, '/console/families');
        expect(res.status).toBe(404);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(JSON.parse(res.body)).toMatchObject({ status: 404, hint: 'npm run build' });
      } finally {
        renameSync(path.join(fixture.dir, 'index.off'), path.join(fixture.dir, 'index.html'));
      }
    });
  });

  describe('anomaly triage', () => {
    let triager: { keyId: string; key: string };
    let anomalyId: string;
    let familyId: string;
    beforeAll(async () => {
      triager = await createKey(base, { name: 'analyst on call', scopes: ['anomalies:triage'] });
    });

    it('a reuse incident is detected, acknowledged with a note, then dismissed; the read model and the audit view show it', async () => {
      const fam = await api.issue({ subject: 'incident', clientId: 'console-app', scope: 'api:read' });
      familyId = fam.family_id;
      expect((await api.refresh(fam.refresh_token, app)).status).toBe(200);
      expect((await api.refresh(fam.refresh_token, app)).body.error).toBe('invalid_grant'); // reuse
      let items: any[] = [];
      await eventually(async () => {
        items = (await call(base, reader.key, 'GET', `/v1/anomalies?familyId=${familyId}&rule=reuse_detected`)).body.items;
        return items.length === 1;
      }, 'reuse_detected recorded');
      anomalyId = items[0].anomalyId;
      expect(items[0]).toMatchObject({ rule: 'reuse_detected', status: 'open', statusBy: null, statusAt: null, statusNote: null });

      const ack = await call(base, triager.key, 'POST', `/v1/anomalies/${anomalyId}/acknowledge`, { note: 'calling the user' });
      expect(ack.status).toBe(200);
      expect(ack.body).toEqual({ anomalyId, status: 'acknowledged', by: `api-key:${triager.keyId}`, at: expect.any(String) });
      const position = Number(ack.headers.get('x-event-position'));
      const acked = await call(base, reader.key, 'GET', `/v1/anomalies?status=acknowledged&familyId=${familyId}&minPosition=${position}`);
      expect(acked.body.items).toEqual([expect.objectContaining({ anomalyId, status: 'acknowledged', statusBy: `api-key:${triager.keyId}`, statusAt: ack.body.at, statusNote: 'calling the user' })]);
      expect((await call(base, reader.key, 'GET', `/v1/anomalies?status=open&familyId=${familyId}&minPosition=${position}`)).body.items).toEqual([]);

      const dismiss = await call(base, ADMIN_TOKEN, 'POST', `/v1/anomalies/${anomalyId}/dismiss`);
      expect(dismiss.status).toBe(200);
      expect(dismiss.body).toMatchObject({ anomalyId, status: 'dismissed', by: 'admin-token' });
      const after = Number(dismiss.headers.get('x-event-position'));
      const filtered = await call(base, reader.key, 'GET', `/v1/anomalies?status=dismissed&severity=high&rule=reuse_detected&minPosition=${after}`);
      expect(filtered.body.items).toEqual([expect.objectContaining({ anomalyId, status: 'dismissed', statusBy: 'admin-token', statusNote: null })]);

      const audit = await call(base, reader.key, 'GET', `/v1/audit?familyId=${familyId}&order=asc&minPosition=${after}`);
      const triage = audit.body.items.filter((e: any) => e.type.startsWith('Anomaly'));
      expect(triage.map((e: any) => e.type)).toEqual(['AnomalyDetected', 'AnomalyAcknowledged', 'AnomalyDismissed']);
      expect(triage[1]).toMatchObject({ familyId, subject: 'incident', data: { anomalyId, by: `api-key:${triager.keyId}`, note: 'calling the user' }, metadata: { actor: `api-key:${triager.keyId}` } });
      expect((await call(base, reader.key, 'GET', `/v1/audit?type=AnomalyDismissed&minPosition=${after}`)).body.items[0]).toMatchObject({ data: { anomalyId } });

      // The anomaly's stream, its snapshot included, verifies; so does the whole store (but for the
      // family edited on purpose above).
      expect(await verifyChain(ledger.store, { streamId: anomalyStreamId(anomalyId) })).toMatchObject({ ok: true, events: 3 });
      const all = await verifyChain(ledger.store, { all: true });
      expect(all!.problems.filter((p) => !p.streamId.startsWith('family-'))).toEqual([]);
    });

    it('dismissed is final: 409 problem naming the current status', async () => {
      for (const action of ['acknowledge', 'dismiss']) {
        const res = await call(base, triager.key, 'POST', `/v1/anomalies/${anomalyId}/${action}`, {});
        expect(res.status).toBe(409);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(res.body).toMatchObject({ status: 409, currentStatus: 'dismissed', statusBy: 'admin-token' });
      }
      const other = await recordAnomaly(ledger);
      expect((await call(base, triager.key, 'POST', `/v1/anomalies/${other}/acknowledge`)).status).toBe(200);
      expect((await call(base, triager.key, 'POST', `/v1/anomalies/${other}/acknowledge`)).body).toMatchObject({ status: 409, currentStatus: 'acknowledged' });
    });

    it('401 without a key, 403 without anomalies:triage, 404 for an unknown anomaly, 400 for a bad note', async () => {
      const route = `/v1/anomalies/${anomalyId}/acknowledge`;
      expect((await call(base, undefined, 'POST', route, {})).status).toBe(401);
      const forbidden = await call(base, reader.key, 'POST', route, {});
      expect(forbidden.status).toBe(403);
      expect(forbidden.body).toMatchObject({ requiredScope: 'anomalies:triage' });
      for (const id of [`anm_${'0'.repeat(32)}`, 'nope', 'anm_../family-x']) {
        const res = await call(base, triager.key, 'POST', `/v1/anomalies/${encodeURIComponent(id)}/dismiss`, {});
        expect({ id, status: res.status }).toEqual({ id, status: 404 });
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      }
      const fresh = await recordAnomaly(ledger);
      for (const body of [{ note: 'x'.repeat(501) }, { note: 42 }, { reason: 'unknown field' }, ['array']]) {
        const res = await call(base, triager.key, 'POST', `/v1/anomalies/${fresh}/dismiss`, body);
        expect({ body, status: res.status }).toEqual({ body, status: 400 });
      }
      expect((await call(base, triager.key, 'POST', `/v1/anomalies/${fresh}/dismiss`, { note: 'x'.repeat(500) })).status).toBe(200);
      expect((await call(base, reader.key, 'GET', '/v1/anomalies?status=closed')).status).toBe(400);
      expect((await call(base, reader.key, 'GET', '/v1/anomalies?severity=urgent')).status).toBe(400);
    });
  });

  describe('GET /v1/stats/overview', () => {
    it('counts refreshes, reuse detections, revocations and anomalies per bucket, as the audit view lists them', async () => {
      const head = await ledger.store.headPosition();
      const to = new Date(Date.now() + 60_000).toISOString();
      const from = new Date(Date.now() - 30 * 60_000).toISOString();
      const res = await call(base, reader.key, 'GET', `/v1/stats/overview?from=${from}&to=${to}&bucket=minute&minPosition=${head}`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ from, to, bucket: 'minute' });
      expect(res.body.series).toHaveLength(32);
      // The same counts, worked out from the audit view's own events.
      const expected = new Map<string, Record<string, number>>();
      const names: Record<string, string> = { TokenRotated: 'refreshes', TokenRotationReplayed: 'refreshes', TokenReuseDetected: 'reuseDetections', TokenFamilyRevoked: 'revocations', AnomalyDetected: 'anomalies' };
      for (const type of Object.keys(names)) {
        const audit = await call(base, reader.key, 'GET', `/v1/audit?type=${type}&from=${from}&to=${to}&limit=500`);
        for (const e of audit.body.items) {
          const at = new Date(Math.floor(Date.parse(e.occurredAt) / 60_000) * 60_000).toISOString();
          const point = expected.get(at) ?? { refreshes: 0, reuseDetections: 0, revocations: 0, anomalies: 0 };
          point[names[type]]++;
          expected.set(at, point);
        }
      }
      const nonZero = res.body.series.filter((p: any) => p.refreshes + p.reuseDetections + p.revocations + p.anomalies > 0);
      expect(nonZero).toEqual([...expected.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([at, p]) => ({ at, ...p })));
      const total = (k: string) => res.body.series.reduce((n: number, p: any) => n + p[k], 0);
      expect({ refreshes: total('refreshes') >= 2, reuse: total('reuseDetections') >= 1, revocations: total('revocations') >= 1, anomalies: total('anomalies') >= 3 }).toEqual({ refreshes: true, reuse: true, revocations: true, anomalies: true });
      expect(res.body.series[0].at).toBe(new Date(Math.floor(Date.parse(from) / 60_000) * 60_000).toISOString());

      const days = await call(base, reader.key, 'GET', `/v1/stats/overview?from=2024-01-01T00:00:00Z&to=2024-01-03T12:00:00%2B02:00&bucket=day`);
      expect(days.body.series).toEqual(['2024-01-01', '2024-01-02', '2024-01-03'].map((d) => ({ at: `${d}T00:00:00.000Z`, refreshes: 0, reuseDetections: 0, revocations: 0, anomalies: 0 })));
      const byDefault = await call(base, reader.key, 'GET', '/v1/stats/overview');
      expect(byDefault.body.bucket).toBe('hour');
      expect(byDefault.body.series.length).toBeGreaterThanOrEqual(24);
    });

    it('refuses more than 1000 buckets and bad input with 400 problem+json; 401 and 403 without audit:read', async () => {
      const ok = await call(base, reader.key, 'GET', '/v1/stats/overview?from=2024-01-01T00:00:00Z&to=2024-01-01T16:40:00Z&bucket=minute');
      expect(ok.status).toBe(200);
      expect(ok.body.series).toHaveLength(1000);
      for (const q of [
        'from=2024-01-01T00:00:00Z&to=2024-01-01T16:41:00Z&bucket=minute',
        'from=2024-01-01T00:00:00Z&to=2024-03-01T00:00:00Z&bucket=hour',
        'bucket=week',
        'from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z',
        'from=2024-01-01T00:00:00Z&to=2024-01-01T00:00:00Z',
        'from=yesterday',
        'from=2024-01-01T00:00:00',
        'to=2024-02-30T00:00:00Z',
        'unknown=1',
      ]) {
        const res = await call(base, reader.key, 'GET', `/v1/stats/overview?${q}`);
        expect({ q, status: res.status }).toEqual({ q, status: 400 });
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      }
      expect((await call(base, undefined, 'GET', '/v1/stats/overview')).status).toBe(401);
      expect((await call(base, issuer.key, 'GET', '/v1/stats/overview')).body).toMatchObject({ status: 403, requiredScope: 'audit:read' });
    });
  });

  describe('GET /v1/families/{id}/timeline: places', () => {
    it('places each event made from a public address, with the DB-IP attribution; keeps the event shape', async () => {
      const fam = await api.issue({ subject: 'traveller', clientId: 'console-app', scope: 'api:read', context: { ip: TEST_ADDRESSES.paris, userAgent: 'phone' } });
      expect((await api.refresh(fam.refresh_token, app)).status).toBe(200); // from 127.0.0.1: no place
      const res = await call(base, reader.key, 'GET', `/v1/families/${fam.family_id}/timeline`);
      expect(res.status).toBe(200);
      expect(res.body.attribution).toEqual({ text: 'IP Geolocation by DB-IP', url: 'https://db-ip.com/' });
      expect(res.body.events.map((e: any) => [e.type, e.place])).toEqual([
        ['TokenFamilyIssued', { city: 'Paris', country: 'France', countryCode: 'FR', latitude: 48.8568, longitude: 2.3503 }],
        ['TokenRotated', null],
      ]);
      expect(res.body.events[0]).toMatchObject({ familyId: fam.family_id, metadata: { context: { ip: TEST_ADDRESSES.paris } } });
      expect(res.body.state).toMatchObject({ familyId: fam.family_id, status: 'active' });

      const countryOnly = await api.issue({ subject: 'traveller', clientId: 'console-app', scope: 'api:read', context: { ip: TEST_ADDRESSES.countryOnly } });
      const known = await call(base, reader.key, 'GET', `/v1/families/${countryOnly.family_id}/timeline`);
      expect(known.body.events[0].place).toEqual({ city: null, country: 'Germany', countryCode: 'DE', latitude: 51.1657, longitude: 10.4515 });
    });
  });
}
