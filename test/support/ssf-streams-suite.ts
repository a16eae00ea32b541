import { canonicalJson, CAEP_CREDENTIAL_CHANGE, CAEP_SESSION_REVOKED, SSF_AUTHORIZATION_PURPOSE, SSF_EVENTS_SUPPORTED, SSF_POLL, SSF_PUSH } from '@token-ledger/domain';
import { ssfStreamId } from '@token-ledger/envelope';
import { verifyChain } from '@token-ledger/forensics';
import { call, createKey } from './api-keys-suite';
import { eventually } from './eventually';
import { ADMIN_TOKEN, startLedger, type Ledger, type StoreKind } from './ledger-harness';

/** The ledger's own tests may push to plain http on loopback (docs/ssf.md: SSRF). */
export const SSF_TEST_ENV = { LEDGER_SSF_ALLOW_INSECURE_PUSH: 'true' };

const OTHER_EVENT = 'https://schemas.example/secevent/other';
const PUSH_SECRET = 'Bearer receiver-secret-7f3a9c1e5b2d4f60';

export function pushStream(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    aud: 'https://rp.example',
    events_requested: [CAEP_SESSION_REVOKED, OTHER_EVENT],
    delivery: { method: SSF_PUSH, endpoint_url: 'http://127.0.0.1:9/ssf/events', authorization_header: PUSH_SECRET },
    description: 'test receiver',
    ...extra,
  };
}

/**
 * The SSF 1.0 control plane over real HTTP on a real store: transmitter metadata, stream
 * management, status, subjects, verification, scopes, the push receiver's secret kept sealed, and
 * concurrent changes serialised on the stream's event stream.
 */
export function ssfStreamsSuite(storeKind: () => StoreKind): void {
  let ledger: Ledger;
  let base: string;
  let manager: string;
  let reader: string;
  let unrelated: string;

  /** bearer null: no Authorization header at all. */
  const ssf = (method: string, route: string, body?: unknown, bearer: string | null = manager) => call(base, bearer ?? undefined, method, route, body);
  const create = async (body: Record<string, unknown> = pushStream()) => {
    const res = await ssf('POST', '/ssf/streams', body);
    if (res.status !== 201) throw new Error(`create stream: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as Record<string, any>;
  };
  const storedEvents = async (streamId: string) => ledger.store.readStream(ssfStreamId(streamId));

  beforeAll(async () => {
    ledger = await startLedger({ store: storeKind(), env: SSF_TEST_ENV });
    base = ledger.baseUrl;
    manager = (await createKey(base, { name: 'ssf manager', scopes: ['ssf:manage', 'ssf:read'] })).key;
    reader = (await createKey(base, { name: 'ssf reader', scopes: ['ssf:read'] })).key;
    unrelated = (await createKey(base, { name: 'auditor', scopes: ['audit:read'] })).key;
  });
  afterAll(async () => {
    await ledger?.destroy();
  });

  it('publishes the SSF 1.0 transmitter metadata at /.well-known/ssf-configuration, without authentication', async () => {
    const res = await fetch(`${base}/.well-known/ssf-configuration`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      spec_version: '1_0',
      issuer: base,
      jwks_uri: `${base}/.well-known/jwks.json`,
      delivery_methods_supported: ['urn:ietf:rfc:8935', 'urn:ietf:rfc:8936'],
      configuration_endpoint: `${base}/ssf/streams`,
      status_endpoint: `${base}/ssf/status`,
      add_subject_endpoint: `${base}/ssf/subjects:add`,
      remove_subject_endpoint: `${base}/ssf/subjects:remove`,
      verification_endpoint: `${base}/ssf/verify`,
      authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6750' }],
      default_subjects: 'NONE',
    });
    expect((await fetch(`${base}/.well-known/jwks.json`)).status).toBe(200);
  });

  it('creates a push stream (201, the full configuration, never the authorization_header) and reads it back', async () => {
    const created = await create();
    expect(created).toEqual({
      stream_id: expect.stringMatching(/^ssf_[0-9a-hjkmnp-tv-z]{26}$/),
      iss: base,
      aud: 'https://rp.example',
      events_supported: [...SSF_EVENTS_SUPPORTED],
      events_requested: [CAEP_SESSION_REVOKED, OTHER_EVENT],
      events_delivered: [CAEP_SESSION_REVOKED],
      delivery: { method: SSF_PUSH, endpoint_url: 'http://127.0.0.1:9/ssf/events' },
      min_verification_interval: 15,
      description: 'test receiver',
    });
    const one = await ssf('GET', `/ssf/streams?stream_id=${created.stream_id}`, undefined, reader);
    expect(one.status).toBe(200);
    expect(one.body).toEqual(created);
    expect((await ssf('GET', `/ssf/status?stream_id=${created.stream_id}`, undefined, reader)).body).toEqual({ stream_id: created.stream_id, status: 'enabled' });
    await eventually(async () => {
      const all = await ssf('GET', '/ssf/streams', undefined, reader);
      return all.status === 200 && Array.isArray(all.body) && all.body.some((s: any) => s.stream_id === created.stream_id && s.description === 'test receiver');
    }, 'the new stream in the list');
  });

  it('a poll stream gets the transmitter poll endpoint `${issuer}/ssf/poll/${stream_id}`', async () => {
    const created = await create({ aud: ['rp-a', 'rp-b'], events_requested: [CAEP_CREDENTIAL_CHANGE], delivery: { method: SSF_POLL } });
    expect(created.delivery).toEqual({ method: SSF_POLL, endpoint_url: `${base}/ssf/poll/${created.stream_id}` });
    expect(created.aud).toEqual(['rp-a', 'rp-b']);
    expect(created.description).toBeUndefined();
  });

  it('the authorization_header is sealed in the store (data plane opens it), absent from answers, the audit API and the stored plaintext', async () => {
    const created = await create();
    const events = await storedEvents(created.stream_id);
    expect(events.map((e) => e.type)).toEqual(['SsfStreamCreated']);
    const raw = JSON.stringify(events);
    expect(raw).not.toContain(PUSH_SECRET);
    expect(raw).not.toContain('receiver-secret');
    // Nor in the stream's snapshot (the decision state stored with each append), nor in a log line.
    expect(JSON.stringify(await ledger.store.loadStream(ssfStreamId(created.stream_id)))).not.toContain('receiver-secret');
    expect(ledger.logs.join('\n')).not.toContain('receiver-secret');
    const sealed = (events[0].data as any).delivery.authorizationHeaderSealed as string;
    expect(typeof sealed).toBe('string');
    expect(ledger.runtime.secrets.openField(sealed, SSF_AUTHORIZATION_PURPOSE)).toBe(PUSH_SECRET);
    expect(() => ledger.runtime.secrets.openField(sealed, 'another-purpose')).toThrow();

    // A patch that leaves the header out keeps it; the answers never show it.
    const patched = await ssf('PATCH', '/ssf/streams', { stream_id: created.stream_id, description: 'renamed' });
    expect(patched.status).toBe(200);
    expect(JSON.stringify(patched.body)).not.toMatch(/authorization|receiver-secret/i);
    const after = await storedEvents(created.stream_id);
    expect(ledger.runtime.secrets.openField((after[1].data as any).delivery.authorizationHeaderSealed, SSF_AUTHORIZATION_PURPOSE)).toBe(PUSH_SECRET);
    expect(JSON.stringify(after)).not.toContain('receiver-secret');

    let audit: any[] = [];
    await eventually(async () => {
      const res = await call(base, ADMIN_TOKEN, 'GET', `/v1/audit?type=SsfStreamUpdated&limit=200`);
      audit = res.body?.items ?? [];
      return audit.some((e) => e.data.streamId === created.stream_id);
    }, 'the update in the audit view');
    const createdAudit = await call(base, ADMIN_TOKEN, 'GET', `/v1/audit?type=SsfStreamCreated&limit=200`);
    const text = JSON.stringify([audit, createdAudit.body]);
    expect(text).toContain(created.stream_id);
    expect(text).not.toContain('receiver-secret');
    expect(text).not.toContain('authorizationHeaderSealed');
    for (const s of [JSON.stringify((await ssf('GET', '/ssf/streams', undefined, reader)).body), JSON.stringify((await ssf('GET', `/ssf/streams?stream_id=${created.stream_id}`)).body)]) {
      expect(s).not.toMatch(/authorization_header|authorizationHeader|receiver-secret/);
    }
  });

  it('PATCH changes what it names; PUT replaces; both answer the whole configuration', async () => {
    const created = await create();
    const patched = await ssf('PATCH', '/ssf/streams', { stream_id: created.stream_id, events_requested: [CAEP_CREDENTIAL_CHANGE, CAEP_SESSION_REVOKED] });
    expect(patched.status).toBe(200);
    expect(patched.body).toEqual({ ...created, events_requested: [CAEP_CREDENTIAL_CHANGE, CAEP_SESSION_REVOKED], events_delivered: [CAEP_CREDENTIAL_CHANGE, CAEP_SESSION_REVOKED] });
    // Sending the configuration back as read (transmitter-supplied members included) changes nothing.
    const same = await ssf('PATCH', '/ssf/streams', patched.body);
    expect(same.status).toBe(200);
    expect(same.headers.get('x-event-position')).toBeNull();

    // Transmitter-supplied members must match (SSF 1.0 §8.1.1.3); aud cannot be updated.
    for (const [member, value] of [['iss', 'https://other.example'], ['min_verification_interval', 1], ['events_supported', [CAEP_SESSION_REVOKED]], ['aud', 'rp-2'], ['inactivity_timeout', 60]] as const) {
      const wrong = await ssf('PATCH', '/ssf/streams', { ...patched.body, [member]: value });
      expect({ member, status: wrong.status }).toEqual({ member, status: 400 });
      expect(wrong.body.detail).toContain(member);
    }

    const replaced = await ssf('PUT', '/ssf/streams', { stream_id: created.stream_id, events_requested: [CAEP_SESSION_REVOKED], delivery: { method: SSF_POLL } });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toEqual({
      ...created,
      events_requested: [CAEP_SESSION_REVOKED],
      events_delivered: [CAEP_SESSION_REVOKED],
      delivery: { method: SSF_POLL, endpoint_url: `${base}/ssf/poll/${created.stream_id}` },
      description: undefined,
    });
    expect(replaced.body).not.toHaveProperty('description');
    expect((await ssf('GET', `/ssf/streams?stream_id=${created.stream_id}`)).body).toEqual(replaced.body);
    // PUT: a receiver-supplied member left out is deleted; delivery cannot be, so it is required.
    const cleared = await ssf('PUT', '/ssf/streams', { stream_id: created.stream_id, delivery: { method: SSF_POLL } });
    expect(cleared.status).toBe(200);
    expect(cleared.body).toMatchObject({ events_requested: [], events_delivered: [] });
    const missing = await ssf('PUT', '/ssf/streams', { stream_id: created.stream_id, events_requested: [] });
    expect(missing.status).toBe(400);
    expect(missing.body.detail).toMatch(/delivery/);
  });

  it('status: enabled → paused (with reason) → disabled → enabled', async () => {
    const { stream_id } = await create();
    for (const [status, reason] of [['paused', 'maintenance'], ['disabled', undefined], ['enabled', 'back']] as const) {
      const res = await ssf('POST', '/ssf/status', { stream_id, status, ...(reason ? { reason } : {}) });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ stream_id, status, ...(reason ? { reason } : {}) });
      expect((await ssf('GET', `/ssf/status?stream_id=${stream_id}`, undefined, reader)).body).toEqual(res.body);
    }
    const bad = await ssf('POST', '/ssf/status', { stream_id, status: 'stopped' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await storedEvents(stream_id)).map((e) => e.type)).toEqual(['SsfStreamCreated', 'SsfStreamStatusChanged', 'SsfStreamStatusChanged', 'SsfStreamStatusChanged']);
  });

  it('subjects: add is idempotent (200), remove answers 204, removing an unknown subject is 404', async () => {
    const { stream_id } = await create();
    const alice = { format: 'iss_sub', iss: base, sub: 'alice' };
    for (let i = 0; i < 2; i++) {
      const res = await ssf('POST', '/ssf/subjects:add', { stream_id, subject: alice, verified: true });
      expect(res.status).toBe(200);
    }
    expect((await ssf('POST', '/ssf/subjects:add', { stream_id, subject: { format: 'email', email: 'bob@example.com' } })).status).toBe(200);
    expect((await storedEvents(stream_id)).filter((e) => e.type === 'SsfSubjectAdded')).toHaveLength(2);
    expect((await ssf('POST', '/ssf/subjects:remove', { stream_id, subject: alice })).status).toBe(204);
    const again = await ssf('POST', '/ssf/subjects:remove', { stream_id, subject: alice });
    expect(again.status).toBe(404);
    expect(again.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    for (const subject of [{ format: 'phone_number', phone_number: '+15555550100' }, { format: 'iss_sub', iss: 'https://other.example', sub: 'x' }, 'alice', undefined]) {
      expect((await ssf('POST', '/ssf/subjects:add', { stream_id, subject })).status).toBe(400);
    }
    expect((await ssf('POST', '/ssf/subjects:add', { stream_id, subject: alice, verified: 'yes' })).status).toBe(400);
  });

  it('verify: 204 and SsfVerificationRequested with the state; again within min_verification_interval is 429 with Retry-After', async () => {
    const { stream_id } = await create();
    const first = await ssf('POST', '/ssf/verify', { stream_id, state: 'state-123' });
    expect(first.status).toBe(204);
    const events = await storedEvents(stream_id);
    expect(events.at(-1)).toMatchObject({ type: 'SsfVerificationRequested', data: { streamId: stream_id, state: 'state-123' } });
    const second = await ssf('POST', '/ssf/verify', { stream_id });
    expect(second.status).toBe(429);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(second.headers.get('retry-after'))).toBeLessThanOrEqual(15);
    expect(second.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await storedEvents(stream_id)).filter((e) => e.type === 'SsfVerificationRequested')).toHaveLength(1);
  });

  it('delete: 204, then every call about the stream is 404 and it leaves the list', async () => {
    const { stream_id } = await create();
    await eventually(async () => ((await ssf('GET', '/ssf/streams')).body as any[]).some((s) => s.stream_id === stream_id), 'listed');
    expect((await ssf('DELETE', `/ssf/streams?stream_id=${stream_id}`)).status).toBe(204);
    const after = [
      await ssf('GET', `/ssf/streams?stream_id=${stream_id}`),
      await ssf('PATCH', '/ssf/streams', { stream_id, description: 'x' }),
      await ssf('PUT', '/ssf/streams', { stream_id, ...pushStream() }),
      await ssf('DELETE', `/ssf/streams?stream_id=${stream_id}`),
      await ssf('GET', `/ssf/status?stream_id=${stream_id}`),
      await ssf('POST', '/ssf/status', { stream_id, status: 'paused' }),
      await ssf('POST', '/ssf/subjects:add', { stream_id, subject: { format: 'opaque', id: 'x' } }),
      await ssf('POST', '/ssf/subjects:remove', { stream_id, subject: { format: 'opaque', id: 'x' } }),
      await ssf('POST', '/ssf/verify', { stream_id }),
    ];
    expect(after.map((r) => r.status)).toEqual(Array(after.length).fill(404));
    expect(((await ssf('GET', '/ssf/streams')).body as any[]).some((s) => s.stream_id === stream_id)).toBe(false);
  });

  it('an unknown or malformed stream id is 404; a missing one 400', async () => {
    for (const id of ['ssf_00000000000000000000000000', 'nope', '../etc']) {
      expect((await ssf('GET', `/ssf/streams?stream_id=${encodeURIComponent(id)}`)).status).toBe(404);
      expect((await ssf('POST', '/ssf/verify', { stream_id: id })).status).toBe(404);
    }
    expect((await ssf('DELETE', '/ssf/streams')).status).toBe(400);
    expect((await ssf('GET', '/ssf/status')).status).toBe(400);
    expect((await ssf('PATCH', '/ssf/streams', { description: 'x' })).status).toBe(400);
    expect((await ssf('POST', '/ssf/verify', {})).status).toBe(400);
  });

  it('refuses invalid configurations with a 400 problem naming every problem, never a 500', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['empty aud', pushStream({ aud: [] }), /aud/],
      ['events not URIs', pushStream({ events_requested: ['not a uri'] }), /events_requested/],
      ['unknown method', pushStream({ delivery: { method: 'urn:ietf:rfc:1234' } }), /delivery\.method/],
      ['push without endpoint', pushStream({ delivery: { method: SSF_PUSH } }), /endpoint_url/],
      ['push with credentials', pushStream({ delivery: { method: SSF_PUSH, endpoint_url: 'https://u:p@rp.example/' } }), /credentials/],
      ['bad authorization_header', pushStream({ delivery: { method: SSF_PUSH, endpoint_url: 'https://rp.example/', authorization_header: 'a\nb' } }), /authorization_header/],
      ['unknown member', pushStream({ event_requested: [] }), /unknown stream configuration members: event_requested/],
      ['unknown delivery member', pushStream({ delivery: { method: SSF_POLL, url: 'x' } }), /unknown delivery members: url/],
      ['not an object', [1, 2], /JSON object/],
      ['several at once', { aud: '', events_requested: 'x', delivery: { method: 'x' } }, /aud.*events_requested.*delivery/],
    ];
    for (const [name, body, detail] of cases) {
      const res = await ssf('POST', '/ssf/streams', body);
      expect({ name, status: res.status }).toEqual({ name, status: 400 });
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect({ name, detail: res.body.detail }).toEqual({ name, detail: expect.stringMatching(detail) });
    }
    const raw = (body: string, type = 'application/json', method = 'POST', route = '/ssf/streams') =>
      fetch(`${base}${route}`, { method, headers: { authorization: `Bearer ${manager}`, 'content-type': type }, body });
    const odd = {
      truncated: await raw('{"aud":'),
      null: await raw('null'),
      string: await raw('"x"'),
      form: await raw('aud=x', 'application/x-www-form-urlencoded'),
      text: await raw('aud', 'text/plain'),
      huge: await raw(JSON.stringify(pushStream({ description: 'x'.repeat(20_000) }))),
      subjectNull: await raw('null', 'application/json', 'POST', '/ssf/subjects:add'),
      statusArray: await raw('[]', 'application/json', 'POST', '/ssf/status'),
      patchNumberId: await raw(JSON.stringify({ stream_id: 5 }), 'application/json', 'PATCH'),
    };
    for (const [name, res] of Object.entries(odd)) {
      expect({ name, status: res.status, fault: res.status >= 500 }).toEqual({ name, status: expect.any(Number), fault: false });
      expect({ name, client: res.status >= 400 && res.status < 500 }).toEqual({ name, client: true });
    }
  });

  it('scopes: ssf:read reads but cannot write (403), other keys get 403 naming the scope, no key 401', async () => {
    const { stream_id } = await create();
    const writes: [string, string, unknown][] = [
      ['POST', '/ssf/streams', pushStream()],
      ['PATCH', '/ssf/streams', { stream_id, description: 'x' }],
      ['PUT', '/ssf/streams', { stream_id, ...pushStream() }],
      ['DELETE', `/ssf/streams?stream_id=${stream_id}`, undefined],
      ['POST', '/ssf/status', { stream_id, status: 'paused' }],
      ['POST', '/ssf/subjects:add', { stream_id, subject: { format: 'opaque', id: 'c' } }],
      ['POST', '/ssf/subjects:remove', { stream_id, subject: { format: 'opaque', id: 'c' } }],
      ['POST', '/ssf/verify', { stream_id }],
    ];
    const reads: [string, string, unknown][] = [
      ['GET', `/ssf/streams?stream_id=${stream_id}`, undefined],
      ['GET', '/ssf/streams', undefined],
      ['GET', `/ssf/status?stream_id=${stream_id}`, undefined],
    ];
    for (const [method, route, body] of writes) {
      const res = await ssf(method, route, body, reader);
      expect({ route, method, status: res.status, scope: res.body?.requiredScope }).toEqual({ route, method, status: 403, scope: 'ssf:manage' });
    }
    for (const [method, route, body] of reads) expect({ route, status: (await ssf(method, route, body, reader)).status }).toEqual({ route, status: 200 });
    for (const [method, route, body] of [...writes, ...reads]) {
      const forbidden = await ssf(method, route, body, unrelated);
      expect({ route, method, status: forbidden.status }).toEqual({ route, method, status: 403 });
      expect(forbidden.body.requiredScope).toMatch(/^ssf:(manage|read)$/);
      const anonymous = await ssf(method, route, body, null);
      expect({ route, method, status: anonymous.status }).toEqual({ route, method, status: 401 });
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    // Nothing the refused calls asked for happened.
    expect((await storedEvents(stream_id)).map((e) => e.type)).toEqual(['SsfStreamCreated']);
    // The acting key is on the events (metadata.actor), like /v1.
    expect((await storedEvents(stream_id))[0].metadata.actor).toMatch(/^api-key:key_/);
  });

  it('many concurrent PATCHes are each applied exactly once, serialised on the stream', async () => {
    const { stream_id } = await create();
    const n = 24;
    const answers = await Promise.all(Array.from({ length: n }, (_, i) => ssf('PATCH', '/ssf/streams', { stream_id, description: `edit-${i}` })));
    expect(answers.map((a) => a.status)).toEqual(Array(n).fill(200));
    const updates = (await storedEvents(stream_id)).filter((e) => e.type === 'SsfStreamUpdated');
    expect(updates.map((e) => (e.data as any).description).sort()).toEqual(Array.from({ length: n }, (_, i) => `edit-${i}`).sort());
    // Each answer shows its own edit, and the stream ends with the last one appended.
    expect(answers.map((a) => a.body.description).sort()).toEqual(Array.from({ length: n }, (_, i) => `edit-${i}`).sort());
    expect((await ssf('GET', `/ssf/streams?stream_id=${stream_id}`)).body.description).toBe((updates.at(-1)!.data as any).description);
  });

  it('many concurrent subject adds all land (each once); concurrent adds of one subject record it once', async () => {
    const { stream_id } = await create();
    const n = 30;
    const subjects = Array.from({ length: n }, (_, i) => ({ format: 'email', email: `user${i}@example.com` }));
    const adds = await Promise.all(subjects.map((subject) => ssf('POST', '/ssf/subjects:add', { stream_id, subject })));
    expect(adds.map((a) => a.status)).toEqual(Array(n).fill(200));
    const same = await Promise.all(Array.from({ length: 10 }, () => ssf('POST', '/ssf/subjects:add', { stream_id, subject: { format: 'opaque', id: 'client-a' } })));
    expect(same.map((a) => a.status)).toEqual(Array(10).fill(200));
    const added = (await storedEvents(stream_id)).filter((e) => e.type === 'SsfSubjectAdded').map((e) => canonicalJson((e.data as any).subjectId));
    expect(added.sort()).toEqual([...subjects, { format: 'opaque', id: 'client-a' }].map((s) => canonicalJson(s)).sort());
    // Every one is in the stream: each removes once (204), and only once.
    const removes = await Promise.all(subjects.map((subject) => ssf('POST', '/ssf/subjects:remove', { stream_id, subject })));
    expect(removes.map((a) => a.status)).toEqual(Array(n).fill(204));
  });

  it('concurrent status changes and verifications serialise: one verification per interval, the last status wins', async () => {
    const { stream_id } = await create();
    const statuses = Array.from({ length: 12 }, (_, i) => ['paused', 'disabled', 'enabled'][i % 3]);
    const changes = await Promise.all(statuses.map((status, i) => ssf('POST', '/ssf/status', { stream_id, status, reason: `r${i}` })));
    expect(changes.map((a) => a.status)).toEqual(Array(statuses.length).fill(200));
    const changed = (await storedEvents(stream_id)).filter((e) => e.type === 'SsfStreamStatusChanged');
    expect(changed.map((e) => (e.data as any).reason).sort()).toEqual(statuses.map((_, i) => `r${i}`).sort());
    expect((await ssf('GET', `/ssf/status?stream_id=${stream_id}`)).body).toEqual({ stream_id, status: (changed.at(-1)!.data as any).status, reason: (changed.at(-1)!.data as any).reason });

    const verifies = await Promise.all(Array.from({ length: 8 }, () => ssf('POST', '/ssf/verify', { stream_id })));
    expect(verifies.map((v) => v.status).sort()).toEqual([204, ...Array(7).fill(429)]);
    expect((await storedEvents(stream_id)).filter((e) => e.type === 'SsfVerificationRequested')).toHaveLength(1);
  });

  it('concurrent deletes: exactly one 204, the others 404, one SsfStreamDeleted', async () => {
    const { stream_id } = await create();
    const answers = await Promise.all(Array.from({ length: 10 }, () => ssf('DELETE', `/ssf/streams?stream_id=${stream_id}`)));
    expect(answers.map((a) => a.status).sort()).toEqual([204, ...Array(9).fill(404)]);
    expect((await storedEvents(stream_id)).map((e) => e.type)).toEqual(['SsfStreamCreated', 'SsfStreamDeleted']);
  });

  it('a delete racing PATCHes, subject adds and status changes: each answer is 2xx (before) or 404 (after), nothing after the deletion', async () => {
    const { stream_id } = await create();
    const requests = [
      ...Array.from({ length: 8 }, (_, i) => () => ssf('PATCH', '/ssf/streams', { stream_id, description: `d${i}` })),
      ...Array.from({ length: 8 }, (_, i) => () => ssf('POST', '/ssf/subjects:add', { stream_id, subject: { format: 'opaque', id: `c${i}` } })),
      ...Array.from({ length: 4 }, (_, i) => () => ssf('POST', '/ssf/status', { stream_id, status: i % 2 ? 'enabled' : 'paused', reason: `r${i}` })),
    ];
    requests.splice(10, 0, () => ssf('DELETE', `/ssf/streams?stream_id=${stream_id}`));
    const answers = await Promise.all(requests.map((r) => r()));
    for (const a of answers) expect([200, 204, 404]).toContain(a.status);
    expect(answers.filter((a) => a.status === 204)).toHaveLength(1);
    const types = (await storedEvents(stream_id)).map((e) => e.type);
    expect(types.at(-1)).toBe('SsfStreamDeleted');
    expect(types.filter((t) => t === 'SsfStreamDeleted')).toHaveLength(1);
    // Every 2xx (but the delete) appended one event before the deletion; every 404 none.
    expect(types.length - 2).toBe(answers.filter((a) => a.status === 200).length);
  });

  it('every SSF stream written above verifies: hash chain intact, each snapshot what replaying the stream gives', async () => {
    const report = await verifyChain(ledger.store, { all: true });
    expect(report).toMatchObject({ ok: true, problemCount: 0 });
    expect(report!.streams).toBeGreaterThan(0);
  });

  it('the OpenAPI document describes the SSF routes with their scopes and 429', async () => {
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>> };
    expect(Object.keys(doc.paths['/ssf/streams']).sort()).toEqual(['delete', 'get', 'patch', 'post', 'put']);
    expect(doc.paths['/ssf/streams'].get.responses['403'].description).toContain('ssf:read');
    expect(doc.paths['/ssf/streams'].post.responses['403'].description).toContain('ssf:manage');
    expect(doc.paths['/ssf/streams'].post.responses['429']).toBeDefined();
    expect(doc.paths['/ssf/subjects:add'].post.responses['403'].description).toContain('ssf:manage');
    expect(doc.paths['/ssf/subjects:remove'].post).toBeDefined();
    expect(doc.paths['/ssf/verify'].post.responses['429']).toBeDefined();
    expect(doc.paths['/.well-known/ssf-configuration'].get).toBeDefined();
  });
}
