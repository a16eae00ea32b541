import { describeWithBackend } from './backends';
import { LedgerClient, startLedger, type Ledger } from './support/ledger-harness';
import { TcpProxy } from './support/tcp-proxy';

/**
 * A store that cannot be reached is "try again later" — 503 with Retry-After, RFC-shaped on both
 * APIs — never a 500, and the service recovers by itself once the store is back.
 */
async function expectUnavailable(ledger: Ledger, api: LedgerClient, refreshToken: string, client: { clientId: string; secret: string }): Promise<void> {
  const refresh = await api.refresh(refreshToken, client);
  expect(refresh.status).toBe(503);
  expect(refresh.body).toEqual({ error: 'temporarily_unavailable', error_description: 'the ledger cannot reach its store; try again later' });
  expect(refresh.headers.get('retry-after')).toBe('5');
  expect(refresh.headers.get('content-type')).toContain('application/json');
  expect(refresh.headers.get('cache-control')).toBe('no-store');

  const issue = await api.admin('POST', '/v1/families', { subject: 'olga', clientId: client.clientId, scope: 'api:read' });
  expect(issue.status).toBe(503);
  expect(issue.body).toEqual({ type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'the ledger cannot reach its store; try again later' });
  expect(issue.headers.get('retry-after')).toBe('5');
  expect(issue.headers.get('content-type')).toContain('application/problem+json');
  // The driver's own message (host names, ports) stays in the log.
  expect(ledger.logs.join('')).toMatch(/event store is closed|ECONNREFUSED|Connection terminated|not queryable/);
}

describe('store outage on the embedded store', () => {
  let ledger: Ledger;
  afterAll(() => ledger?.destroy());

  it('a closed store answers 503 with Retry-After, not 500', async () => {
    ledger = await startLedger();
    const api = new LedgerClient(ledger.baseUrl);
    const client = await api.registerClient({ clientId: 'outage-embedded' });
    const issued = await api.issue({ subject: 'olga', clientId: client.clientId, scope: 'api:read' });
    await ledger.store.close();
    await expectUnavailable(ledger, api, issued.refresh_token, client);
    const ready = await fetch(`${ledger.baseUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not_ready', checks: { store: 'unavailable: event store is closed' } });
  });
});

describeWithBackend('postgres', 'store outage on PostgreSQL', (url) => {
  let ledger: Ledger | undefined;
  let proxy: TcpProxy;
  afterAll(async () => {
    await proxy?.open(); // dropping the schema goes through it too
    await ledger?.destroy();
    await proxy?.close();
  });

  it('answers 503 with Retry-After while the database cannot be reached, and recovers after', async () => {
    const target = new URL(url);
    proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    const via = new URL(url);
    via.hostname = '127.0.0.1';
    via.port = String(await proxy.open());
    ledger = await startLedger({ store: { kind: 'postgres', url: via.toString() } });
    const api = new LedgerClient(ledger.baseUrl);
    const client = await api.registerClient({ clientId: 'outage-postgres' });
    const issued = await api.issue({ subject: 'olga', clientId: client.clientId, scope: 'api:read' });

    // Every connection cut and new ones refused: a database that went down.
    await proxy.cut();
    await expectUnavailable(ledger, api, issued.refresh_token, client);

    await proxy.open();
    const deadline = Date.now() + 20_000;
    let refreshed = await api.refresh(issued.refresh_token, client);
    while (refreshed.status === 503 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      refreshed = await api.refresh(issued.refresh_token, client);
    }
    expect(refreshed.status).toBe(200);
  }, 60_000);
});
