import {
  acceptedSecretHashes,
  CLIENT_DEFAULTS,
  CLIENT_LIMITS,
  decideClient,
  normaliseClientPolicyPatch,
  evolveClient,
  initialClientState,
  normaliseClientRegistration,
  validateFamilyPolicy,
  type ClientCommand,
  type ClientRegistration,
  type ClientState,
} from './client-policy';
import { dpopRequirementError } from './dpop-binding';
import { DomainError } from './errors';
import type { ClientEvent } from './events';
import { deciderSpec } from './testing/decider-spec';

function ok(input: unknown): ClientRegistration {
  const r = normaliseClientRegistration(input);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.value;
}

function errors(input: unknown): string[] {
  const r = normaliseClientRegistration(input);
  if (r.ok) throw new Error('expected errors');
  return r.errors;
}

describe('normaliseClientRegistration', () => {
  it('applies the documented defaults', () => {
    expect(ok({ clientId: 'web' })).toEqual({
      clientId: 'web',
      type: 'confidential',
      secret: null,
      allowedScopes: [],
      policy: { accessTokenTtl: 300, refreshIdleTtl: 1_296_000, refreshAbsoluteTtl: 2_592_000, reuseGraceSeconds: 0 },
      maxFamiliesPerSubject: 200,
      introspectAll: false,
      requireDpop: false,
    });
    expect(CLIENT_DEFAULTS.maxFamiliesPerSubject).toBe(200);
  });

  it('accepts every field', () => {
    expect(
      ok({
        clientId: 'spa.example:prod-1_A',
        type: 'public',
        allowedScopes: ['openid', 'read', 'openid'],
        accessTokenTtl: 60,
        refreshIdleTtl: 3600,
        refreshAbsoluteTtl: 3600,
        reuseGraceSeconds: 300,
        maxFamiliesPerSubject: 1,
        introspectAll: true,
        requireDpop: true,
      }),
    ).toEqual({
      clientId: 'spa.example:prod-1_A',
      type: 'public',
      secret: null,
      allowedScopes: ['openid', 'read'],
      policy: { accessTokenTtl: 60, refreshIdleTtl: 3600, refreshAbsoluteTtl: 3600, reuseGraceSeconds: 300 },
      maxFamiliesPerSubject: 1,
      introspectAll: true,
      requireDpop: true,
    });
    expect(ok({ clientId: 'svc', secret: 'correct horse battery staple' }).secret).toBe('correct horse battery staple');
  });

  it('treats null as absent', () => {
    expect(ok({ clientId: 'web', type: null, secret: null, allowedScopes: null, accessTokenTtl: null })).toEqual(ok({ clientId: 'web' }));
  });

  it.each([
    ['no clientId', {}],
    ['an empty clientId', { clientId: '' }],
    ['a clientId with a space', { clientId: 'a b' }],
    ['a clientId with a slash', { clientId: 'a/b' }],
    ['a 129-character clientId', { clientId: 'a'.repeat(129) }],
    ['a numeric clientId', { clientId: 42 }],
    ['an unknown type', { clientId: 'c', type: 'private' }],
    ['a public client with a secret', { clientId: 'c', type: 'public', secret: 's' }],
    ['an empty secret', { clientId: 'c', secret: '' }],
    ['a non-string secret', { clientId: 'c', secret: 123 }],
    ['a non-ASCII secret', { clientId: 'c', secret: 'pässword' }],
    ['a secret with a control character', { clientId: 'c', secret: 'a\nb' }],
    ['a 257-character secret', { clientId: 'c', secret: 'x'.repeat(257) }],
    ['a scope string instead of a list', { clientId: 'c', allowedScopes: 'a b' }],
    ['an invalid scope token', { clientId: 'c', allowedScopes: ['a b'] }],
    ['a zero TTL', { clientId: 'c', accessTokenTtl: 0 }],
    ['a negative TTL', { clientId: 'c', refreshIdleTtl: -1 }],
    ['a fractional TTL', { clientId: 'c', accessTokenTtl: 1.5 }],
    ['a TTL given as a string', { clientId: 'c', accessTokenTtl: '300' }],
    ['a NaN TTL', { clientId: 'c', accessTokenTtl: NaN }],
    ['an access token TTL over a day', { clientId: 'c', accessTokenTtl: 86_401 }],
    ['idle longer than absolute', { clientId: 'c', refreshIdleTtl: 100, refreshAbsoluteTtl: 99 }],
    ['idle default longer than a short absolute', { clientId: 'c', refreshAbsoluteTtl: 3600 }],
    ['a grace over 300 s', { clientId: 'c', reuseGraceSeconds: 301 }],
    ['a negative grace', { clientId: 'c', reuseGraceSeconds: -1 }],
    ['zero families per subject', { clientId: 'c', maxFamiliesPerSubject: 0 }],
    ['an unknown field (typo)', { clientId: 'c', refreshIdleTTL: 10 }],
  ])('rejects %s', (_name, input) => {
    expect(errors(input).length).toBeGreaterThan(0);
  });

  it('accepts the boundaries', () => {
    expect(ok({ clientId: 'a'.repeat(128), accessTokenTtl: 1, refreshIdleTtl: 1, refreshAbsoluteTtl: 1, reuseGraceSeconds: 0 }).policy).toEqual({
      accessTokenTtl: 1,
      refreshIdleTtl: 1,
      refreshAbsoluteTtl: 1,
      reuseGraceSeconds: 0,
    });
    expect(ok({ clientId: 'c', secret: 'x'.repeat(256) }).secret).toHaveLength(256);
  });

  it('rejects non-objects and collects every error', () => {
    for (const bad of [null, undefined, 'web', 42, ['web']]) expect(errors(bad)).toHaveLength(1);
    expect(errors({ clientId: '', accessTokenTtl: 0, reuseGraceSeconds: 999, extra: 1 })).toHaveLength(4);
  });
});

describe('validateFamilyPolicy', () => {
  it('accepts a valid policy and explains an invalid one', () => {
    expect(validateFamilyPolicy({ accessTokenTtl: 300, refreshIdleTtl: 10, refreshAbsoluteTtl: 10, reuseGraceSeconds: 0 })).toEqual([]);
    expect(validateFamilyPolicy({ accessTokenTtl: 300, refreshIdleTtl: 11, refreshAbsoluteTtl: 10, reuseGraceSeconds: 0 })).toHaveLength(1);
    expect(validateFamilyPolicy({})).toHaveLength(4);
    expect(validateFamilyPolicy(null)).toHaveLength(1);
  });
});

describe('client stream', () => {
  const T0 = Date.UTC(2025, 0, 1);

  it('registers once and evolves to the registered state', () => {
    const registration = ok({ clientId: 'web', allowedScopes: ['read'], reuseGraceSeconds: 5 });
    const events = decideClient({ type: 'RegisterClient', registration, secretHash: 'h1', now: T0 }, initialClientState('web'));
    expect(events).toEqual([
      {
        type: 'ClientRegistered',
        familyId: '',
        subject: '',
        clientId: 'web',
        occurredAt: new Date(T0).toISOString(),
        data: {
          type: 'confidential',
          secretHash: 'h1',
          allowedScopes: ['read'],
          policy: registration.policy,
          maxFamiliesPerSubject: 200,
          introspectAll: false,
        },
      },
    ]);
    const state = events.reduce(evolveClient, initialClientState('web'));
    expect(state).toEqual({
      v: 2,
      status: 'registered',
      clientId: 'web',
      type: 'confidential',
      secretHash: 'h1',
      previousSecretHash: null,
      previousSecretValidUntil: 0,
      disabled: false,
      introspectAll: false,
      allowedScopes: ['read'],
      policy: registration.policy,
      maxFamiliesPerSubject: 200,
      registeredAt: T0,
    });
    expect(JSON.parse(JSON.stringify(state))).toStrictEqual(state);
    expect(() => decideClient({ type: 'RegisterClient', registration, secretHash: 'h2', now: T0 + 1 }, state)).toThrow(
      expect.objectContaining({ code: 'client_exists' }),
    );
  });

  it('requires a secret hash exactly for confidential clients', () => {
    const conf = ok({ clientId: 'svc' });
    const pub = ok({ clientId: 'spa', type: 'public' });
    expect(() => decideClient({ type: 'RegisterClient', registration: conf, secretHash: null, now: T0 }, initialClientState())).toThrow(DomainError);
    expect(() => decideClient({ type: 'RegisterClient', registration: pub, secretHash: 'h', now: T0 }, initialClientState())).toThrow(DomainError);
    const [event] = decideClient({ type: 'RegisterClient', registration: pub, secretHash: null, now: T0 }, initialClientState());
    expect(event).toMatchObject({ type: 'ClientRegistered', data: { secretHash: null } });
  });

  it('evolve does not mutate its input', () => {
    const s0 = Object.freeze(initialClientState('web'));
    const before = JSON.stringify(s0);
    const [event] = decideClient({ type: 'RegisterClient', registration: ok({ clientId: 'web' }), secretHash: 'h', now: T0 }, s0);
    evolveClient(s0, event);
    expect(JSON.stringify(s0)).toBe(before);
  });
});

describe('client lifecycle (SPEC §9)', () => {
  const T0 = Date.UTC(2025, 0, 1);
  const client = deciderSpec({
    initialState: () => initialClientState('web'),
    evolve: evolveClient,
    decide: (command: ClientCommand, state: ClientState) => ({ events: decideClient(command, state) }),
  });
  const header = (at: number) => ({ familyId: '' as const, subject: '' as const, clientId: 'web', occurredAt: new Date(at).toISOString() });
  const registered = (input: Record<string, unknown> = {}, secretHash: string | null = 'h1'): ClientEvent[] =>
    decideClient({ type: 'RegisterClient', registration: ok({ clientId: 'web', ...input }), secretHash, now: T0 }, initialClientState('web'));
  const rotate = (secretHash: string, overlapSeconds: number, now: number): ClientCommand => ({ type: 'RotateClientSecret', secretHash, overlapSeconds, now });

  it('rotates with an overlap: both secrets authenticate until it ends, then only the new one', () => {
    const when = client.given(registered()).when(rotate('h2', 60, T0 + 1000));
    when.thenEvents([{ type: 'ClientSecretRotated', ...header(T0 + 1000), data: { secretHash: 'h2', previousValidUntil: new Date(T0 + 61_000).toISOString() } }]);
    when.thenStateMatches({ secretHash: 'h2', previousSecretHash: 'h1', previousSecretValidUntil: T0 + 61_000 });
    const state = when.outcome().state;
    expect(acceptedSecretHashes(state, T0 + 60_999)).toEqual(['h2', 'h1']);
    expect(acceptedSecretHashes(state, T0 + 61_000)).toEqual(['h2']);
  });

  it('overlap 0 drops the old secret at once, and a second rotation replaces the overlap', () => {
    client
      .given(registered())
      .when(rotate('h2', 0, T0 + 1000))
      .thenEvents([{ type: 'ClientSecretRotated', ...header(T0 + 1000), data: { secretHash: 'h2', previousValidUntil: null } }])
      .thenStateMatches({ secretHash: 'h2', previousSecretHash: null, previousSecretValidUntil: 0 });
    const twice = client.given(registered()).after(rotate('h2', 60, T0 + 1000)).when(rotate('h3', 0, T0 + 2000));
    twice.thenStateMatches({ secretHash: 'h3', previousSecretHash: null });
    expect(acceptedSecretHashes(twice.outcome().state, T0 + 2000)).toEqual(['h3']);
    // With an overlap again, only the secret just replaced is kept, never an older one.
    const chained = client.given(registered()).after(rotate('h2', 60, T0 + 1000)).when(rotate('h3', 60, T0 + 2000));
    expect(acceptedSecretHashes(chained.outcome().state, T0 + 3000)).toEqual(['h3', 'h2']);
  });

  it('refuses to rotate a public client, an unknown client, or with a bad overlap', () => {
    client.given(registered({ type: 'public' }, null)).when(rotate('h2', 0, T0)).thenThrows(DomainError, { code: 'invalid_argument' });
    client.given().when(rotate('h2', 0, T0)).thenThrows(DomainError, { code: 'client_not_found' });
    for (const overlap of [-1, 1.5, CLIENT_LIMITS.maxSecretOverlapSeconds + 1, Number.NaN]) {
      client.given(registered()).when(rotate('h2', overlap, T0)).thenThrows(DomainError, { code: 'invalid_argument' });
    }
    client.given(registered()).when(rotate('', 0, T0)).thenThrows(DomainError, { code: 'invalid_argument' });
  });

  it('disables and enables, each idempotently; a disabled client may still rotate its secret', () => {
    const disabled = client.given(registered()).when({ type: 'DisableClient', revokeFamilies: true, now: T0 + 1 });
    disabled.thenEvents([{ type: 'ClientDisabled', ...header(T0 + 1), data: { revokeFamilies: true } }]).thenStateMatches({ disabled: true });
    disabled.next().when({ type: 'DisableClient', revokeFamilies: false, now: T0 + 2 }).thenNothingHappened();
    disabled.next().when(rotate('h2', 0, T0 + 2)).thenStateMatches({ disabled: true, secretHash: 'h2' });
    const enabled = disabled.next().when({ type: 'EnableClient', now: T0 + 3 });
    enabled.thenEvents([{ type: 'ClientEnabled', ...header(T0 + 3), data: {} }]).thenStateMatches({ disabled: false });
    enabled.next().when({ type: 'EnableClient', now: T0 + 4 }).thenNothingHappened();
    client.given().when({ type: 'DisableClient', revokeFamilies: false, now: T0 }).thenThrows(DomainError, { code: 'client_not_found' });
    client.given().when({ type: 'EnableClient', now: T0 }).thenThrows(DomainError, { code: 'client_not_found' });
  });

  it('changes the policy: the patched fields, the rest kept; nothing when nothing changes', () => {
    const given = client.given(registered({ allowedScopes: ['read'], refreshIdleTtl: 100, refreshAbsoluteTtl: 1000 }));
    given
      .when({ type: 'ChangeClientPolicy', patch: { refreshIdleTtl: 50, allowedScopes: ['read', 'write', 'read'], introspectAll: true }, now: T0 + 5 })
      .thenEvents([
        {
          type: 'ClientPolicyChanged',
          ...header(T0 + 5),
          data: {
            allowedScopes: ['read', 'write'],
            policy: { accessTokenTtl: 300, refreshIdleTtl: 50, refreshAbsoluteTtl: 1000, reuseGraceSeconds: 0 },
            maxFamiliesPerSubject: 200,
            introspectAll: true,
          },
        },
      ])
      .thenStateMatches({ allowedScopes: ['read', 'write'], introspectAll: true, secretHash: 'h1', policy: { accessTokenTtl: 300, refreshIdleTtl: 50, refreshAbsoluteTtl: 1000, reuseGraceSeconds: 0 } });
    given.when({ type: 'ChangeClientPolicy', patch: { refreshIdleTtl: 100, allowedScopes: ['read'] }, now: T0 + 5 }).thenNothingHappened();
    given.when({ type: 'ChangeClientPolicy', patch: {}, now: T0 + 5 }).thenNothingHappened();
  });

  it('validates the merged policy like a registration', () => {
    const given = client.given(registered({ refreshIdleTtl: 100, refreshAbsoluteTtl: 1000 }));
    given.when({ type: 'ChangeClientPolicy', patch: { refreshIdleTtl: 1001 }, now: T0 }).thenThrows(DomainError, { code: 'invalid_argument' });
    given.when({ type: 'ChangeClientPolicy', patch: { refreshAbsoluteTtl: 99 }, now: T0 }).thenThrows(DomainError, { code: 'invalid_argument' });
    given.when({ type: 'ChangeClientPolicy', patch: { maxFamiliesPerSubject: 0 }, now: T0 }).thenThrows(DomainError, { code: 'invalid_argument' });
    given.when({ type: 'ChangeClientPolicy', patch: { allowedScopes: ['bad scope'] }, now: T0 }).thenThrows(DomainError, { code: 'invalid_argument' });
    client.given().when({ type: 'ChangeClientPolicy', patch: {}, now: T0 }).thenThrows(DomainError, { code: 'client_not_found' });
  });

  it('registers introspectAll, and reads events without it as false', () => {
    client.given(registered({ introspectAll: true })).when({ type: 'EnableClient', now: T0 }).thenStateMatches({ introspectAll: true });
    const [old] = registered();
    const { introspectAll: _dropped, ...legacyData } = (old as Extract<ClientEvent, { type: 'ClientRegistered' }>).data;
    expect(evolveClient(initialClientState('web'), { ...old, data: legacyData } as ClientEvent).introspectAll).toBe(false);
  });
});

describe('normaliseClientPolicyPatch', () => {
  it('keeps the fields given and refuses what is not a setting', () => {
    expect(normaliseClientPolicyPatch({ accessTokenTtl: 60, introspectAll: false, reuseGraceSeconds: null })).toEqual({
      ok: true,
      value: { accessTokenTtl: 60, introspectAll: false },
    });
    const bad = normaliseClientPolicyPatch({ clientId: 'x', type: 'public', secret: 's', typo: 1, accessTokenTtl: 0, introspectAll: 'yes' });
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.errors).toHaveLength(6);
    for (const input of [null, [], 'x']) expect(normaliseClientPolicyPatch(input).ok).toBe(false);
  });
});

describe('requireDpop (RFC 9449)', () => {
  const T0 = Date.UTC(2025, 0, 1);
  const client = deciderSpec({
    initialState: () => initialClientState('spa'),
    evolve: evolveClient,
    decide: (command: ClientCommand, state: ClientState) => ({ events: decideClient(command, state) }),
  });
  const register = (input: Record<string, unknown>): ClientEvent[] =>
    decideClient({ type: 'RegisterClient', registration: ok({ clientId: 'spa', type: 'public', ...input }), secretHash: null, now: T0 }, initialClientState('spa'));

  it('is recorded on ClientRegistered only when true, and absent reads as false', () => {
    expect(register({ requireDpop: true })[0].data).toMatchObject({ requireDpop: true });
    expect(register({})[0].data).not.toHaveProperty('requireDpop');
    expect(client.given(register({ requireDpop: true })).state.requireDpop).toBe(true);
    expect(client.given(register({})).state).not.toHaveProperty('requireDpop');
    expect(errors({ clientId: 'spa', requireDpop: 'yes' })).toEqual(['requireDpop must be true or false']);
  });

  it('is patched like the other settings; a patch that changes nothing appends nothing', () => {
    const given = client.given(register({}));
    given.when({ type: 'ChangeClientPolicy', patch: { requireDpop: false }, now: T0 + 1 }).thenNothingHappened();
    const on = given.when({ type: 'ChangeClientPolicy', patch: { requireDpop: true }, now: T0 + 1 });
    on.thenEvents([expect.objectContaining({ type: 'ClientPolicyChanged', data: expect.objectContaining({ requireDpop: true }) })]).thenStateMatches({ requireDpop: true });
    const after = on.next();
    after.when({ type: 'ChangeClientPolicy', patch: { introspectAll: true }, now: T0 + 2 }).thenStateMatches({ requireDpop: true, introspectAll: true });
    after.when({ type: 'ChangeClientPolicy', patch: { requireDpop: true }, now: T0 + 2 }).thenNothingHappened();
    after
      .when({ type: 'ChangeClientPolicy', patch: { requireDpop: false }, now: T0 + 2 })
      .thenEvents([expect.objectContaining({ data: expect.objectContaining({ requireDpop: false }) })])
      .thenStateMatches({ requireDpop: false });
    expect(normaliseClientPolicyPatch({ requireDpop: true })).toEqual({ ok: true, value: { requireDpop: true } });
    expect(normaliseClientPolicyPatch({ requireDpop: 1 })).toEqual({ ok: false, errors: ['requireDpop must be true or false'] });
  });

  it('refuses an unbound issue for a client that requires DPoP, and nothing else', () => {
    expect(dpopRequirementError({ requireDpop: true }, undefined)).toMatch(/requires DPoP-bound families/);
    expect(dpopRequirementError({ requireDpop: true }, 'A'.repeat(43))).toBeNull();
    expect(dpopRequirementError({ requireDpop: false }, undefined)).toBeNull();
    expect(dpopRequirementError({}, undefined)).toBeNull();
  });
});
