import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { formatRefreshToken, parseRefreshToken, REJECTION_RECORD_INTERVAL_MS, type RejectionSource } from '@token-ledger/domain';
import { RejectionRecorder } from '../../apps/token-ledger/src/ledger/rejection-recorder';
import { eventually } from '../messaging/support';
import { LedgerClient, startLedger, type Ledger, type StoreKind } from './ledger-harness';

const FORGERIES = 2000;
/** Forged requests in flight at once (each worker sends its share back to back). */
const IN_FLIGHT = 200;
const ADDRESSES = Array.from({ length: 20 }, (_, i) => `198.51.100.${i + 1}`);

/**
 * Issue #14 item 5: a flood of forged tokens aimed at one family (its id is public: the `sid`
 * claim) while its owner keeps rotating. The owner is never refused, the family's stream grows by a
 * handful of events (refusals are recorded per interval, with their count and addresses), and a
 * failed_refresh_storm configured to revoke_subject fires but revokes nobody (SPEC §2 rule 4).
 */
export function forgeryFloodSuite(storeKind: () => StoreKind): void {
  let ledger: Ledger;
  let api: LedgerClient;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tl-flood-'));
    const rules = { rules: { failed_refresh_storm: { action: 'revoke_subject', perSubject: { max: 3, windowSeconds: 60 }, perIp: { max: 4, windowSeconds: 60 } } } };
    writeFileSync(path.join(dir, 'rules.json'), JSON.stringify(rules));
    ledger = await startLedger({ store: storeKind(), env: { LEDGER_TRUST_PROXY: 'true', LEDGER_ANOMALY_RULES: path.join(dir, 'rules.json') } });
    api = new LedgerClient(ledger.baseUrl);
  });
  afterAll(async () => {
    await ledger?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`${FORGERIES} concurrent forged refreshes at one family while its owner rotates: owner unharmed, stream bounded, forgeries counted, nobody revoked`, async () => {
    const client = await api.registerClient({ clientId: 'flood-target' });
    const issued = await api.issue({ subject: 'victim', clientId: client.clientId, scope: 'api:read' });
    const { familyId } = parseRefreshToken(issued.refresh_token)!;
    const stream = `family-${familyId}`;
    const started = Date.now();

    // The ledger trusts X-Forwarded-For here: every forged request claims one of ADDRESSES.
    const refreshFrom = (refreshToken: string, ip: string) =>
      api.form('/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, client, { 'x-forwarded-for': ip });
    let sent = 0;
    const statuses = new Map<string, number>();
    const forger = async () => {
      while (sent < FORGERIES) {
        const i = sent++;
        const forged = formatRefreshToken({ familyId, generation: 1 + (i % 3), secret: Buffer.alloc(32, (i % 250) + 1) });
        const res = await refreshFrom(forged, ADDRESSES[i % ADDRESSES.length]);
        const key = `${res.status} ${res.body?.error ?? ''}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
      }
    };
    let token = issued.refresh_token as string;
    let rotations = 0;
    const ownerFailures: unknown[] = [];
    const owner = async () => {
      while (sent < FORGERIES) {
        const res = await refreshFrom(token, '203.0.113.50');
        if (res.status !== 200) ownerFailures.push(res.body);
        else {
          token = res.body.refresh_token;
          rotations++;
        }
      }
    };
    await Promise.all([...Array.from({ length: IN_FLIGHT }, forger), owner()]);

    expect(ownerFailures).toEqual([]);
    expect(rotations).toBeGreaterThan(0);
    expect(Object.fromEntries(statuses)).toEqual({ '400 invalid_grant': FORGERIES });

    await ledger.app.get(RejectionRecorder).flush();
    const events = await ledger.store.readStream(stream);
    const rejected = events.filter((e) => e.type === 'RefreshRejected');
    // One as it happened, then about one per interval (the timer's and the final flush).
    const intervals = Math.ceil((Date.now() - started) / REJECTION_RECORD_INTERVAL_MS);
    expect(rejected.length).toBeLessThanOrEqual(2 * intervals + 2);
    expect(events.length).toBe(1 + rotations + rejected.length);
    expect(events.filter((e) => e.type === 'TokenFamilyRevoked')).toEqual([]);
    // Every forgery is counted, per address.
    const data = rejected.map((e) => e.data as { reason: string; count?: number; sources?: RejectionSource[]; otherSources?: number; context?: { ip?: string } });
    expect(data.every((d) => d.reason === 'bad_secret')).toBe(true);
    expect(data.reduce((sum, d) => sum + (d.count ?? 1), 0)).toBe(FORGERIES);
    const perIp = new Map<string, number>();
    for (const d of data) {
      for (const s of d.sources ?? (d.context?.ip ? [{ ip: d.context.ip, count: 1 }] : [])) perIp.set(s.ip, (perIp.get(s.ip) ?? 0) + s.count);
    }
    expect([...perIp.keys()].sort()).toEqual([...ADDRESSES].sort());
    expect([...perIp.values()].reduce((a, b) => a + b, 0)).toBe(FORGERIES);

    // The storm is seen (per subject, and per address: one each) but revokes nobody: only forgeries failed.
    await eventually(
      async () => (await api.admin('GET', `/v1/anomalies?rule=failed_refresh_storm&familyId=${familyId}&limit=100`)).body.items.length >= 1 + ADDRESSES.length,
      'failed_refresh_storm detections',
    );
    const anomalies = (await api.admin('GET', `/v1/anomalies?rule=failed_refresh_storm&familyId=${familyId}&limit=100`)).body.items as any[];
    expect(anomalies.every((a) => a.action === 'alert' && a.evidence.actionWithheld === 'revoke_subject' && a.evidence.realFailures === 0)).toBe(true);
    const after = await api.refresh(token, client);
    expect(after.status).toBe(200);
    expect((await api.admin('GET', `/v1/families/${familyId}`)).body.status).toBe('active');
  });

  it('a storm of real failures (a revoked family refreshed again and again) does revoke the subject', async () => {
    const client = await api.registerClient({ clientId: 'storm-real' });
    const sessions = await Promise.all([1, 2].map(() => api.issue({ subject: 'careless', clientId: client.clientId, scope: 'api:read' })));
    expect((await api.form('/oauth/revoke', { token: sessions[0].refresh_token }, client)).status).toBe(200);
    // Refusals of a real (revoked) token: five concurrent tries, recorded one as it happened, the rest per interval.
    await Promise.all(Array.from({ length: 5 }, () => api.refresh(sessions[0].refresh_token, client)));
    await ledger.app.get(RejectionRecorder).flush();
    await eventually(async () => (await api.refresh(sessions[1].refresh_token, client)).body.error === 'invalid_grant', 'subject revoked by the storm');
  });
}
