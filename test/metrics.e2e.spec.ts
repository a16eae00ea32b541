import { describeWithBackend } from './backends';
import { LedgerClient, startLedger, type Ledger } from './support/ledger-harness';

/**
 * The M1–M10 metrics (docs/metrics.md) over real HTTP on PostgreSQL (where concurrent requests
 * really race on a stream; the embedded store runs them one after the other): each behaviour is
 * driven (issue, rotation, replay, reuse, forged token, 429, revocations, audit reads, concurrent
 * rotations) and the scraped /metrics text is read before and after.
 */
jest.setTimeout(120_000);

const MAX_CLIENTS = 3;

/** Parsed `/metrics`: series (name + sorted labels) → value. */
type Scrape = Map<string, number>;

async function scrape(ledger: Ledger): Promise<{ series: Scrape; text: string }> {
  const text = await (await fetch(`${ledger.baseUrl}/metrics`)).text();
  const series: Scrape = new Map();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (m) series.set(`${m[1]}{${m[2] ?? ''}}`, Number(m[3]));
  }
  return { series, text };
}

const key = (name: string, labels: Record<string, string> = {}) =>
  `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;

describeWithBackend('postgres', 'metrics (M1–M10) on /metrics', (url) => {
  let ledger: Ledger;
  let api: LedgerClient;
  let before: Scrape;
  const value = (s: Scrape, name: string, labels?: Record<string, string>) => s.get(key(name, labels)) ?? 0;
  const delta = async (name: string, labels?: Record<string, string>) => value((await scrape(ledger)).series, name, labels) - value(before, name, labels);

  beforeAll(async () => {
    ledger = await startLedger({
      store: { kind: 'postgres', url },
      env: {
        LEDGER_METRICS_MAX_CLIENTS: String(MAX_CLIENTS),
        LEDGER_TRUST_PROXY: '127.0.0.1',
        LEDGER_RATE_LIMIT_AUTH_FAILURES: '2/10m',
        LEDGER_ANOMALY_ENGINE: 'off',
      },
    });
    api = new LedgerClient(ledger.baseUrl);
  });
  afterAll(async () => {
    await ledger?.destroy();
  });
  beforeEach(async () => {
    before = (await scrape(ledger)).series;
  });

  it('issue, rotation, grace replay and reuse: outcomes, results, tokens issued, reuse and revocation', async () => {
    const app = await api.registerClient({ clientId: 'm-app', reuseGraceSeconds: 30 });
    const fam = await api.issue({ subject: 'm-alice', clientId: 'm-app', scope: 'api:read' });
    const t1 = await api.refresh(fam.refresh_token, app);
    expect(t1.status).toBe(200);
    const t2 = await api.refresh(t1.body.refresh_token, app);
    expect(t2.status).toBe(200);
    const replay = await api.refresh(t1.body.refresh_token, app); // the previous token, within the grace
    expect(replay.status).toBe(200);
    expect(replay.body.refresh_token).toBe(t2.body.refresh_token);
    const reuse = await api.refresh(fam.refresh_token, app); // two generations old: reuse, family revoked
    expect(reuse.status).toBe(400);
    expect(reuse.body.error).toBe('invalid_grant');

    expect(await delta('token_ledger_refresh_total', { outcome: 'rotated', result: 'success' })).toBe(2);
    expect(await delta('token_ledger_refresh_total', { outcome: 'replayed', result: 'success' })).toBe(1);
    expect(await delta('token_ledger_refresh_total', { outcome: 'invalid_grant', result: 'rejected' })).toBe(1);
    expect(await delta('token_ledger_tokens_issued_total', { kind: 'family' })).toBe(1);
    expect(await delta('token_ledger_tokens_issued_total', { kind: 'rotation' })).toBe(2);
    expect(await delta('token_ledger_tokens_issued_total', { kind: 'access' })).toBe(4); // issue, two rotations, the replay
    expect(await delta('token_ledger_reuse_detections_total')).toBe(1);
    expect(await delta('token_ledger_revocations_total', { scope: 'family', reason: 'reuse_detected' })).toBe(1);
    expect(await delta('token_ledger_client_refreshes_total', { client: 'm-app' })).toBe(4);
    // Latency per operation is the request histogram by route pattern; 0.3 s (the SLO bound) is a bucket.
    expect(await delta('token_ledger_http_request_duration_seconds_count', { route: '/oauth/token' })).toBe(4);
    expect(await delta('token_ledger_http_request_duration_seconds_count', { route: '/v1/families' })).toBe(1);
    expect((await scrape(ledger)).text).toMatch(/^token_ledger_http_request_duration_seconds_bucket\{le="0\.3",route="\/oauth\/token"\} \d+$/m);
  });

  it('errors before the command side are counted too: forged token, bad client, 429 (slow_down)', async () => {
    const app = await api.registerClient({ clientId: 'm-bad' });
    const forged = await api.refresh('tlr_garbage', app);
    expect(forged.status).toBe(400);
    const noClient = await api.refresh('tlr_garbage', { clientId: 'm-bad', secret: 'wrong' });
    expect(noClient.status).toBe(401);
    // Failed client authentications from one address until the limiter answers 429.
    let limited = 0;
    for (let i = 0; i < 6 && limited === 0; i++) {
      const res = await api.form('/oauth/token', { grant_type: 'refresh_token', refresh_token: 'tlr_x' }, { clientId: 'm-bad', secret: 'wrong' }, { 'x-forwarded-for': '203.0.113.9' });
      if (res.status === 429) limited++;
    }
    expect(limited).toBe(1);
    expect(await delta('token_ledger_refresh_total', { outcome: 'invalid_grant', result: 'rejected' })).toBe(1);
    expect(await delta('token_ledger_refresh_total', { outcome: 'slow_down', result: 'rejected' })).toBe(1);
    expect(await delta('token_ledger_refresh_total', { outcome: 'invalid_client', result: 'rejected' })).toBeGreaterThanOrEqual(2);
    expect(await delta('token_ledger_rate_limited_total', { limiter: 'auth_failures' })).toBe(1);
    // Only authenticated clients are counted per client.
    expect(await delta('token_ledger_client_refreshes_total', { client: 'm-bad' })).toBe(1);
  });

  it('revocations by scope and bounded reason; audit reads by view; route labels are patterns, also for 404s', async () => {
    await api.registerClient({ clientId: 'm-rev' });
    const issuedA = await api.admin('POST', '/v1/families', { subject: 'm-bob', clientId: 'm-rev', scope: 'api:read' });
    expect(issuedA.status).toBe(201);
    const a = issuedA.body;
    // The read models are eventually consistent: the family read waits for the issue's own position.
    const aPosition = issuedA.headers.get('x-event-position');
    const b = await api.issue({ subject: 'm-carol', clientId: 'm-rev', scope: 'api:read' });
    expect((await api.admin('POST', `/v1/families/${a.family_id}/revoke`, { reason: 'admin' })).status).toBe(200);
    expect((await api.admin('POST', `/v1/families/${b.family_id}/revoke`, { reason: 'some_new_word' })).status).toBe(200);
    expect((await api.admin('POST', '/v1/subjects/m-dave/revoke', { reason: 'password_change' })).status).toBe(200);
    expect(await delta('token_ledger_revocations_total', { scope: 'family', reason: 'admin' })).toBe(1);
    expect(await delta('token_ledger_revocations_total', { scope: 'family', reason: 'other' })).toBe(1);
    expect(await delta('token_ledger_revocations_total', { scope: 'subject', reason: 'password_change' })).toBe(1);

    expect((await api.admin('GET', '/v1/audit?limit=5')).status).toBe(200);
    expect((await api.admin('GET', `/v1/families/${a.family_id}?minPosition=${aPosition}`)).status).toBe(200);
    expect((await api.admin('GET', `/v1/families/${a.family_id}/timeline`)).status).toBe(200);
    expect((await api.admin('GET', '/v1/subjects/m-bob/families')).status).toBe(200);
    expect((await api.admin('GET', '/v1/anomalies')).status).toBe(200);
    for (const view of ['audit', 'family', 'timeline', 'subject', 'anomalies']) expect(await delta('token_ledger_audit_reads_total', { view })).toBe(1);

    const missing = await fetch(`${ledger.baseUrl}/no/such/path-${Date.now()}?x=1`);
    expect(missing.status).toBe(404);
    const text = (await scrape(ledger)).text;
    const routes = new Set([...text.matchAll(/^token_ledger_http_requests_total\{route="([^"]*)"/gm)].map((m) => m[1]));
    expect([...routes].filter((r) => r.includes('no/such') || r.includes(a.family_id))).toEqual([]);
    expect(routes.has('/v1/families/:id')).toBe(true);
    // The 404 is counted, under a fixed label rather than its path.
    const notFound = /^token_ledger_http_requests_total\{route="([^"]*)",method="GET",status="404"\} (\d+)$/m.exec(text);
    expect(notFound?.[1]).toBe('unmatched');
  });

  it('concurrent refreshes of one token: rotation conflicts are retried and counted by command', async () => {
    // A public client: no secret to hash, so the requests reach the family stream together.
    await api.registerClient({ clientId: 'm-race', type: 'public', reuseGraceSeconds: 60 });
    const app = { clientId: 'm-race' };
    for (let round = 0; round < 5 && (await delta('token_ledger_concurrency_retries_total', { command: 'rotate_token' })) === 0; round++) {
      const fam = await api.issue({ subject: `m-race-${round}`, clientId: 'm-race', scope: 'api:read' });
      const issuedBefore = await delta('token_ledger_tokens_issued_total', { kind: 'access' });
      const answers = await Promise.all(Array.from({ length: 16 }, () => api.refresh(fam.refresh_token, app)));
      // One rotation; the rest lost the race, re-decided on the new state and got the grace replay.
      expect(answers.every((a) => a.status === 200)).toBe(true);
      // An access token is signed while its append is in flight; one signed for a lost attempt is
      // dropped, not counted: exactly one per answer.
      expect((await delta('token_ledger_tokens_issued_total', { kind: 'access' })) - issuedBefore).toBe(16);
    }
    expect(await delta('token_ledger_concurrency_retries_total', { command: 'rotate_token' })).toBeGreaterThan(0);
    expect(await delta('token_ledger_refresh_total', { outcome: 'replayed', result: 'success' })).toBeGreaterThan(0);
  });

  it('the client label stays bounded: N + 5 clients give at most N + 1 label values', async () => {
    const clients = Array.from({ length: MAX_CLIENTS + 5 }, (_, i) => `m-many-${i}`);
    for (const clientId of clients) {
      await api.registerClient({ clientId, type: 'public' });
      const fam = await api.issue({ subject: `s-${clientId}`, clientId, scope: 'api:read' });
      expect((await api.refresh(fam.refresh_token, { clientId })).status).toBe(200);
    }
    const text = (await scrape(ledger)).text;
    const labels = [...text.matchAll(/^token_ledger_client_refreshes_total\{client="([^"]*)"\}/gm)].map((m) => m[1]);
    expect(labels.length).toBeLessThanOrEqual(MAX_CLIENTS + 1);
    expect(labels).toContain('_other');
  });
});
