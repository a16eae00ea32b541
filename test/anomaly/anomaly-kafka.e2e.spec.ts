import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Kafka } from 'kafkajs';
import { RULE_NAMES } from '@token-ledger/anomaly';
import { formatRefreshToken, parseRefreshToken } from '@token-ledger/domain';
import { TEST_ADDRESSES as ip } from '../../libs/anomaly/src/geo/test-addresses';
import { describeWithBackend, resolveBackend } from '../backends';
import { collect, deleteTopics, eventually, kafkaClient, runId, testTopics } from '../messaging/support';
import { LedgerClient, startLedger, type Ledger } from '../support/ledger-harness';

jest.setTimeout(120_000);

/**
 * The anomaly engine end to end on the real broker: HTTP requests → events → relay →
 * token-ledger.events.v1 → engine (consumer group) → AnomalyDetected in the store, the anomalies
 * view, token-ledger.anomalies.v1, the webhook and the metric; actions revoke through the command
 * side. Client addresses come from X-Forwarded-For (LEDGER_TRUST_PROXY=true) and are real addresses
 * the bundled database places (libs/anomaly/src/geo/test-addresses.ts).
 */
describeWithBackend('kafka', 'anomaly engine on the real broker', (brokers) => {
  const postgres = resolveBackend('postgres');
  const run = runId();
  const topics = testTopics(run);
  let kafka: Kafka;
  let ledger: Ledger;
  let api: LedgerClient;
  let dir: string;
  let webhook: Server;
  const hooked: any[] = [];
  let topic: Awaited<ReturnType<typeof collect>>;

  const rules = {
    rules: {
      impossible_travel: { action: 'revoke_family' },
      refresh_burst: { perFamily: { max: 3, windowSeconds: 60 }, action: 'revoke_family' },
      failed_refresh_storm: { perSubject: { max: 3, windowSeconds: 60 }, perIp: { max: 4, windowSeconds: 60 } },
    },
  };

  async function start(schema?: string): Promise<Ledger> {
    return startLedger({
      store: postgres.available ? { kind: 'postgres', url: postgres.url } : { kind: 'embedded' },
      schema,
      dataDir: schema ? ledger.dataDir : undefined,
      messaging: { topics, groupPrefix: `tl-test-${run}` },
      env: {
        KAFKA_BROKERS: brokers,
        LEDGER_TRUST_PROXY: 'true',
        LEDGER_ANOMALY_RULES: path.join(dir, 'rules.json'),
        LEDGER_ANOMALY_WEBHOOK_URL: `http://127.0.0.1:${(webhook.address() as { port: number }).port}/hook`,
      },
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tl-anomaly-'));
    writeFileSync(path.join(dir, 'rules.json'), JSON.stringify(rules));
    webhook = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        hooked.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => webhook.listen(0, '127.0.0.1', r));
    kafka = kafkaClient(brokers);
    ledger = await start();
    api = new LedgerClient(ledger.baseUrl);
    topic = await collect(kafka, topics.anomalies);
  });

  afterAll(async () => {
    await topic?.stop();
    await ledger?.destroy();
    await new Promise((r) => webhook.close(r));
    const admin = kafka.admin();
    await admin.connect();
    await deleteTopics(admin, Object.values(topics));
    await admin.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  const from = (address: string, extra: Record<string, string> = {}) => ({ 'x-forwarded-for': address, ...extra });

  async function refresh(token: string, client: { clientId: string; secret?: string }, headers: Record<string, string>) {
    return api.form('/oauth/token', { grant_type: 'refresh_token', refresh_token: token }, client, headers);
  }

  async function anomaliesOf(familyId: string): Promise<any[]> {
    const res = await api.admin('GET', `/v1/anomalies?familyId=${familyId}`);
    return res.body.items;
  }

  async function waitForRules(familyId: string, expected: string[], ignore: string[] = []): Promise<any[]> {
    let items: any[] = [];
    await eventually(async () => {
      items = (await anomaliesOf(familyId)).filter((a) => !ignore.includes(a.rule));
      return items.length >= expected.length;
    }, `anomalies ${expected.join(', ')} on ${familyId}`);
    expect(items.map((a) => a.rule).sort()).toEqual([...expected].sort());
    return items;
  }

  it('Berlin then New York seconds later: impossible_travel and geo_mismatch; the family is revoked', async () => {
    const client = await api.registerClient({ clientId: `travel-${run}` });
    const issued = await api.issue({ subject: 'traveller', clientId: client.clientId, scope: 'api:read', context: { ip: ip.berlin } });
    const res = await refresh(issued.refresh_token, client, from(ip.newYork));
    expect(res.status).toBe(200);
    const items = await waitForRules(issued.family_id, ['geo_mismatch', 'impossible_travel']);
    const travel = items.find((a) => a.rule === 'impossible_travel');
    expect(travel).toMatchObject({ severity: 'high', action: 'revoke_family', familyId: issued.family_id, subject: 'traveller' });
    expect(travel.evidence.distanceKm).toBeGreaterThan(6000);
    expect(travel.evidence.from).toMatchObject({ ip: ip.berlin, country: 'DE' });
    expect(travel.evidence.to).toMatchObject({ ip: ip.newYork, country: 'US' });
    expect(items.find((a) => a.rule === 'geo_mismatch').evidence).toMatchObject({ fromCountry: 'DE', toCountry: 'US' });
    // revoke_family went through the command side: the successor no longer refreshes.
    await eventually(async () => (await api.admin('GET', `/v1/families/${issued.family_id}`)).body.status === 'revoked', 'family revoked');
    expect((await api.admin('GET', `/v1/families/${issued.family_id}`)).body.revokedReason).toBe('anomaly');
    expect((await refresh(res.body.refresh_token, client, from(ip.newYork))).body.error).toBe('invalid_grant');
  });

  it('near misses fire nothing: same metro area, private and reserved addresses, a country-level position', async () => {
    const client = await api.registerClient({ clientId: `quiet-${run}` });
    // At most 3 refreshes per family, so the (test-tightened) burst limit stays out of it.
    const journeys = [
      [ip.berlinNearby, '10.1.2.3', '192.168.0.10'],
      ['127.0.0.1', '203.0.113.50', ip.countryOnly],
      [ip.countryOnly, ip.ipv6Berlin, ip.berlin],
    ];
    const families: string[] = [];
    for (const journey of journeys) {
      const issued = await api.issue({ subject: 'homebody', clientId: client.clientId, scope: 'api:read', context: { ip: ip.berlin } });
      families.push(issued.family_id);
      let token = issued.refresh_token;
      for (const address of journey) {
        const res = await refresh(token, client, from(address));
        expect(res.status).toBe(200);
        token = res.body.refresh_token;
      }
    }
    // A marker anomaly of the same subject (one partition, in order) proves the engine got past the above.
    const issuedAgain = await api.issue({ subject: 'homebody', clientId: client.clientId, scope: 'api:read' });
    const stale = issuedAgain.refresh_token;
    const next = await refresh(stale, client, {});
    expect(next.status).toBe(200);
    expect((await refresh(stale, client, {})).body.error).toBe('invalid_grant'); // reuse
    await waitForRules(issuedAgain.family_id, ['reuse_detected']);
    for (const familyId of families) expect(await anomaliesOf(familyId)).toEqual([]);
  });

  it('device_change when the X-Device-Id changes within a family', async () => {
    const client = await api.registerClient({ clientId: `device-${run}` });
    const issued = await api.issue({ subject: 'gadgets', clientId: client.clientId, scope: 'api:read', context: { deviceId: 'phone-1' } });
    const same = await refresh(issued.refresh_token, client, { 'x-device-id': 'phone-1' });
    const other = await refresh(same.body.refresh_token, client, { 'x-device-id': 'laptop-7' });
    expect(other.status).toBe(200);
    const [change] = await waitForRules(issued.family_id, ['device_change']);
    expect(change.evidence).toEqual({ deviceId: { from: 'phone-1', to: 'laptop-7' } });
  });

  it('20 concurrent refreshes (grace window) are a burst: revoke_family ends the family, no 5xx', async () => {
    const client = await api.registerClient({ clientId: `tabs-${run}`, reuseGraceSeconds: 30 });
    const issued = await api.issue({ subject: 'tabby', clientId: client.clientId, scope: 'api:read' });
    const results = await Promise.all(Array.from({ length: 20 }, () => refresh(issued.refresh_token, client, {})));
    expect(results.filter((r) => r.status >= 500)).toEqual([]);
    expect(new Set(results.filter((r) => r.status === 200).map((r) => r.body.refresh_token)).size).toBe(1);
    // The engine may revoke the family while some of the 20 are still in flight: those fail, and
    // with the run's other failures from 127.0.0.1 they can trip the per-IP failed_refresh_storm
    // (tested on its own below).
    const [burst] = await waitForRules(issued.family_id, ['refresh_burst'], ['failed_refresh_storm']);
    expect(burst.evidence).toMatchObject({ count: 4, max: 3, windowSeconds: 60 });
    await eventually(async () => (await refresh(results[0].body.refresh_token, client, {})).body.error === 'invalid_grant', 'burst family revoked');
  });

  it('failed_refresh_storm per subject and per IP (forged secrets, which never revoke)', async () => {
    const client = await api.registerClient({ clientId: `storm-${run}` });
    const issued = await api.issue({ subject: 'stormy', clientId: client.clientId, scope: 'api:read' });
    const { familyId } = parseRefreshToken(issued.refresh_token)!;
    for (let i = 0; i < 4; i++) {
      const forged = formatRefreshToken({ familyId, generation: 1, secret: Buffer.alloc(32, i + 1) });
      expect((await refresh(forged, client, from('198.51.100.77'))).body.error).toBe('invalid_grant');
    }
    const items = await waitForRules(issued.family_id, ['failed_refresh_storm']);
    expect(items[0].evidence).toMatchObject({ count: 4, max: 3 });
    expect((await refresh(issued.refresh_token, client, {})).status).toBe(200); // alert only
    // The per-IP window (max 4) fires on the fifth failure from the same address, another subject.
    const other = await api.issue({ subject: 'drizzle', clientId: client.clientId, scope: 'api:read' });
    const forged = formatRefreshToken({ familyId: parseRefreshToken(other.refresh_token)!.familyId, generation: 1, secret: Buffer.alloc(32, 9) });
    await refresh(forged, client, from('198.51.100.77'));
    await eventually(async () => (await api.admin('GET', `/v1/anomalies?rule=failed_refresh_storm&familyId=${other.family_id}`)).body.items.length === 1, 'per-IP storm');
  });

  it('every anomaly reached the anomalies topic and the webhook exactly once, and the metric counts them', async () => {
    const all = (await api.admin('GET', '/v1/anomalies?limit=100')).body.items as any[];
    // Every rule fired in the tests above (some more than once: refreshing a revoked family also fails).
    expect(new Set(all.map((a) => a.rule))).toEqual(new Set(RULE_NAMES));
    expect(new Set(all.map((a) => a.anomalyId)).size).toBe(all.length);
    await eventually(() => new Set(topic.messages.map((m) => m.value.data.anomalyId)).size === all.length, 'anomalies topic');
    await eventually(() => hooked.length === all.length, 'webhook');
    expect(new Set(hooked.map((h) => h.anomalyId))).toEqual(new Set(all.map((a) => a.anomalyId)));
    expect(hooked[0]).toEqual(
      expect.objectContaining({ anomalyId: expect.any(String), rule: expect.any(String), severity: expect.any(String), detectedAt: expect.any(String), evidence: expect.any(Object), action: expect.any(String) }),
    );
    const metrics = await (await fetch(`${ledger.baseUrl}/metrics`)).text();
    const counted = [...metrics.matchAll(/^token_ledger_anomalies_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(counted).toBe(all.length);
    // The relay's and the engine's progress cross from their threads (on PostgreSQL) to this registry.
    const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    await eventually(async () => {
      const text = await (await fetch(`${ledger.baseUrl}/metrics`)).text();
      return gauge(text, 'token_ledger_relay_published_total') > 0 && gauge(text, 'token_ledger_relay_behind_seconds') === 0 && gauge(text, 'token_ledger_relay_up') === 1 && gauge(text, 'token_ledger_anomaly_behind_seconds') === 0;
    }, 'relay and anomaly engine metrics');
    expect(ledger.runtime.metrics.anomalyPosition).toBeGreaterThan(0);
  });

  it('a restart keeps the sliding window: 2 refreshes before, 2 after → burst', async () => {
    const client = await api.registerClient({ clientId: `restart-${run}` });
    const issued = await api.issue({ subject: 'sleepy', clientId: client.clientId, scope: 'api:read' });
    let token = issued.refresh_token;
    for (let i = 0; i < 2; i++) token = (await refresh(token, client, {})).body.refresh_token;
    // Let the engine take both in before stopping (its state is then in an_state).
    await eventually(async () => {
      const rows = await ledger.runtime.readModels.sql.query<{ state: any }>(`select state from an_state where key = $1`, [`f:${issued.family_id}`]);
      return rows.length === 1 && (typeof rows[0].state === 'string' ? JSON.parse(rows[0].state) : rows[0].state).refreshes.length === 2;
    }, 'engine state saved');
    const schema = ledger.schema;
    await ledger.stop();
    ledger = await start(schema);
    api = new LedgerClient(ledger.baseUrl);
    for (let i = 0; i < 2; i++) token = (await refresh(token, client, {})).body.refresh_token;
    await waitForRules(issued.family_id, ['refresh_burst']);
  });
});
