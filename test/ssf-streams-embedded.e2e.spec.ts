import { call, createKey } from './support/api-keys-suite';
import { eventually } from './support/eventually';
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

describe('SSF verification once min_verification_interval has passed', () => {
  let ledger: Ledger;
  beforeAll(async () => {
    ledger = await startLedger({ env: { ...SSF_TEST_ENV, LEDGER_SSF_MIN_VERIFICATION_INTERVAL_SECONDS: '1' } });
  });
  afterAll(async () => {
    await ledger?.destroy();
  });

  it('429 within the interval, accepted again after it; the configured interval is what the stream shows', async () => {
    const { key } = await createKey(ledger.baseUrl, { name: 'ssf', scopes: ['ssf:manage'] });
    const created = await call(ledger.baseUrl, key, 'POST', '/ssf/streams', pushStream());
    expect(created.body.min_verification_interval).toBe(1);
    const stream_id = created.body.stream_id;
    expect((await call(ledger.baseUrl, key, 'POST', '/ssf/verify', { stream_id, state: 'one' })).status).toBe(204);
    const statuses: number[] = [];
    await eventually(async () => {
      const res = await call(ledger.baseUrl, key, 'POST', '/ssf/verify', { stream_id, state: 'two' });
      statuses.push(res.status);
      return res.status === 204;
    }, 'a second verification accepted after the interval');
    expect(new Set(statuses)).toEqual(new Set(statuses.length > 1 ? [429, 204] : [204]));
    const states = (await ledger.store.readStream(`ssf-stream-${stream_id}`)).filter((e) => e.type === 'SsfVerificationRequested').map((e) => (e.data as { state: string }).state);
    expect(states).toEqual(['one', 'two']);
  });
});
