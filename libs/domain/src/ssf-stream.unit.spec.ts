import { CAEP_CREDENTIAL_CHANGE, CAEP_SESSION_REVOKED, SSF_POLL, SSF_PUSH, type SsfStreamEvent } from './ssf-events';
import {
  decideSsfStream,
  evolveSsfStream,
  formatSsfStreamId,
  initialSsfStreamState,
  isSsfStreamId,
  SSF_LIMITS,
  SsfVerificationTooSoon,
  type SsfPolicy,
  type SsfStreamCommand,
  type SsfStreamState,
} from './ssf-stream';
import { deciderSpec } from './testing/decider-spec';

const T0 = Date.UTC(2026, 0, 1);
const ID = formatSsfStreamId(Buffer.alloc(16, 7));
const ISS = 'https://ledger.example';
const policy: SsfPolicy = { issuer: ISS, allowInsecurePush: false, minVerificationIntervalMs: 15_000 };
const OTHER = 'https://schemas.example/other-event';

const ssf = deciderSpec({
  initialState: () => initialSsfStreamState(ID),
  evolve: evolveSsfStream,
  decide: (command: SsfStreamCommand, state: SsfStreamState) => ({ events: decideSsfStream(command, state) }),
});

const header = (at: number) => ({ familyId: '', subject: '', clientId: '', occurredAt: new Date(at).toISOString() }) as const;
const push = (endpointUrl = 'https://rp.example/ssf', authorizationHeaderSealed?: string | null) => ({ method: SSF_PUSH, endpointUrl, authorizationHeaderSealed });
const create = (input: Partial<Extract<SsfStreamCommand, { type: 'CreateSsfStream' }>['input']> = {}, p = policy): SsfStreamCommand => ({
  type: 'CreateSsfStream',
  streamId: ID,
  input: { aud: 'https://rp.example', eventsRequested: [CAEP_SESSION_REVOKED, OTHER], delivery: push(undefined, 'sealed:1'), ...input },
  policy: p,
  now: T0,
});
const patch = (input: Extract<SsfStreamCommand, { type: 'UpdateSsfStream' }>['input'], now = T0 + 1): SsfStreamCommand => ({ type: 'UpdateSsfStream', streamId: ID, mode: 'patch', input, policy, now });
const replace = (input: Extract<SsfStreamCommand, { type: 'UpdateSsfStream' }>['input'], now = T0 + 1): SsfStreamCommand => ({ type: 'UpdateSsfStream', streamId: ID, mode: 'replace', input, policy, now });
const status = (s: unknown, reason?: unknown, now = T0 + 1): SsfStreamCommand => ({ type: 'ChangeSsfStreamStatus', streamId: ID, status: s, reason, now });
const add = (subject: unknown, verified?: unknown, now = T0 + 1): SsfStreamCommand => ({ type: 'AddSsfSubject', streamId: ID, subject, verified, policy, now });
const remove = (subject: unknown, now = T0 + 2): SsfStreamCommand => ({ type: 'RemoveSsfSubject', streamId: ID, subject, policy, now });
const verify = (now: number, state?: unknown): SsfStreamCommand => ({ type: 'RequestSsfVerification', streamId: ID, state, policy, now });
const del = (now = T0 + 9): SsfStreamCommand => ({ type: 'DeleteSsfStream', streamId: ID, now });
const alice = { format: 'iss_sub', iss: ISS, sub: 'alice' };

const code = (c: string) => expect.objectContaining({ code: c });

describe('SSF stream decider', () => {
  it('stream ids are ssf_ + 26 Crockford base32 characters from 16 random bytes', () => {
    expect(ID).toMatch(/^ssf_[0-9a-hjkmnp-tv-z]{26}$/);
    expect(isSsfStreamId(ID)).toBe(true);
    expect(isSsfStreamId('ssf_x')).toBe(false);
    expect(() => formatSsfStreamId(Buffer.alloc(8))).toThrow(code('invalid_argument'));
  });

  it('creates an enabled stream: aud as a list, events_delivered = requested ∩ supported, the sealed header kept', () => {
    ssf
      .given()
      .when(create())
      .thenEvents([
        {
          type: 'SsfStreamCreated',
          ...header(T0),
          data: {
            streamId: ID,
            status: 'enabled',
            aud: ['https://rp.example'],
            eventsRequested: [CAEP_SESSION_REVOKED, OTHER],
            eventsDelivered: [CAEP_SESSION_REVOKED],
            delivery: { method: SSF_PUSH, endpointUrl: 'https://rp.example/ssf', authorizationHeaderSealed: 'sealed:1' },
            description: null,
          },
        },
      ])
      .thenStateMatches({ lifecycle: 'live', status: 'enabled', createdAt: T0 });
    expect(() => ssf.given().after(create()).when(create()).outcome()).toThrow(code('ssf_stream_exists'));
  });

  it('a poll stream gets the transmitter poll URL, whatever the receiver sent', () => {
    const [created] = ssf.given().when(create({ delivery: { method: SSF_POLL, endpointUrl: 'https://evil.example/' } })).outcome().events as [Extract<SsfStreamEvent, { type: 'SsfStreamCreated' }>];
    expect(created.data.delivery).toEqual({ method: SSF_POLL, endpointUrl: `${ISS}/ssf/poll/${ID}` });
  });

  it.each([
    ['aud missing', { aud: undefined }],
    ['aud empty list', { aud: [] }],
    ['aud empty string', { aud: '' }],
    ['aud not strings', { aud: [1] }],
    ['events_requested not a list', { eventsRequested: CAEP_SESSION_REVOKED }],
    ['events_requested not URIs', { eventsRequested: ['session revoked'] }],
    ['events_requested too many', { eventsRequested: Array.from({ length: SSF_LIMITS.eventsRequested + 1 }, (_, i) => `urn:x:${i}`) }],
    ['delivery missing', { delivery: undefined }],
    ['delivery method unknown', { delivery: { method: 'urn:ietf:rfc:9999', endpointUrl: 'https://rp.example/' } }],
    ['push without endpoint', { delivery: { method: SSF_PUSH } }],
    ['push over http', { delivery: push('http://rp.example/ssf') }],
    ['push with credentials', { delivery: push('https://u:p@rp.example/ssf') }],
    ['push with fragment', { delivery: push('https://rp.example/ssf#x') }],
    ['push to an IP literal', { delivery: push('https://169.254.169.254/latest') }],
    ['push to IPv6 loopback', { delivery: push('https://[::1]/ssf') }],
    ['push to localhost', { delivery: push('https://localhost/ssf') }],
    ['push to a relative URL', { delivery: push('/ssf') }],
    ['description not a string', { description: 5 }],
    ['description too long', { description: 'x'.repeat(SSF_LIMITS.description + 1) }],
  ])('refuses a configuration with %s (400 invalid_argument)', (_name, input) => {
    expect(() => ssf.given().when(create(input as never)).outcome()).toThrow(code('invalid_argument'));
  });

  it('reports every problem of a configuration at once', () => {
    expect(() => ssf.given().when(create({ aud: [], eventsRequested: 'x', delivery: { method: 'nope' } })).outcome()).toThrow(
      expect.objectContaining({ message: expect.stringMatching(/aud.*events_requested.*delivery\.method/) }),
    );
  });

  it('plain http and IP hosts only with allowInsecurePush (tests, local setups)', () => {
    ssf
      .given()
      .when(create({ delivery: push('http://127.0.0.1:8080/ssf') }, { ...policy, allowInsecurePush: true }))
      .thenEventTypes(['SsfStreamCreated']);
  });

  it('PATCH changes only what it names; an unchanged result decides nothing', () => {
    const given = ssf.given().after(create());
    given
      .when(patch({ description: 'prod receiver' }))
      .thenEventTypes(['SsfStreamUpdated'])
      .thenStateMatches({
        config: {
          aud: ['https://rp.example'],
          eventsRequested: [CAEP_SESSION_REVOKED, OTHER],
          eventsDelivered: [CAEP_SESSION_REVOKED],
          delivery: { method: SSF_PUSH, endpointUrl: 'https://rp.example/ssf', authorizationHeaderSealed: 'sealed:1' },
          description: 'prod receiver',
        },
        updatedAt: T0 + 1,
      });
    given.when(patch({ eventsRequested: [CAEP_SESSION_REVOKED, OTHER] })).thenNothingHappened();
    given.when(patch({ eventsRequested: [CAEP_CREDENTIAL_CHANGE] })).thenStateMatches({ config: expect.objectContaining({ eventsDelivered: [CAEP_CREDENTIAL_CHANGE] }) });
    expect(() => given.when(patch({ aud: [] })).outcome()).toThrow(code('invalid_argument'));
  });

  it('aud is fixed at creation: sent back as read it changes nothing, a different one is refused', () => {
    const given = ssf.given().after(create({ aud: ['a', 'b'] }));
    given.when(patch({ aud: ['b', 'a'] })).thenNothingHappened();
    given.when(replace({ aud: ['a', 'b'], eventsRequested: [CAEP_SESSION_REVOKED, OTHER], delivery: push(undefined, 'sealed:1') })).thenNothingHappened();
    for (const aud of ['a', ['a', 'c'], [], 5]) {
      expect(() => given.when(patch({ aud })).outcome()).toThrow(expect.objectContaining({ code: 'invalid_argument', message: expect.stringContaining('aud cannot be updated') }));
    }
  });

  it('a patched push delivery keeps the sealed header on the same origin only; null removes it', () => {
    const given = ssf.given().after(create());
    const headerOf = (c: SsfStreamCommand) => {
      const d = given.when(c).outcome().state.config!.delivery;
      return d.method === SSF_PUSH ? d.authorizationHeaderSealed : undefined;
    };
    expect(headerOf(patch({ delivery: push('https://rp.example/other-path') }))).toBe('sealed:1');
    expect(headerOf(patch({ delivery: push('https://elsewhere.example/ssf') }))).toBeUndefined();
    expect(headerOf(patch({ delivery: push('https://rp.example/ssf', null) }))).toBeUndefined();
    expect(headerOf(patch({ delivery: push('https://rp.example/ssf', 'sealed:2') }))).toBe('sealed:2');
    expect(headerOf(replace({ eventsRequested: [], delivery: push('https://rp.example/ssf') }))).toBeUndefined();
  });

  it('PUT replaces every receiver-supplied member: what it leaves out is deleted, delivery is required', () => {
    const given = ssf.given().after(create({ description: 'first' }));
    given
      .when(replace({ eventsRequested: [CAEP_SESSION_REVOKED], delivery: { method: SSF_POLL } }))
      .thenStateMatches({ config: { aud: ['https://rp.example'], eventsRequested: [CAEP_SESSION_REVOKED], eventsDelivered: [CAEP_SESSION_REVOKED], delivery: { method: SSF_POLL, endpointUrl: `${ISS}/ssf/poll/${ID}` }, description: null } });
    given.when(replace({ delivery: push() })).thenStateMatches({ config: expect.objectContaining({ eventsRequested: [], eventsDelivered: [], description: null }) });
    expect(() => given.when(replace({ eventsRequested: [] })).outcome()).toThrow(code('invalid_argument'));
  });

  it('status moves between enabled, paused and disabled; the same status and reason decide nothing', () => {
    const given = ssf.given().after(create());
    given.when(status('paused', 'maintenance')).thenEvents([{ type: 'SsfStreamStatusChanged', ...header(T0 + 1), data: { streamId: ID, status: 'paused', reason: 'maintenance' } }]);
    given.when(status('enabled')).thenNothingHappened();
    given.after(status('disabled')).when(status('enabled', 'back')).thenStateMatches({ status: 'enabled', statusReason: 'back' });
    expect(() => given.when(status('stopped')).outcome()).toThrow(code('invalid_argument'));
    expect(() => given.when(status('paused', 7)).outcome()).toThrow(code('invalid_argument'));
  });

  it('adding a subject is idempotent; verified defaults to true; a changed verified flag is recorded', () => {
    const given = ssf.given().after(create());
    given.when(add(alice)).thenEvents([{ type: 'SsfSubjectAdded', ...header(T0 + 1), data: { streamId: ID, subjectId: alice as never, verified: true } }]);
    const added = given.after(add(alice));
    added.when(add(alice)).thenNothingHappened();
    added.when(add({ sub: 'alice', iss: ISS, format: 'iss_sub' })).thenNothingHappened();
    added.when(add(alice, false)).thenEventTypes(['SsfSubjectAdded']).thenStateMatches({ subjects: { [JSON.stringify(['iss_sub', ISS, 'alice'])]: { subjectId: alice as never, verified: false } } });
    // e-mail addresses are one subject whatever their case.
    given.after(add({ format: 'email', email: 'Bob@Example.com' })).when(add({ format: 'email', email: 'bob@example.com' })).thenNothingHappened();
  });

  it.each([
    ['no subject', undefined],
    ['an unknown format', { format: 'phone_number', phone_number: '+1' }],
    ['another issuer', { format: 'iss_sub', iss: 'https://other.example', sub: 'alice' }],
    ['a missing sub', { format: 'iss_sub', iss: ISS }],
    ['a bad address', { format: 'email', email: 'not-an-address' }],
    ['extra members', { format: 'opaque', id: 'x', extra: 1 }],
  ])('refuses a subject with %s', (_name, subject) => {
    expect(() => ssf.given().after(create()).when(add(subject)).outcome()).toThrow(code('invalid_argument'));
  });

  it('removing a subject needs it to be there (404 per SSF)', () => {
    const given = ssf.given().after(create(), add(alice));
    given.when(remove(alice)).thenEventTypes(['SsfSubjectRemoved']).thenStateMatches({ subjects: {} });
    expect(() => given.after(remove(alice)).when(remove(alice)).outcome()).toThrow(code('ssf_subject_not_found'));
    expect(() => given.when(remove({ format: 'opaque', id: 'never-added' })).outcome()).toThrow(code('ssf_subject_not_found'));
  });

  it('holds at most SSF_LIMITS.subjects subjects', () => {
    let state = ssf.given().after(create()).state;
    for (let i = 0; i < SSF_LIMITS.subjects; i++) state = decideSsfStream(add({ format: 'opaque', id: `c${i}` }), state).reduce(evolveSsfStream, state);
    expect(() => decideSsfStream(add({ format: 'opaque', id: 'one-more' }), state)).toThrow(code('ssf_too_many_subjects'));
    expect(decideSsfStream(add({ format: 'opaque', id: 'c0' }), state)).toEqual([]);
  });

  it('verification: once per min_verification_interval; too soon says when to retry', () => {
    const given = ssf.given().after(create());
    given.when(verify(T0 + 1, 'abc')).thenEvents([{ type: 'SsfVerificationRequested', ...header(T0 + 1), data: { streamId: ID, state: 'abc' } }]);
    const verified = given.after(verify(T0 + 1));
    verified.when(verify(T0 + 1 + 15_000)).thenEventTypes(['SsfVerificationRequested']);
    const tooSoon = verified.when(verify(T0 + 1 + 4_500));
    tooSoon.thenThrows(SsfVerificationTooSoon, { code: 'ssf_verification_too_soon', retryAfterSeconds: 11 });
    verified.when(verify(T0 + 1 + 14_999)).thenThrows({ retryAfterSeconds: 1 });
    expect(() => given.when(verify(T0, 42)).outcome()).toThrow(code('invalid_argument'));
  });

  it('before creation and after deletion every command is not found; delete is final', () => {
    const commands = [patch({ description: 'x' }), status('paused'), add(alice), remove(alice), verify(T0 + 100), del()];
    for (const c of commands) expect(() => ssf.given().when(c).outcome()).toThrow(code('ssf_stream_not_found'));
    const deleted = ssf.given().after(create(), add(alice)).when(del());
    deleted.thenEvents([{ type: 'SsfStreamDeleted', ...header(T0 + 9), data: { streamId: ID } }]).thenStateMatches({ lifecycle: 'deleted', config: null, subjects: {} });
    for (const c of commands) expect(() => deleted.next().when(c).outcome()).toThrow(code('ssf_stream_not_found'));
    expect(() => deleted.next().when(create()).outcome()).toThrow(code('ssf_stream_exists'));
  });

  it('a malformed stream id is simply not found', () => {
    expect(() => decideSsfStream({ ...del(), streamId: '../x' }, initialSsfStreamState('../x'))).toThrow(code('ssf_stream_not_found'));
  });
});
