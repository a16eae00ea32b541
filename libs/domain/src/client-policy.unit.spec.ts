import {
  CLIENT_DEFAULTS,
  decideClient,
  evolveClient,
  initialClientState,
  normaliseClientRegistration,
  validateFamilyPolicy,
  type ClientRegistration,
} from './client-policy';
import { DomainError } from './errors';

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
      }),
    ).toEqual({
      clientId: 'spa.example:prod-1_A',
      type: 'public',
      secret: null,
      allowedScopes: ['openid', 'read'],
      policy: { accessTokenTtl: 60, refreshIdleTtl: 3600, refreshAbsoluteTtl: 3600, reuseGraceSeconds: 300 },
      maxFamiliesPerSubject: 1,
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
        data: { type: 'confidential', secretHash: 'h1', allowedScopes: ['read'], policy: registration.policy, maxFamiliesPerSubject: 200 },
      },
    ]);
    const state = events.reduce(evolveClient, initialClientState('web'));
    expect(state).toEqual({
      v: 1,
      status: 'registered',
      clientId: 'web',
      type: 'confidential',
      secretHash: 'h1',
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
    expect(event.data.secretHash).toBeNull();
  });

  it('evolve does not mutate its input', () => {
    const s0 = Object.freeze(initialClientState('web'));
    const before = JSON.stringify(s0);
    const [event] = decideClient({ type: 'RegisterClient', registration: ok({ clientId: 'web' }), secretHash: 'h', now: T0 }, s0);
    evolveClient(s0, event);
    expect(JSON.stringify(s0)).toBe(before);
  });
});
