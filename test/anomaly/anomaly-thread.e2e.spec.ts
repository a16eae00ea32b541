import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describeWithBackend } from '../backends';
import { LedgerClient, startLedger, type Ledger } from '../support/ledger-harness';
import { expectReuseRevokedSubject } from './support';

jest.setTimeout(120_000);

/**
 * On PostgreSQL without Kafka the engine follows the store from a worker thread of its own; its
 * actions come back to the main thread's command side. Reuse configured to revoke the subject:
 * every family of the user ends, once, while 20 concurrent refreshes of another family go on.
 */
describeWithBackend('postgres', 'anomaly engine in its own thread on PostgreSQL (no Kafka)', (url) => {
  let ledger: Ledger;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tl-anomaly-thread-'));
    writeFileSync(path.join(dir, 'rules.json'), JSON.stringify({ rules: { reuse_detected: { action: 'revoke_subject', severity: 'critical' } } }));
    ledger = await startLedger({ store: { kind: 'postgres', url }, env: { LEDGER_ANOMALY_RULES: path.join(dir, 'rules.json') } });
  });

  afterAll(async () => {
    await ledger?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reuse revokes every family of the subject through the main thread, once; concurrent refreshes elsewhere never 5xx', async () => {
    const api = new LedgerClient(ledger.baseUrl);
    const client = await api.registerClient({ clientId: 'app' });
    const phone = await api.issue({ subject: 'victim', clientId: 'app', scope: 'api:read' });
    const laptop = await api.issue({ subject: 'victim', clientId: 'app', scope: 'api:read' });
    const bystander = await api.issue({ subject: 'someone-else', clientId: 'app', scope: 'api:read' });
    expect((await api.refresh(phone.refresh_token, client)).status).toBe(200);
    const [reuse, ...others] = await Promise.all([
      api.refresh(phone.refresh_token, client),
      ...Array.from({ length: 20 }, () => api.refresh(bystander.refresh_token, client)),
    ]);
    expect(reuse.body.error).toBe('invalid_grant');
    expect(others.filter((r) => r.status >= 500)).toEqual([]);
    expect(others.filter((r) => r.status === 200).length).toBe(1); // one rotation wins; the rest reuse it (no grace)

    await expectReuseRevokedSubject(api, client, { subject: 'victim', reusedFamilyId: phone.family_id, other: laptop });
    expect(ledger.logs.join('')).toMatch(/anomaly engine started \(in-process, in its own thread\)/);
  });
});
