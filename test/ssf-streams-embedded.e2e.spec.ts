import { call, createKey } from './support/api-keys-suite';
import { startLedger, type Ledger } from './support/ledger-harness';
import { pushStream, SSF_TEST_ENV, ssfStreamsSuite } from './support/ssf-streams-suite';

jest.setTimeout(180_000);

describe('SSF stream management over HTTP on the embedded (PGlite) store', () => {
  ssfStreamsSuite(() => ({ kind: 'embedded' }));
});

describe('SSF routes under the per-key rate limit and the default https-only push policy', () => {
  let ledger: Ledger;
  beforeAll(async () => {
    ledger = await startLedger({ env: { LEDGER_RATE_LIMIT_V1: '4/1m' } });
  });
  afterAll(async () => {
    await ledger?.destroy();
  });

  it('the /v1 per-key limit applies to /ssf (429 with Retry-After); plain-http push is refused without the flag', async () => {
    const { key } = await createKey(ledger.baseUrl, { name: 'ssf', scopes: ['ssf:manage', 'ssf:read'] });
    const insecure = await call(ledger.baseUrl, key, 'POST', '/ssf/streams', pushStream());
    expect(insecure.status).toBe(400);
    expect(insecure.body.detail).toMatch(/https/);
    const secure = await call(ledger.baseUrl, key, 'POST', '/ssf/streams', pushStream({ delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: 'https://rp.example/ssf' } }));
    expect(secure.status).toBe(201);
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await call(ledger.baseUrl, key, 'GET', '/ssf/streams'));
    const limited = answers.find((a) => a.status === 429);
    expect(limited).toBeDefined();
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(SSF_TEST_ENV.LEDGER_SSF_ALLOW_INSECURE_PUSH).toBe('true');
  });
});
