import type { FamilyCommand, FamilyDecision } from './commands';
import { DomainError } from './errors';
import type { FamilyEvent, FamilyPolicy, RequestContext } from './events';
import {
  ANCHOR_INTERVAL,
  authenticatePresentedToken,
  decideFamily,
  describeFamilyStatus,
  evolveFamily,
  expiryReasonAt,
  familyIsActiveAt,
  initialFamilyState,
  isAccessTokenRevoked,
  isAnchorGeneration,
} from './family-decider';
import type { FamilyState } from './family-state';
import { formatFamilyId, formatRefreshToken } from './refresh-token';
import { testSecrets } from './test-secrets';

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const S = 1000;
const POLICY: FamilyPolicy = { accessTokenTtl: 300, refreshIdleTtl: 3600, refreshAbsoluteTtl: 86_400, reuseGraceSeconds: 10 };
const FAMILY = formatFamilyId(Buffer.from('0f1e2d3c4b5a69788796a5b4c3d2e1f0', 'hex'));
const OTHER_FAMILY = formatFamilyId(Buffer.alloc(16, 7));
const CTX: RequestContext = { ip: '203.0.113.7', userAgent: 'Mozilla/5.0', deviceId: 'dev-1' };
const secrets = testSecrets();

function secretOf(n: number): Buffer {
  return Buffer.alloc(32, n);
}

function fold(state: FamilyState, events: FamilyEvent[]): FamilyState {
  return events.reduce(evolveFamily, state);
}

/** A family plus the plaintext secret of every generation (index = generation), as a client sees them. */
interface Fixture {
  state: FamilyState;
  secrets: Buffer[];
  now: number;
}

function issued(policy: Partial<FamilyPolicy> = {}, now = T0): Fixture {
  const decision = decideFamily(issueCmd({ policy: { ...POLICY, ...policy }, now }), initialFamilyState(), secrets);
  return { state: fold(initialFamilyState(), decision.events), secrets: [Buffer.alloc(0), secretOf(1)], now };
}

function issueCmd(over: Partial<Extract<FamilyCommand, { type: 'IssueToken' }>> = {}): FamilyCommand {
  return {
    type: 'IssueToken',
    familyId: FAMILY,
    subject: 'user-1',
    clientId: 'web',
    scope: ['openid', 'read', 'write'],
    audience: ['https://api.example'],
    policy: POLICY,
    initialSecret: secretOf(1),
    context: CTX,
    now: T0,
    ...over,
  };
}

function rotateCmd(generation: number, secret: Buffer, now: number, over: Record<string, unknown> = {}): FamilyCommand {
  return { type: 'RotateToken', familyId: FAMILY, generation, secret, clientId: 'web', now, ...over } as FamilyCommand;
}

/** Rotates the head `times` times, `stepMs` apart. */
function rotated(fx: Fixture, times: number, stepMs = S): Fixture {
  let { state, now } = fx;
  const all = [...fx.secrets];
  for (let i = 0; i < times; i++) {
    now += stepMs;
    const d = decideFamily(rotateCmd(state.generation, all[state.generation], now), state, secrets);
    if (d.rotation?.kind !== 'rotated') throw new Error(`rotation ${i} failed: ${JSON.stringify(d.rotation)}`);
    all[d.rotation.generation] = d.rotation.secret;
    state = fold(state, d.events);
  }
  return { state, secrets: all, now };
}

function types(d: FamilyDecision): string[] {
  return d.events.map((e) => e.type);
}

function rejected(d: FamilyDecision, error = 'invalid_grant'): void {
  expect(d.rotation).toMatchObject({ kind: 'rejected', error });
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !ArrayBuffer.isView(o) && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

describe('IssueToken', () => {
  it('starts a family at generation 1 storing only the hash', () => {
    const d = decideFamily(issueCmd(), initialFamilyState(), secrets);
    expect(d.rotation).toBeUndefined();
    expect(d.events).toEqual([
      {
        type: 'TokenFamilyIssued',
        familyId: FAMILY,
        subject: 'user-1',
        clientId: 'web',
        occurredAt: new Date(T0).toISOString(),
        data: {
          scope: ['openid', 'read', 'write'],
          audience: ['https://api.example'],
          generation: 1,
          tokenHash: secrets.hash(secretOf(1)),
          createdAt: new Date(T0).toISOString(),
          idleExpiresAt: new Date(T0 + 3600 * S).toISOString(),
          absoluteExpiresAt: new Date(T0 + 86_400 * S).toISOString(),
          policy: POLICY,
          context: CTX,
        },
      },
    ]);
    const s = fold(initialFamilyState(), d.events);
    expect(s).toMatchObject({
      status: 'active',
      familyId: FAMILY,
      generation: 1,
      headHash: secrets.hash(secretOf(1)),
      previousHash: null,
      rotatedAt: null,
      anchors: [secrets.hash(secretOf(1))],
      createdAt: T0,
      lastUsedAt: T0,
      lastContext: CTX,
      idleExpiresAt: T0 + 3600 * S,
      absoluteExpiresAt: T0 + 86_400 * S,
    });
  });

  it('clamps idle expiry to the absolute expiry', () => {
    const d = decideFamily(issueCmd({ policy: { ...POLICY, refreshIdleTtl: 60, refreshAbsoluteTtl: 60 } }), initialFamilyState(), secrets);
    const s = fold(initialFamilyState(), d.events);
    expect(s.idleExpiresAt).toBe(s.absoluteExpiresAt);
  });

  it('deduplicates the scope and omits an absent context', () => {
    const d = decideFamily(issueCmd({ scope: ['a', 'b', 'a'], context: undefined }), initialFamilyState(), secrets);
    const data = (d.events[0] as Extract<FamilyEvent, { type: 'TokenFamilyIssued' }>).data;
    expect(data.scope).toEqual(['a', 'b']);
    expect('context' in data).toBe(false);
    expect('lastContext' in fold(initialFamilyState(), d.events)).toBe(false);
  });

  it('fails on any existing stream: active, rotated, revoked, expired, pre-emptively revoked', () => {
    const active = issued();
    const preRevoked = fold(
      initialFamilyState(),
      decideFamily(
        { type: 'RevokeFamily', familyId: FAMILY, reason: 'subject_revoked', subject: 'user-1', clientId: 'web', now: T0 },
        initialFamilyState(),
        secrets,
      ).events,
    );
    const revoked = fold(active.state, decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'logout', now: T0 }, active.state, secrets).events);
    const expired = fold(active.state, decideFamily({ type: 'ExpireIdle', familyId: FAMILY, now: T0 + 3600 * S }, active.state, secrets).events);
    for (const state of [active.state, rotated(active, 2).state, revoked, expired, preRevoked]) {
      let err: unknown;
      try {
        decideFamily(issueCmd(), state, secrets);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DomainError);
      expect((err as DomainError).code).toBe('family_exists');
    }
  });

  it.each([
    ['a 31-byte secret', { initialSecret: Buffer.alloc(31) }],
    ['a 64-byte secret', { initialSecret: Buffer.alloc(64) }],
    ['a malformed family id', { familyId: 'fam_nope' }],
    ['an empty subject', { subject: '' }],
    ['an empty client', { clientId: '' }],
    ['an invalid scope token', { scope: ['a b'] }],
    ['an empty audience entry', { audience: [''] }],
    ['a zero TTL', { policy: { ...POLICY, accessTokenTtl: 0 } }],
    ['idle longer than absolute', { policy: { ...POLICY, refreshIdleTtl: 100, refreshAbsoluteTtl: 50 } }],
    ['grace above 300 s', { policy: { ...POLICY, reuseGraceSeconds: 301 } }],
    ['a fractional now', { now: T0 + 0.5 }],
  ])('rejects %s with invalid_argument', (_name, over) => {
    expect(() => decideFamily(issueCmd(over as never), initialFamilyState(), secrets)).toThrow(
      expect.objectContaining({ code: 'invalid_argument' }),
    );
  });
});

describe('RotateToken', () => {
  describe('rule 1: the live head', () => {
    it('rotates to head+1 with a derived successor, moving idle expiry forward', () => {
      const fx = issued();
      const now = T0 + 60 * S;
      const d = decideFamily(rotateCmd(1, secretOf(1), now, { context: CTX }), fx.state, secrets);
      const successor = secrets.successor(secretOf(1), FAMILY, 2);
      expect(d.rotation).toEqual({
        kind: 'rotated',
        generation: 2,
        secret: successor,
        scope: ['openid', 'read', 'write'],
        refreshExpiresIn: 3600,
      });
      expect(d.events).toEqual([
        {
          type: 'TokenRotated',
          familyId: FAMILY,
          subject: 'user-1',
          clientId: 'web',
          occurredAt: new Date(now).toISOString(),
          data: {
            fromGeneration: 1,
            generation: 2,
            tokenHash: secrets.hash(successor),
            idleExpiresAt: new Date(now + 3600 * S).toISOString(),
            scope: ['openid', 'read', 'write'],
            context: CTX,
          },
        },
      ]);
      const s = fold(fx.state, d.events);
      expect(s).toMatchObject({
        generation: 2,
        headHash: secrets.hash(successor),
        previousHash: secrets.hash(secretOf(1)),
        rotatedAt: now,
        lastUsedAt: now,
        idleExpiresAt: now + 3600 * S,
        anchors: [secrets.hash(secretOf(1))],
      });
    });

    it('chains: each successor is the next head', () => {
      const fx = rotated(issued(), 5);
      expect(fx.state.generation).toBe(6);
      expect(fx.state.headHash).toBe(secrets.hash(fx.secrets[6]));
      expect(fx.state.previousHash).toBe(secrets.hash(fx.secrets[5]));
      expect(new Set(fx.secrets.slice(1).map((b) => b.toString('hex'))).size).toBe(6);
    });

    it('never moves idle expiry past the absolute expiry', () => {
      const fx = issued({ refreshIdleTtl: 86_400 });
      const abs = fx.state.absoluteExpiresAt;
      const d = decideFamily(rotateCmd(1, secretOf(1), abs - 10 * S), fx.state, secrets);
      expect(d.rotation).toMatchObject({ kind: 'rotated', refreshExpiresIn: 10 });
      expect(fold(fx.state, d.events).idleExpiresAt).toBe(abs);
    });

    it('rounds refresh_token_expires_in up to whole seconds', () => {
      const fx = issued({ refreshIdleTtl: 86_400 });
      const d = decideFamily(rotateCmd(1, secretOf(1), fx.state.absoluteExpiresAt - 1500), fx.state, secrets);
      expect(d.rotation).toMatchObject({ kind: 'rotated', refreshExpiresIn: 2 });
    });

    it('never puts a plaintext secret into an event', () => {
      const fx = issued();
      const d = decideFamily(rotateCmd(1, secretOf(1), T0 + S, { context: CTX }), fx.state, secrets);
      const json = JSON.stringify(d.events);
      if (d.rotation?.kind !== 'rotated') throw new Error('expected rotation');
      for (const secret of [secretOf(1), d.rotation.secret]) {
        for (const enc of ['hex', 'base64', 'base64url'] as const) expect(json).not.toContain(secret.toString(enc));
      }
      expect(json).not.toContain(formatRefreshToken({ familyId: FAMILY, generation: 2, secret: d.rotation.secret }).split('_')[3]);
    });
  });

  describe('rule 2: grace window', () => {
    const setup = () => rotated(issued({ reuseGraceSeconds: 10 }), 3); // head 4, rotatedAt = fx.now

    it('replays the same successor for the previous generation 1 ms before the window ends', () => {
      const fx = setup();
      const now = fx.state.rotatedAt! + 10 * S - 1;
      const d = decideFamily(rotateCmd(3, fx.secrets[3], now, { context: CTX }), fx.state, secrets);
      expect(d.rotation).toEqual({
        kind: 'replayed',
        generation: 4,
        secret: fx.secrets[4],
        scope: ['openid', 'read', 'write'],
        refreshExpiresIn: Math.ceil((fx.state.idleExpiresAt - now) / 1000),
      });
      expect(d.events).toEqual([
        expect.objectContaining({
          type: 'TokenRotationReplayed',
          data: { presentedGeneration: 3, generation: 4, scope: ['openid', 'read', 'write'], context: CTX },
        }),
      ]);
      const s = fold(fx.state, d.events);
      expect(s).toEqual({ ...fx.state, lastUsedAt: now, lastContext: CTX });
      // The replayed token is the live head: it rotates normally afterwards.
      expect(decideFamily(rotateCmd(4, d.rotation!.kind === 'replayed' ? d.rotation!.secret : Buffer.alloc(0), now), s, secrets).rotation?.kind).toBe(
        'rotated',
      );
    });

    it('replays at the very moment of the rotation and for a slightly skewed clock', () => {
      const fx = setup();
      for (const now of [fx.state.rotatedAt!, fx.state.rotatedAt! - 500]) {
        expect(decideFamily(rotateCmd(3, fx.secrets[3], now), fx.state, secrets).rotation?.kind).toBe('replayed');
      }
    });

    it('treats the previous generation exactly at the end of the window as reuse', () => {
      const fx = setup();
      const now = fx.state.rotatedAt! + 10 * S;
      const d = decideFamily(rotateCmd(3, fx.secrets[3], now), fx.state, secrets);
      expect(types(d)).toEqual(['TokenReuseDetected', 'TokenFamilyRevoked']);
      rejected(d);
    });

    it('never replays with a grace of 0, even in the same millisecond', () => {
      const fx = rotated(issued({ reuseGraceSeconds: 0 }), 1);
      const d = decideFamily(rotateCmd(1, fx.secrets[1], fx.state.rotatedAt!), fx.state, secrets);
      expect(types(d)).toEqual(['TokenReuseDetected', 'TokenFamilyRevoked']);
    });

    it('replays only one generation back: two back within the window is reuse', () => {
      const fx = rotated(issued({ reuseGraceSeconds: 300 }), 3, 1); // rotations 1 ms apart
      const d = decideFamily(rotateCmd(2, fx.secrets[2], fx.now + 1), fx.state, secrets);
      expect(types(d)).toEqual(['TokenReuseDetected', 'TokenFamilyRevoked']);
    });

    it('narrows the scope of a replay too', () => {
      const fx = setup();
      const d = decideFamily(rotateCmd(3, fx.secrets[3], fx.now + 1, { scope: ['read'] }), fx.state, secrets);
      expect(d.rotation).toMatchObject({ kind: 'replayed', scope: ['read'] });
    });
  });

  describe('rule 3: reuse', () => {
    it('revokes the family when the previous generation comes after the window', () => {
      const fx = rotated(issued({ reuseGraceSeconds: 10 }), 2);
      const now = fx.now + 60 * S;
      const d = decideFamily(rotateCmd(2, fx.secrets[2], now, { context: CTX }), fx.state, secrets);
      expect(d.events).toEqual([
        {
          type: 'TokenReuseDetected',
          familyId: FAMILY,
          subject: 'user-1',
          clientId: 'web',
          occurredAt: new Date(now).toISOString(),
          data: { presentedGeneration: 2, headGeneration: 3, context: CTX },
        },
        {
          type: 'TokenFamilyRevoked',
          familyId: FAMILY,
          subject: 'user-1',
          clientId: 'web',
          occurredAt: new Date(now).toISOString(),
          data: {
            reason: 'reuse_detected',
            revokedAt: new Date(now).toISOString(),
            accessTokensValidUntil: new Date(now + 300 * S).toISOString(),
          },
        },
      ]);
      rejected(d);
      const s = fold(fx.state, d.events);
      expect(s).toMatchObject({ status: 'revoked', revokedAt: now, revokedReason: 'reuse_detected', generation: 3 });
      // The legitimate head is dead too: the family is presumed stolen.
      const after = decideFamily(rotateCmd(3, fx.secrets[3], now + 1), s, secrets);
      expect(after.events).toEqual([expect.objectContaining({ type: 'RefreshRejected', data: { reason: 'revoked', presentedGeneration: 3 } })]);
      rejected(after);
    });

    it('treats any older generation as reuse', () => {
      const fx = rotated(issued(), 5);
      for (const g of [1, 2, 3, 4]) {
        const d = decideFamily(rotateCmd(g, fx.secrets[g], fx.now + 1), fx.state, secrets);
        expect(types(d)).toEqual(['TokenReuseDetected', 'TokenFamilyRevoked']);
        expect(d.events[0]).toMatchObject({ data: { presentedGeneration: g, headGeneration: 6 } });
      }
    });
  });

  describe('rule 4: forgery never revokes', () => {
    const fx = rotated(issued({ reuseGraceSeconds: 300 }), 5);
    const wrong = Buffer.alloc(32, 0xab);

    it.each([
      ['the head', 6, wrong],
      ['the previous generation', 5, wrong],
      ['an old generation', 2, wrong],
      ['generation 1', 1, wrong],
      ['a generation beyond the head (even with the would-be successor)', 7, secrets.successor(fx.secrets[6], FAMILY, 7)],
      ['a far future generation', 1_000_000, wrong],
      ['generation 0', 0, secretOf(1)],
      ['a negative generation', -1, secretOf(1)],
      ['a fractional generation', 1.5, secretOf(1)],
      ['a short secret', 6, fx.secrets[6].subarray(0, 31)],
      ['the head secret claiming another generation', 5, fx.secrets[6]],
    ])('%s', (_name, generation, secret) => {
      const d = decideFamily(rotateCmd(generation as number, secret as Buffer, fx.now + 1, { context: CTX }), fx.state, secrets);
      expect(d.events).toEqual([
        expect.objectContaining({
          type: 'RefreshRejected',
          familyId: FAMILY,
          data: { reason: 'bad_secret', presentedGeneration: generation, context: CTX },
        }),
      ]);
      expect(d.rotation).toEqual({ kind: 'rejected', error: 'invalid_grant', description: expect.any(String) });
      const s = fold(fx.state, d.events);
      expect(s).toEqual(fx.state);
      expect(decideFamily(rotateCmd(6, fx.secrets[6], fx.now + 2), s, secrets).rotation?.kind).toBe('rotated');
    });

    it('a secret from another family is a forgery', () => {
      const other = decideFamily(issueCmd({ familyId: OTHER_FAMILY, initialSecret: secretOf(9) }), initialFamilyState(), secrets);
      expect(other.events).toHaveLength(1);
      const d = decideFamily(rotateCmd(6, secretOf(9), fx.now + 1), fx.state, secrets);
      expect(d.events[0]).toMatchObject({ data: { reason: 'bad_secret' } });
    });

    it('is checked before anything else, so the answer reveals nothing about the family', () => {
      const revoked = fold(fx.state, decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'logout', now: fx.now }, fx.state, secrets).events);
      const forged = decideFamily(rotateCmd(6, wrong, fx.now + 1, { clientId: 'other', scope: ['admin'] }), revoked, secrets);
      expect(forged.events[0]).toMatchObject({ data: { reason: 'bad_secret' } });
      const unknown = decideFamily(rotateCmd(6, wrong, fx.now + 1), initialFamilyState(), secrets);
      expect(unknown).toEqual({ events: [], rotation: forged.rotation });
    });
  });

  describe('old generations across anchors', () => {
    let big: Fixture;
    beforeAll(() => {
      big = rotated(issued({ refreshAbsoluteTtl: 10 * 86_400, refreshIdleTtl: 86_400 }), 599, 10); // head 600
    });

    it('keeps one anchor per ANCHOR_INTERVAL generations', () => {
      expect(ANCHOR_INTERVAL).toBe(256);
      expect(big.state.generation).toBe(600);
      expect(big.state.anchors).toEqual([1, 257, 513].map((g) => secrets.hash(big.secrets[g])));
      expect([1, 257, 513].every(isAnchorGeneration)).toBe(true);
      expect([0, 2, 256, 258, 600].some(isAnchorGeneration)).toBe(false);
    });

    it.each([1, 2, 3, 255, 256, 257, 258, 512, 513, 514, 597, 598])('recognises authentic generation %i as reuse', (g) => {
      const fresh = testSecrets();
      const d = decideFamily(rotateCmd(g, big.secrets[g], big.now + 1), big.state, fresh);
      expect(types(d)).toEqual(['TokenReuseDetected', 'TokenFamilyRevoked']);
      expect(d.events[0]).toMatchObject({ data: { presentedGeneration: g, headGeneration: 600 } });
      expect(fresh.calls.successor).toBeLessThan(ANCHOR_INTERVAL);
    });

    it.each([3, 256, 257, 598, 599, 600])('rejects a forged generation %i without revoking', (g) => {
      const d = decideFamily(rotateCmd(g, big.secrets[g + 1] ?? secretOf(3), big.now + 1), big.state, secrets);
      expect(d.events).toEqual([expect.objectContaining({ type: 'RefreshRejected', data: { reason: 'bad_secret', presentedGeneration: g } })]);
    });

    it('authenticatePresentedToken classifies without deciding anything', () => {
      const auth = (g: number, secret: Buffer) => authenticatePresentedToken(big.state, g, secret, secrets);
      expect(auth(600, big.secrets[600])).toBe('head');
      expect(auth(599, big.secrets[599])).toBe('previous');
      expect(auth(3, big.secrets[3])).toBe('older');
      expect(auth(513, big.secrets[513])).toBe('older');
      expect(auth(3, big.secrets[4])).toBe('forged');
      expect(auth(601, big.secrets[600])).toBe('forged');
      expect(auth(0, big.secrets[1])).toBe('forged');
      expect(authenticatePresentedToken(initialFamilyState(), 1, secretOf(1), secrets)).toBe('forged');
    });

    it('still rotates the head and replays the previous one', () => {
      expect(decideFamily(rotateCmd(600, big.secrets[600], big.now + 1), big.state, secrets).rotation?.kind).toBe('rotated');
      expect(decideFamily(rotateCmd(599, big.secrets[599], big.now + 1), big.state, secrets).rotation?.kind).toBe('replayed');
    });
  });

  describe('client, status and expiry checks (rule 5)', () => {
    it('rejects another client without revoking', () => {
      const fx = rotated(issued(), 1);
      for (const [g, s] of [
        [2, fx.secrets[2]],
        [1, fx.secrets[1]],
      ] as const) {
        const d = decideFamily(rotateCmd(g, s, fx.now + 1, { clientId: 'mobile' }), fx.state, secrets);
        expect(d.events).toEqual([expect.objectContaining({ type: 'RefreshRejected', clientId: 'web', data: { reason: 'client_mismatch', presentedGeneration: g } })]);
        rejected(d);
      }
    });

    it('client mismatch is reported before revoked', () => {
      const fx = issued();
      const s = fold(fx.state, decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'admin', now: T0 }, fx.state, secrets).events);
      expect(decideFamily(rotateCmd(1, secretOf(1), T0 + 1, { clientId: 'mobile' }), s, secrets).events[0]).toMatchObject({
        data: { reason: 'client_mismatch' },
      });
    });

    it('rejects a revoked family', () => {
      const fx = issued();
      const s = fold(fx.state, decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'logout', now: T0 }, fx.state, secrets).events);
      const d = decideFamily(rotateCmd(1, secretOf(1), T0 + 1), s, secrets);
      expect(d.events).toEqual([expect.objectContaining({ type: 'RefreshRejected', data: { reason: 'revoked', presentedGeneration: 1 } })]);
      rejected(d);
    });

    it('expires exactly at idleExpiresAt, not 1 ms before', () => {
      const fx = issued();
      const idle = fx.state.idleExpiresAt;
      expect(decideFamily(rotateCmd(1, secretOf(1), idle - 1), fx.state, secrets).rotation?.kind).toBe('rotated');
      const d = decideFamily(rotateCmd(1, secretOf(1), idle), fx.state, secrets);
      expect(d.events).toEqual([expect.objectContaining({ type: 'RefreshRejected', data: { reason: 'expired', presentedGeneration: 1 } })]);
      rejected(d);
    });

    it('expires exactly at absoluteExpiresAt even when idle expiry was kept moving', () => {
      let fx = issued({ refreshIdleTtl: 3600, refreshAbsoluteTtl: 7200 });
      fx = rotated(fx, 3, 1800 * S); // at T0+5400 s, idle = min(T0+9000 s, T0+7200 s)
      expect(fx.state.idleExpiresAt).toBe(fx.state.absoluteExpiresAt);
      const abs = fx.state.absoluteExpiresAt;
      expect(decideFamily(rotateCmd(4, fx.secrets[4], abs - 1), fx.state, secrets).rotation).toMatchObject({ kind: 'rotated', refreshExpiresIn: 1 });
      expect(decideFamily(rotateCmd(4, fx.secrets[4], abs), fx.state, secrets).events[0]).toMatchObject({ data: { reason: 'expired' } });
    });

    it('rejects a recorded expiry regardless of the clock', () => {
      const fx = issued();
      const s = fold(fx.state, decideFamily({ type: 'ExpireIdle', familyId: FAMILY, now: fx.state.idleExpiresAt }, fx.state, secrets).events);
      expect(s.status).toBe('expired');
      expect(decideFamily(rotateCmd(1, secretOf(1), T0 + 1), s, secrets).events[0]).toMatchObject({ data: { reason: 'expired' } });
    });

    it('an authentic old token on an expired family is just expired, not reuse', () => {
      const fx = rotated(issued(), 2);
      const d = decideFamily(rotateCmd(1, fx.secrets[1], fx.state.idleExpiresAt), fx.state, secrets);
      expect(types(d)).toEqual(['RefreshRejected']);
      expect(d.events[0]).toMatchObject({ data: { reason: 'expired' } });
    });
  });

  describe('rule 7: scope', () => {
    it('narrows the access token only; the family keeps its scope', () => {
      const fx = issued();
      const d = decideFamily(rotateCmd(1, secretOf(1), T0 + 1, { scope: ['read', 'read'] }), fx.state, secrets);
      expect(d.rotation).toMatchObject({ kind: 'rotated', scope: ['read'] });
      expect(d.events[0]).toMatchObject({ data: { scope: ['read'] } });
      const s = fold(fx.state, d.events);
      expect(s.scope).toEqual(['openid', 'read', 'write']);
      const next = decideFamily(rotateCmd(2, (d.rotation as { secret: Buffer }).secret, T0 + 2), s, secrets);
      expect(next.rotation).toMatchObject({ kind: 'rotated', scope: ['openid', 'read', 'write'] });
      // Narrowing once does not stop a later request for the full original scope.
      const full = decideFamily(rotateCmd(2, (d.rotation as { secret: Buffer }).secret, T0 + 2, { scope: ['write', 'openid'] }), s, secrets);
      expect(full.rotation).toMatchObject({ kind: 'rotated', scope: ['write', 'openid'] });
    });

    it('allows an empty requested scope', () => {
      const fx = issued();
      expect(decideFamily(rotateCmd(1, secretOf(1), T0 + 1, { scope: [] }), fx.state, secrets).rotation).toMatchObject({ kind: 'rotated', scope: [] });
    });

    it.each([[['admin']], [['read', 'admin']], [['a b']], [['']]])('rejects %j with invalid_scope and no rotation', (scope) => {
      const fx = issued();
      const d = decideFamily(rotateCmd(1, secretOf(1), T0 + 1, { scope }), fx.state, secrets);
      expect(d.events).toEqual([expect.objectContaining({ type: 'RefreshRejected', data: { reason: 'invalid_scope', presentedGeneration: 1 } })]);
      rejected(d, 'invalid_scope');
      expect(fold(fx.state, d.events)).toEqual(fx.state);
    });

    it('a superseded token asking for a wider scope is still reuse (the alarm cannot be dodged)', () => {
      const fx = rotated(issued({ reuseGraceSeconds: 0 }), 2);
      const d = decideFamily(rotateCmd(1, fx.secrets[1], fx.now + 1, { scope: ['admin'] }), fx.state, secrets);
      expect(d.events.map((e) => e.type)).toEqual(['TokenReuseDetected', 'TokenFamilyRevoked']);
      rejected(d, 'invalid_grant');
    });
  });

  it('rejects an unknown family with no events', () => {
    const d = decideFamily(rotateCmd(1, secretOf(1), T0), initialFamilyState(), secrets);
    expect(d.events).toEqual([]);
    rejected(d);
  });
});

describe('RevokeFamily', () => {
  it('revokes an active family; access tokens are covered until revokedAt + accessTokenTtl', () => {
    const fx = issued();
    const now = T0 + 5 * S;
    const d = decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'logout', now }, fx.state, secrets);
    expect(d.events).toEqual([
      {
        type: 'TokenFamilyRevoked',
        familyId: FAMILY,
        subject: 'user-1',
        clientId: 'web',
        occurredAt: new Date(now).toISOString(),
        data: { reason: 'logout', revokedAt: new Date(now).toISOString(), accessTokensValidUntil: new Date(now + 300 * S).toISOString() },
      },
    ]);
    const s = fold(fx.state, d.events);
    expect(s).toMatchObject({ status: 'revoked', revokedAt: now, revokedReason: 'logout' });
    expect(isAccessTokenRevoked(s, 'any-jti')).toBe(true);
  });

  it('is idempotent for revoked and expired families', () => {
    const fx = issued();
    const revoked = fold(fx.state, decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'logout', now: T0 }, fx.state, secrets).events);
    expect(decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'admin', now: T0 + 1 }, revoked, secrets).events).toEqual([]);
    const expired = fold(fx.state, decideFamily({ type: 'ExpireIdle', familyId: FAMILY, now: fx.state.idleExpiresAt }, fx.state, secrets).events);
    expect(decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'admin', now: fx.state.idleExpiresAt + 1 }, expired, secrets).events).toEqual([]);
  });

  it('keeps the first revocation if a second one is ever replayed', () => {
    const fx = issued();
    const e1 = decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'logout', now: T0 + 1 }, fx.state, secrets).events;
    const e2 = decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'admin', now: T0 + 2 }, fx.state, secrets).events;
    expect(fold(fx.state, [...e1, ...e2])).toMatchObject({ revokedAt: T0 + 1, revokedReason: 'logout' });
  });

  it('still revokes an active family whose time ran out but whose expiry was not recorded', () => {
    const fx = issued();
    const d = decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'admin', now: fx.state.absoluteExpiresAt + 1 }, fx.state, secrets);
    expect(types(d)).toEqual(['TokenFamilyRevoked']);
  });

  it('pre-emptively revokes a family that does not exist yet; issuing it then fails', () => {
    const d = decideFamily(
      { type: 'RevokeFamily', familyId: FAMILY, reason: 'subject_revoked', subject: 'user-1', clientId: 'web', now: T0 },
      initialFamilyState(),
      secrets,
    );
    expect(d.events).toEqual([
      {
        type: 'TokenFamilyRevoked',
        familyId: FAMILY,
        subject: 'user-1',
        clientId: 'web',
        occurredAt: new Date(T0).toISOString(),
        data: { reason: 'subject_revoked', revokedAt: new Date(T0).toISOString(), accessTokensValidUntil: new Date(T0).toISOString() },
      },
    ]);
    const s = fold(initialFamilyState(), d.events);
    expect(s).toMatchObject({ status: 'revoked', familyId: FAMILY, subject: 'user-1', clientId: 'web', revokedReason: 'subject_revoked' });
    expect(() => decideFamily(issueCmd({ now: T0 + 1 }), s, secrets)).toThrow(expect.objectContaining({ code: 'family_exists' }));
    expect(decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'logout', now: T0 + 2 }, s, secrets).events).toEqual([]);
    // A token can never have been issued on it, so rotation is a forgery.
    expect(decideFamily(rotateCmd(1, secretOf(1), T0 + 3), s, secrets).events[0]).toMatchObject({ data: { reason: 'bad_secret' } });
  });

  it('needs subject and clientId to revoke a family that does not exist', () => {
    expect(() => decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'admin', now: T0 }, initialFamilyState(), secrets)).toThrow(
      expect.objectContaining({ code: 'missing_subject' }),
    );
    expect(() =>
      decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'admin', subject: 'u', now: T0 }, initialFamilyState(), secrets),
    ).toThrow(expect.objectContaining({ code: 'missing_subject' }));
  });

  it('needs a reason', () => {
    expect(() => decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: '', now: T0 }, issued().state, secrets)).toThrow(DomainError);
  });
});

describe('ExpireIdle', () => {
  it('does nothing before the idle deadline', () => {
    const fx = issued();
    expect(decideFamily({ type: 'ExpireIdle', familyId: FAMILY, now: fx.state.idleExpiresAt - 1 }, fx.state, secrets).events).toEqual([]);
  });

  it('records idle expiry at the deadline, with the deadline as expiredAt', () => {
    const fx = issued();
    const now = fx.state.idleExpiresAt + 7 * S; // the sweeper is a little late
    const d = decideFamily({ type: 'ExpireIdle', familyId: FAMILY, now }, fx.state, secrets);
    expect(d.events).toEqual([
      {
        type: 'TokenFamilyExpired',
        familyId: FAMILY,
        subject: 'user-1',
        clientId: 'web',
        occurredAt: new Date(now).toISOString(),
        data: { reason: 'idle', expiredAt: new Date(fx.state.idleExpiresAt).toISOString() },
      },
    ]);
    const s = fold(fx.state, d.events);
    expect(s).toMatchObject({ status: 'expired', expiredReason: 'idle' });
    expect(decideFamily({ type: 'ExpireIdle', familyId: FAMILY, now: now + 1 }, s, secrets).events).toEqual([]);
  });

  it('says absolute when both deadlines coincide', () => {
    const fx = issued({ refreshIdleTtl: 100, refreshAbsoluteTtl: 100 });
    const d = decideFamily({ type: 'ExpireIdle', familyId: FAMILY, now: fx.state.absoluteExpiresAt }, fx.state, secrets);
    expect(d.events[0]).toMatchObject({ data: { reason: 'absolute', expiredAt: new Date(fx.state.absoluteExpiresAt).toISOString() } });
  });

  it('says absolute when idle expiry was clamped to absolute by rotations', () => {
    const fx = rotated(issued({ refreshIdleTtl: 3600, refreshAbsoluteTtl: 7200 }), 3, 1800 * S);
    const d = decideFamily({ type: 'ExpireIdle', familyId: FAMILY, now: fx.state.absoluteExpiresAt + 1 }, fx.state, secrets);
    expect(d.events[0]).toMatchObject({ data: { reason: 'absolute' } });
  });

  it('reports the deadline that passed first when the sweeper was down past both', () => {
    const fx = issued({ refreshIdleTtl: 100, refreshAbsoluteTtl: 1000 });
    const d = decideFamily({ type: 'ExpireIdle', familyId: FAMILY, now: fx.state.absoluteExpiresAt + 1 }, fx.state, secrets);
    expect(d.events[0]).toMatchObject({ data: { reason: 'idle', expiredAt: new Date(fx.state.idleExpiresAt).toISOString() } });
  });

  it('does nothing for revoked, expired or unknown families', () => {
    const fx = issued();
    const revoked = fold(fx.state, decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'logout', now: T0 }, fx.state, secrets).events);
    const late = fx.state.absoluteExpiresAt + 1;
    expect(decideFamily({ type: 'ExpireIdle', familyId: FAMILY, now: late }, revoked, secrets).events).toEqual([]);
    expect(decideFamily({ type: 'ExpireIdle', familyId: FAMILY, now: late }, initialFamilyState(), secrets).events).toEqual([]);
    // A stray expiry after a revocation (e.g. a sweeper race) does not un-revoke.
    const stray = decideFamily({ type: 'ExpireIdle', familyId: FAMILY, now: late }, fx.state, secrets).events;
    expect(fold(revoked, stray).status).toBe('revoked');
  });
});

describe('RevokeAccessToken', () => {
  const cmd = (jti: string, expiresAt: number, now: number): FamilyCommand => ({ type: 'RevokeAccessToken', familyId: FAMILY, jti, expiresAt, now });

  it('records a jti once, until it expires', () => {
    const fx = issued();
    const exp = T0 + 300 * S;
    const d = decideFamily(cmd('jti-1', exp, T0 + S), fx.state, secrets);
    expect(d.events).toEqual([
      {
        type: 'AccessTokenRevoked',
        familyId: FAMILY,
        subject: 'user-1',
        clientId: 'web',
        occurredAt: new Date(T0 + S).toISOString(),
        data: { jti: 'jti-1', expiresAt: new Date(exp).toISOString() },
      },
    ]);
    const s = fold(fx.state, d.events);
    expect(s.revokedJtis).toEqual({ 'jti-1': exp });
    expect(isAccessTokenRevoked(s, 'jti-1')).toBe(true);
    expect(isAccessTokenRevoked(s, 'jti-2')).toBe(false);
    expect(decideFamily(cmd('jti-1', exp, T0 + 2 * S), s, secrets).events).toEqual([]);
  });

  it('prunes revoked jtis once an event occurs at or after their expiry', () => {
    const fx = issued();
    const exp = T0 + 300 * S;
    let s = fold(fx.state, decideFamily(cmd('jti-1', exp, T0 + S), fx.state, secrets).events);
    s = fold(s, decideFamily(cmd('jti-2', exp + 1, T0 + 2 * S), s, secrets).events);
    const just = fold(s, decideFamily(rotateCmd(1, secretOf(1), exp - 1), s, secrets).events);
    expect(Object.keys(just.revokedJtis)).toEqual(['jti-1', 'jti-2']);
    const at = fold(s, decideFamily(rotateCmd(1, secretOf(1), exp), s, secrets).events);
    expect(at.revokedJtis).toEqual({ 'jti-2': exp + 1 });
  });

  it('ignores tokens already expired, and revoked or unknown families', () => {
    const fx = issued();
    expect(decideFamily(cmd('j', T0, T0), fx.state, secrets).events).toEqual([]);
    const revoked = fold(fx.state, decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'logout', now: T0 }, fx.state, secrets).events);
    expect(decideFamily(cmd('j', T0 + 300 * S, T0 + 1), revoked, secrets).events).toEqual([]);
    expect(decideFamily(cmd('j', T0 + 300 * S, T0 + 1), initialFamilyState(), secrets).events).toEqual([]);
  });

  it('still records a live access token of an expired family (it can outlive the family)', () => {
    const fx = issued();
    const expired = fold(fx.state, decideFamily({ type: 'ExpireIdle', familyId: FAMILY, now: fx.state.idleExpiresAt }, fx.state, secrets).events);
    expect(types(decideFamily(cmd('j', fx.state.idleExpiresAt + 200 * S, fx.state.idleExpiresAt + 1), expired, secrets))).toEqual(['AccessTokenRevoked']);
  });

  it('handles hostile jti values as plain keys', () => {
    const fx = issued();
    let s = fx.state;
    for (const jti of ['__proto__', 'constructor', 'hasOwnProperty']) {
      expect(isAccessTokenRevoked(s, jti)).toBe(false);
      s = fold(s, decideFamily(cmd(jti, T0 + 300 * S, T0 + 1), s, secrets).events);
      expect(isAccessTokenRevoked(s, jti)).toBe(true);
    }
    expect(Object.keys(JSON.parse(JSON.stringify(s)).revokedJtis)).toHaveLength(3);
    expect(Object.getPrototypeOf(s.revokedJtis)).toBe(Object.prototype);
  });
});

describe('status helpers', () => {
  it('account for time-based expiry without a recorded event', () => {
    const fx = issued({ refreshIdleTtl: 100, refreshAbsoluteTtl: 1000 });
    const idle = fx.state.idleExpiresAt;
    expect(familyIsActiveAt(fx.state, idle - 1)).toBe(true);
    expect(describeFamilyStatus(fx.state, idle - 1)).toBe('active');
    expect(expiryReasonAt(fx.state, idle - 1)).toBeNull();
    expect(familyIsActiveAt(fx.state, idle)).toBe(false);
    expect(describeFamilyStatus(fx.state, idle)).toBe('expired');
    expect(expiryReasonAt(fx.state, idle)).toBe('idle');
    expect(describeFamilyStatus(initialFamilyState(), T0)).toBe('none');
    expect(familyIsActiveAt(initialFamilyState(), T0)).toBe(false);
    const revoked = fold(fx.state, decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'logout', now: T0 }, fx.state, secrets).events);
    expect(describeFamilyStatus(revoked, T0)).toBe('revoked');
    expect(familyIsActiveAt(revoked, T0)).toBe(false);
    expect(expiryReasonAt(revoked, idle)).toBeNull();
  });
});

describe('state', () => {
  function richState(): FamilyState {
    let fx = rotated(issued({ reuseGraceSeconds: 30 }), 3);
    const events: FamilyEvent[] = [];
    const push = (d: FamilyDecision) => {
      events.push(...d.events);
      fx = { ...fx, state: fold(fx.state, d.events) };
    };
    push(decideFamily(rotateCmd(3, fx.secrets[3], fx.now + 1, { context: CTX }), fx.state, secrets)); // replay
    push(decideFamily(rotateCmd(4, Buffer.alloc(32), fx.now + 2), fx.state, secrets)); // forgery
    push(decideFamily({ type: 'RevokeAccessToken', familyId: FAMILY, jti: 'j1', expiresAt: fx.now + 300 * S, now: fx.now + 3 }, fx.state, secrets));
    expect(events.map((e) => e.type)).toEqual(['TokenRotationReplayed', 'RefreshRejected', 'AccessTokenRevoked']);
    return fx.state;
  }

  it('round-trips through JSON unchanged (it is stored as a snapshot)', () => {
    for (const state of [initialFamilyState(), issued().state, richState()]) {
      const copy = JSON.parse(JSON.stringify(state)) as FamilyState;
      expect(copy).toStrictEqual(state);
    }
    const s = richState();
    const copy = JSON.parse(JSON.stringify(s)) as FamilyState;
    const cmd = rotateCmd(4, Buffer.alloc(32, 1), T0 + 99 * S);
    expect(decideFamily(cmd, copy, secrets)).toEqual(decideFamily(cmd, s, secrets));
  });

  it('events round-trip through JSON and evolve to the same state', () => {
    const fx = issued();
    const d = decideFamily(rotateCmd(1, secretOf(1), T0 + 1, { context: CTX }), fx.state, secrets);
    const viaJson = JSON.parse(JSON.stringify(d.events)) as FamilyEvent[];
    expect(fold(fx.state, viaJson)).toStrictEqual(fold(fx.state, d.events));
  });

  it('evolve never mutates its input, for every event type', () => {
    const fx = rotated(issued({ reuseGraceSeconds: 30 }), 2);
    const base = deepFreeze(JSON.parse(JSON.stringify(fx.state)) as FamilyState);
    const before = JSON.stringify(base);
    const decisions = [
      decideFamily(rotateCmd(3, fx.secrets[3], fx.now + 1, { context: CTX }), base, secrets),
      decideFamily(rotateCmd(2, fx.secrets[2], fx.now + 1, { context: CTX }), base, secrets),
      decideFamily(rotateCmd(1, fx.secrets[1], fx.now + 1), base, secrets),
      decideFamily(rotateCmd(3, Buffer.alloc(32), fx.now + 1), base, secrets),
      decideFamily({ type: 'RevokeFamily', familyId: FAMILY, reason: 'logout', now: fx.now + 1 }, base, secrets),
      decideFamily({ type: 'ExpireIdle', familyId: FAMILY, now: base.absoluteExpiresAt }, base, secrets),
      decideFamily({ type: 'RevokeAccessToken', familyId: FAMILY, jti: 'x', expiresAt: fx.now + 10, now: fx.now + 1 }, base, secrets),
    ];
    const seen = new Set<string>();
    for (const d of decisions) {
      for (const e of d.events) {
        seen.add(e.type);
        evolveFamily(base, deepFreeze(e));
      }
    }
    const jtiState = deepFreeze(fold(base, decisions[6].events));
    evolveFamily(jtiState, deepFreeze({ ...decisions[0].events[0], occurredAt: new Date(fx.now + 20).toISOString() }));
    expect(JSON.stringify(base)).toBe(before);
    expect(seen).toEqual(
      new Set(['TokenRotated', 'TokenRotationReplayed', 'TokenReuseDetected', 'TokenFamilyRevoked', 'RefreshRejected', 'TokenFamilyExpired', 'AccessTokenRevoked']),
    );
    const issuedEvents = decideFamily(issueCmd(), deepFreeze(initialFamilyState()), secrets).events;
    expect(() => evolveFamily(deepFreeze(initialFamilyState()), deepFreeze(issuedEvents[0]))).not.toThrow();
  });

  it('decide does not mutate state or command', () => {
    const fx = rotated(issued(), 1);
    const state = deepFreeze(fx.state);
    const cmd = deepFreeze(rotateCmd(2, fx.secrets[2], fx.now + 1, { context: { ...CTX }, scope: ['read'] }));
    expect(() => decideFamily(cmd, state, secrets)).not.toThrow();
  });

  it('refuses a command for another family than the state', () => {
    const fx = issued();
    expect(() => decideFamily({ ...(rotateCmd(1, secretOf(1), T0 + 1) as object), familyId: OTHER_FAMILY } as FamilyCommand, fx.state, secrets)).toThrow(
      expect.objectContaining({ code: 'invalid_argument' }),
    );
  });

  it('refuses an unknown command type', () => {
    expect(() => decideFamily({ type: 'Nope', familyId: FAMILY, now: T0 } as never, initialFamilyState(), secrets)).toThrow(DomainError);
  });
});
