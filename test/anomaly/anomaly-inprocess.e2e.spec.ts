import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { verifyChain } from '@token-ledger/forensics';
import { eventually } from '../messaging/support';
import { LedgerClient, startLedger, type Ledger } from '../support/ledger-harness';
import { expectReuseRevokedSubject } from './support';

jest.setTimeout(120_000);

/**
 * Without Kafka the engine follows the embedded store in-process. Here reuse_detected is configured
 * to revoke the whole subject: every family of the user ends, the anomaly is recorded once (also
 * after a restart that re-reads from the checkpoint), and the hash chain stays intact.
 */
describe('anomaly engine in-process on the embedded store', () => {
  let ledger: Ledger;
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'tl-anomaly-'));
    writeFileSync(path.join(dir, 'rules.json'), JSON.stringify({ rules: { reuse_detected: { action: 'revoke_subject', severity: 'critical' } } }));
  });

  afterAll(async () => {
    await ledger?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = (dataDir?: string) => startLedger({ dataDir, env: { LEDGER_ANOMALY_RULES: path.join(dir, 'rules.json') } });

  it('reuse revokes every family of the subject through RevokeSubject, once', async () => {
    ledger = await start();
    let api = new LedgerClient(ledger.baseUrl);
    const client = await api.registerClient({ clientId: 'app' });
    const phone = await api.issue({ subject: 'victim', clientId: 'app', scope: 'api:read' });
    const laptop = await api.issue({ subject: 'victim', clientId: 'app', scope: 'api:read' });
    const bystander = await api.issue({ subject: 'someone-else', clientId: 'app', scope: 'api:read' });
    expect((await api.refresh(phone.refresh_token, client)).status).toBe(200);
    expect((await api.refresh(phone.refresh_token, client)).body.error).toBe('invalid_grant'); // reuse

    await expectReuseRevokedSubject(api, client, { subject: 'victim', reusedFamilyId: phone.family_id, other: laptop });
    expect((await api.refresh(bystander.refresh_token, client)).status).toBe(200);

    // A login after the incident is fine. Rewind the engine to position 0 and restart: it re-reads
    // everything, records nothing twice and does not re-run the subject revocation against that login.
    const again = await api.issue({ subject: 'victim', clientId: 'app', scope: 'api:read' });
    const token = (await api.refresh(again.refresh_token, client)).body.refresh_token;
    await ledger.runtime.readModels.sql.query(`update msg_checkpoints set position = 0 where name = 'anomaly-engine'`);
    const dataDir = ledger.dataDir;
    await ledger.stop();
    ledger = await start(dataDir);
    api = new LedgerClient(ledger.baseUrl);
    const head = await ledger.store.headPosition();
    await eventually(async () => {
      const rows = await ledger.runtime.readModels.sql.query<{ position: string | number }>(`select position from msg_checkpoints where name = 'anomaly-engine'`);
      return Number(rows[0]?.position ?? 0) >= head;
    }, 'engine replayed to the head');
    const after = await api.refresh(token, client);
    expect(after.status).toBe(200);
    expect((await api.admin('GET', '/v1/anomalies?subject=victim')).body.items).toHaveLength(1);

    const report = await verifyChain(ledger.store, { all: true });
    expect(report).toMatchObject({ ok: true });
  });
});
