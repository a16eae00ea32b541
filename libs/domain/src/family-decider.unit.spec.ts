import type { FamilyCommand, RotationOutcome } from './commands';
import { DomainError } from './errors';
import type { FamilyEvent, FamilyPolicy, RequestContext, RevocationReason } from './events';
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
import { MAX_REJECTION_SOURCES, REJECTION_RECORD_INTERVAL_MS, tallyRejection, type RejectionTally } from './rejection-tally';
import { decideSubject, initialSubjectState } from './subject-decider';
import { deciderSpec, type Given } from './testing/decider-spec';
import { testSecrets } from './testing/test-secrets';
import type { TokenSecrets } from './token-secrets';

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const S = 1000;
const POLICY: FamilyPolicy = { accessTokenTtl: 300, refreshIdleTtl: 3600, refreshAbsoluteTtl: 86_400, reuseGraceSeconds: 10 };
const FAMILY = formatFamilyId(Buffer.from('0f1e2d3c4b5a69788796a5b4c3d2e1f0', 'hex'));
const OTHER_FAMILY = formatFamilyId(Buffer.alloc(16, 7));
const CTX: RequestContext = { ip: '203.0.113.7', userAgent: 'Mozilla/5.0', deviceId: 'dev-1' };
const REJECTED = { kind: 'rejected', error: 'invalid_grant' } as const;
const REUSE = ['TokenReuseDetected', 'TokenFamilyRevoked'] as const;
const secrets = testSecrets();
const iso = (ms: number) => new Date(ms).toISOString();
/** What every event of the family carries besides its type and data. */
const header = (now: number) => ({ familyId: FAMILY, subject: 'user-1', clientId: 'web', occurredAt: iso(now) });

/** The family decider with `tokenSecrets`; a rotation's outcome is the result. */
function familySpec(tokenSecrets: TokenSecrets) {
  return deciderSpec({
    initialState: initialFamilyState,
    evolve: evolveFamily,
    decide: (command: FamilyCommand, state: FamilyState) => {
      const { events, rotation } = decideFamily(command, state, tokenSecrets);
      return { events, result: rotation };
    },
  });
}

const family = familySpec(secrets);

function secretOf(n: number): Buffer {
  return Buffer.alloc(32, n);
}

/** A family's history plus the plaintext secret of every generation (index = generation), as a client sees them. */
interface Fixture {
  given: Given<FamilyCommand, FamilyEvent, FamilyState, RotationOutcome>;
  state: FamilyState;
  secrets: Buffer[];
  now: number;
}

function issued(policy: Partial<FamilyPolicy> = {}, now = T0): Fixture {
  const given = family.given().after(issueCmd({ policy: { ...POLICY, ...policy }, now }));
  return { given, state: given.state, secrets: [Buffer.alloc(0), secretOf(1)], now };
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

function revokeCmd(reason: RevocationReason, now: number, over: { subject?: string; clientId?: string } = {}): FamilyCommand {
  return { type: 'RevokeFamily', familyId: FAMILY, reason, now, ...over };
}

function expireCmd(now: number): FamilyCommand {
  return { type: 'ExpireIdle', familyId: FAMILY, now };
}

/** Rotates the head `times` times, `stepMs` apart. */
function rotated(fx: Fixture, times: number, stepMs = S, over: Record<string, unknown> = {}): Fixture {
  let { given, now } = fx;
  const all = [...fx.secrets];
  for (let i = 0; i < times; i++) {
    now += stepMs;
    const when = given.when(rotateCmd(given.state.generation, all[given.state.generation], now, over));
    const { result } = when.outcome();
    if (result?.kind !== 'rotated') throw new Error(`rotation ${i} failed: ${JSON.stringify(result)}`);
    all[result.generation] = result.secret;
    given = when.next();
  }
  return { given, state: given.state, secrets: all, now };
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
    family
      .given()
      .when(issueCmd())
      .thenResult(undefined)
      .thenEvents([
        {
          type: 'TokenFamilyIssued',
          ...header(T0),
          data: {
            scope: ['openid', 'read', 'write'],
            audience: ['https://api.example'],
            generation: 1,
            tokenHash: secrets.hash(secretOf(1)),
            createdAt: iso(T0),
            idleExpiresAt: iso(T0 + 3600 * S),
            absoluteExpiresAt: iso(T0 + 86_400 * S),
            policy: POLICY,
            context: CTX,
          },
        },
      ])
      .thenStateMatches({
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
    const { state } = family.given().when(issueCmd({ policy: { ...POLICY, refreshIdleTtl: 60, refreshAbsoluteTtl: 60 } })).outcome();
    expect(state.idleExpiresAt).toBe(state.absoluteExpiresAt);
  });

  it('deduplicates the scope and omits an absent context', () => {
    const { events, state } = family.given().when(issueCmd({ scope: ['a', 'b', 'a'], context: undefined })).outcome();
    const data = (events[0] as Extract<FamilyEvent, { type: 'TokenFamilyIssued' }>).data;
    expect(data.scope).toEqual(['a', 'b']);
    expect('context' in data).toBe(false);
    expect('lastContext' in state).toBe(false);
  });

  it('fails on any existing stream: active, rotated, revoked, expired, pre-emptively revoked', () => {
    const active = issued();
    const histories = [
      active.given,
      rotated(active, 2).given,
      active.given.after(revokeCmd('logout', T0)),
      active.given.after(expireCmd(T0 + 3600 * S)),
      family.given().after(revokeCmd('subject_revoked', T0, { subject: 'user-1', clientId: 'web' })),
    ];
    for (const given of histories) given.when(issueCmd()).thenThrows(DomainError, { code: 'family_exists' });
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
    family.given().when(issueCmd(over as never)).thenThrows({ code: 'invalid_argument' });
  });
});

describe('RotateToken', () => {
  describe('rule 1: the live head', () => {
    it('rotates to head+1 with a derived successor, moving idle expiry forward', () => {
      const now = T0 + 60 * S;
      const successor = secrets.successor(secretOf(1), FAMILY, 2);
      issued()
        .given.when(rotateCmd(1, secretOf(1), now, { context: CTX }))
        .thenResult({ kind: 'rotated', generation: 2, secret: successor, scope: ['openid', 'read', 'write'], refreshExpiresIn: 3600 })
        .thenEvents([
          {
            type: 'TokenRotated',
            ...header(now),
            data: {
              fromGeneration: 1,
              generation: 2,
              tokenHash: secrets.hash(successor),
              idleExpiresAt: iso(now + 3600 * S),
              scope: ['openid', 'read', 'write'],
              context: CTX,
            },
          },
        ])
        .thenStateMatches({
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
      const late = fx.given.when(rotateCmd(1, secretOf(1), abs - 10 * S));
      late.thenResultMatches({ kind: 'rotated', refreshExpiresIn: 10 }).thenStateMatches({ idleExpiresAt: abs });
    });

    it('rounds refresh_token_expires_in up to whole seconds', () => {
      const fx = issued({ refreshIdleTtl: 86_400 });
      fx.given.when(rotateCmd(1, secretOf(1), fx.state.absoluteExpiresAt - 1500)).thenResultMatches({ kind: 'rotated', refreshExpiresIn: 2 });
    });

    it('never puts a plaintext secret into an event', () => {
      const { events, result } = issued().given.when(rotateCmd(1, secretOf(1), T0 + S, { context: CTX })).outcome();
      const json = JSON.stringify(events);
      if (result?.kind !== 'rotated') throw new Error('expected rotation');
      for (const secret of [secretOf(1), result.secret]) {
        for (const enc of ['hex', 'base64', 'base64url'] as const) expect(json).not.toContain(secret.toString(enc));
      }
      expect(json).not.toContain(formatRefreshToken({ familyId: FAMILY, generation: 2, secret: result.secret }).split('_')[3]);
    });
  });

  describe('rule 2: grace window', () => {
    const setup = () => rotated(issued({ reuseGraceSeconds: 10 }), 3); // head 4, rotatedAt = fx.now

    it('replays the same successor for the previous generation 1 ms before the window ends', () => {
      const fx = setup();
      const now = fx.state.rotatedAt! + 10 * S - 1;
      const replay = fx.given
        .when(rotateCmd(3, fx.secrets[3], now, { context: CTX }))
        .thenResult({
          kind: 'replayed',
          generation: 4,
          secret: fx.secrets[4],
          scope: ['openid', 'read', 'write'],
          refreshExpiresIn: Math.ceil((fx.state.idleExpiresAt - now) / 1000),
        })
        .thenEvents([
          expect.objectContaining({
            type: 'TokenRotationReplayed',
            data: { presentedGeneration: 3, generation: 4, scope: ['openid', 'read', 'write'], context: CTX },
          }),
        ])
        .thenState({ ...fx.state, lastUsedAt: now, lastContext: CTX });
      // The replayed token is the live head: it rotates normally afterwards.
      const { result } = replay.outcome();
      replay.next().when(rotateCmd(4, result?.kind === 'replayed' ? result.secret : Buffer.alloc(0), now)).thenResultMatches({ kind: 'rotated' });
    });

    it('replays at the very moment of the rotation and for a slightly skewed clock', () => {
      const fx = setup();
      for (const now of [fx.state.rotatedAt!, fx.state.rotatedAt! - 500]) {
        fx.given.when(rotateCmd(3, fx.secrets[3], now)).thenResultMatches({ kind: 'replayed' });
      }
    });

    it('treats the previous generation exactly at the end of the window as reuse', () => {
      const fx = setup();
      fx.given.when(rotateCmd(3, fx.secrets[3], fx.state.rotatedAt! + 10 * S)).thenEventTypes(REUSE).thenResultMatches(REJECTED);
    });

    it('never replays with a grace of 0, even in the same millisecond', () => {
      const fx = rotated(issued({ reuseGraceSeconds: 0 }), 1);
      fx.given.when(rotateCmd(1, fx.secrets[1], fx.state.rotatedAt!)).thenEventTypes(REUSE);
    });

    it('replays only one generation back: two back within the window is reuse', () => {
      const fx = rotated(issued({ reuseGraceSeconds: 300 }), 3, 1); // rotations 1 ms apart
      fx.given.when(rotateCmd(2, fx.secrets[2], fx.now + 1)).thenEventTypes(REUSE);
    });

    it('narrows the scope of a replay too', () => {
      const fx = setup();
      fx.given.when(rotateCmd(3, fx.secrets[3], fx.now + 1, { scope: ['read'] })).thenResultMatches({ kind: 'replayed', scope: ['read'] });
    });
  });

  describe('rule 3: reuse', () => {
    it('revokes the family when the previous generation comes after the window', () => {
      const fx = rotated(issued({ reuseGraceSeconds: 10 }), 2);
      const now = fx.now + 60 * S;
      fx.given
        .when(rotateCmd(2, fx.secrets[2], now, { context: CTX }))
        .thenEvents([
          { type: 'TokenReuseDetected', ...header(now), data: { presentedGeneration: 2, headGeneration: 3, context: CTX } },
          { type: 'TokenFamilyRevoked', ...header(now), data: { reason: 'reuse_detected', revokedAt: iso(now), accessTokensValidUntil: iso(now + 300 * S) } },
        ])
        .thenResultMatches(REJECTED)
        .thenStateMatches({ status: 'revoked', revokedAt: now, revokedReason: 'reuse_detected', generation: 3 })
        // The legitimate head is dead too: the family is presumed stolen.
        .next()
        .when(rotateCmd(3, fx.secrets[3], now + 1))
        .thenEvents([expect.objectContaining({ type: 'RefreshRejected', data: { reason: 'revoked', presentedGeneration: 3 } })])
        .thenResultMatches(REJECTED);
    });

    it('treats any older generation as reuse', () => {
      const fx = rotated(issued(), 5);
      for (const g of [1, 2, 3, 4]) {
        const { events } = fx.given.when(rotateCmd(g, fx.secrets[g], fx.now + 1)).thenEventTypes(REUSE).outcome();
        expect(events[0]).toMatchObject({ data: { presentedGeneration: g, headGeneration: 6 } });
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
      fx.given
        .when(rotateCmd(generation as number, secret as Buffer, fx.now + 1, { context: CTX }))
        .thenEvents([
          expect.objectContaining({ type: 'RefreshRejected', familyId: FAMILY, data: { reason: 'bad_secret', presentedGeneration: generation, context: CTX } }),
        ])
        .thenResult({ kind: 'rejected', error: 'invalid_grant', description: expect.any(String) })
        // Nothing changes but when a refusal was last recorded (which only paces the recording).
        .thenState({ ...fx.state, lastRejectedAt: fx.now + 1 })
        .next()
        .when(rotateCmd(6, fx.secrets[6], fx.now + 2))
        .thenResultMatches({ kind: 'rotated' });
    });

    it('a secret from another family is a forgery', () => {
      expect(family.given().when(issueCmd({ familyId: OTHER_FAMILY, initialSecret: secretOf(9) })).outcome().events).toHaveLength(1);
      expect(fx.given.when(rotateCmd(6, secretOf(9), fx.now + 1)).outcome().events[0]).toMatchObject({ data: { reason: 'bad_secret' } });
    });

    it('is checked before anything else, so the answer reveals nothing about the family', () => {
      const forged = fx.given.after(revokeCmd('logout', fx.now)).when(rotateCmd(6, wrong, fx.now + 1, { clientId: 'other', scope: ['admin'] })).outcome();
      expect(forged.events[0]).toMatchObject({ data: { reason: 'bad_secret' } });
      family.given().when(rotateCmd(6, wrong, fx.now + 1)).thenNothingHappened().thenResult(forged.result);
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
      const { events } = familySpec(fresh).given(big.given.events).when(rotateCmd(g, big.secrets[g], big.now + 1)).thenEventTypes(REUSE).outcome();
      expect(events[0]).toMatchObject({ data: { presentedGeneration: g, headGeneration: 600 } });
      expect(fresh.calls.successor).toBeLessThan(ANCHOR_INTERVAL);
    });

    it.each([3, 256, 257, 598, 599, 600])('rejects a forged generation %i without revoking', (g) => {
      const forged = big.given.when(rotateCmd(g, big.secrets[g + 1] ?? secretOf(3), big.now + 1));
      forged.thenEvents([expect.objectContaining({ type: 'RefreshRejected', data: { reason: 'bad_secret', presentedGeneration: g } })]);
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
      big.given.when(rotateCmd(600, big.secrets[600], big.now + 1)).thenResultMatches({ kind: 'rotated' });
      big.given.when(rotateCmd(599, big.secrets[599], big.now + 1)).thenResultMatches({ kind: 'replayed' });
    });
  });

  describe('client, status and expiry checks (rule 5)', () => {
    it('rejects another client without revoking', () => {
      const fx = rotated(issued(), 1);
      for (const [g, s] of [
        [2, fx.secrets[2]],
        [1, fx.secrets[1]],
      ] as const) {
        fx.given
          .when(rotateCmd(g, s, fx.now + 1, { clientId: 'mobile' }))
          .thenEvents([expect.objectContaining({ type: 'RefreshRejected', clientId: 'web', data: { reason: 'client_mismatch', presentedGeneration: g } })])
          .thenResultMatches(REJECTED);
      }
    });

    it('client mismatch is reported before revoked', () => {
      const { events } = issued().given.after(revokeCmd('admin', T0)).when(rotateCmd(1, secretOf(1), T0 + 1, { clientId: 'mobile' })).outcome();
      expect(events[0]).toMatchObject({ data: { reason: 'client_mismatch' } });
    });

    it('rejects a revoked family', () => {
      const rotate = issued().given.after(revokeCmd('logout', T0)).when(rotateCmd(1, secretOf(1), T0 + 1));
      rotate.thenEvents([expect.objectContaining({ type: 'RefreshRejected', data: { reason: 'revoked', presentedGeneration: 1 } })]);
      rotate.thenResultMatches(REJECTED);
    });

    it('expires exactly at idleExpiresAt, not 1 ms before', () => {
      const fx = issued();
      const idle = fx.state.idleExpiresAt;
      fx.given.when(rotateCmd(1, secretOf(1), idle - 1)).thenResultMatches({ kind: 'rotated' });
      const late = fx.given.when(rotateCmd(1, secretOf(1), idle));
      late.thenEvents([expect.objectContaining({ type: 'RefreshRejected', data: { reason: 'expired', presentedGeneration: 1 } })]).thenResultMatches(REJECTED);
    });

    it('expires exactly at absoluteExpiresAt even when idle expiry was kept moving', () => {
      let fx = issued({ refreshIdleTtl: 3600, refreshAbsoluteTtl: 7200 });
      fx = rotated(fx, 3, 1800 * S); // at T0+5400 s, idle = min(T0+9000 s, T0+7200 s)
      expect(fx.state.idleExpiresAt).toBe(fx.state.absoluteExpiresAt);
      const abs = fx.state.absoluteExpiresAt;
      fx.given.when(rotateCmd(4, fx.secrets[4], abs - 1)).thenResultMatches({ kind: 'rotated', refreshExpiresIn: 1 });
      expect(fx.given.when(rotateCmd(4, fx.secrets[4], abs)).outcome().events[0]).toMatchObject({ data: { reason: 'expired' } });
    });

    it('rejects a recorded expiry regardless of the clock', () => {
      const fx = issued();
      const expired = fx.given.after(expireCmd(fx.state.idleExpiresAt));
      expect(expired.state.status).toBe('expired');
      expect(expired.when(rotateCmd(1, secretOf(1), T0 + 1)).outcome().events[0]).toMatchObject({ data: { reason: 'expired' } });
    });

    it('an authentic old token on an expired family is just expired, not reuse', () => {
      const fx = rotated(issued(), 2);
      const { events } = fx.given.when(rotateCmd(1, fx.secrets[1], fx.state.idleExpiresAt)).thenEventTypes(['RefreshRejected']).outcome();
      expect(events[0]).toMatchObject({ data: { reason: 'expired' } });
    });
  });

  describe('rule 7: scope', () => {
    it('narrows the access token only; the family keeps its scope', () => {
      const narrowed = issued().given.when(rotateCmd(1, secretOf(1), T0 + 1, { scope: ['read', 'read'] }));
      narrowed.thenResultMatches({ kind: 'rotated', scope: ['read'] });
      const { events, result, state } = narrowed.outcome();
      expect(events[0]).toMatchObject({ data: { scope: ['read'] } });
      expect(state.scope).toEqual(['openid', 'read', 'write']);
      const secret = (result as { secret: Buffer }).secret;
      narrowed.next().when(rotateCmd(2, secret, T0 + 2)).thenResultMatches({ kind: 'rotated', scope: ['openid', 'read', 'write'] });
      // Narrowing once does not stop a later request for the full original scope.
      narrowed.next().when(rotateCmd(2, secret, T0 + 2, { scope: ['write', 'openid'] })).thenResultMatches({ kind: 'rotated', scope: ['write', 'openid'] });
    });

    it('allows an empty requested scope', () => {
      issued().given.when(rotateCmd(1, secretOf(1), T0 + 1, { scope: [] })).thenResultMatches({ kind: 'rotated', scope: [] });
    });

    it.each([[['admin']], [['read', 'admin']], [['a b']], [['']]])('rejects %j with invalid_scope and no rotation', (scope) => {
      const fx = issued();
      fx.given
        .when(rotateCmd(1, secretOf(1), T0 + 1, { scope }))
        .thenEvents([expect.objectContaining({ type: 'RefreshRejected', data: { reason: 'invalid_scope', presentedGeneration: 1 } })])
        .thenResultMatches({ kind: 'rejected', error: 'invalid_scope' })
        .thenState({ ...fx.state, lastRejectedAt: T0 + 1 });
    });

    it('a superseded token asking for a wider scope is still reuse (the alarm cannot be dodged)', () => {
      const fx = rotated(issued({ reuseGraceSeconds: 0 }), 2);
      fx.given.when(rotateCmd(1, fx.secrets[1], fx.now + 1, { scope: ['admin'] })).thenEventTypes(REUSE).thenResultMatches(REJECTED);
    });
  });

  it('rejects an unknown family with no events', () => {
    family.given().when(rotateCmd(1, secretOf(1), T0)).thenNothingHappened().thenResultMatches(REJECTED);
  });
});

describe('RevokeFamily', () => {
  it('revokes an active family; access tokens are covered until revokedAt + accessTokenTtl', () => {
    const now = T0 + 5 * S;
    const { state } = issued()
      .given.when(revokeCmd('logout', now))
      .thenEvents([{ type: 'TokenFamilyRevoked', ...header(now), data: { reason: 'logout', revokedAt: iso(now), accessTokensValidUntil: iso(now + 300 * S) } }])
      .thenStateMatches({ status: 'revoked', revokedAt: now, revokedReason: 'logout' })
      .outcome();
    expect(isAccessTokenRevoked(state, 'any-jti')).toBe(true);
  });

  it('is idempotent for revoked and expired families', () => {
    const fx = issued();
    fx.given.after(revokeCmd('logout', T0)).when(revokeCmd('admin', T0 + 1)).thenNothingHappened();
    fx.given.after(expireCmd(fx.state.idleExpiresAt)).when(revokeCmd('admin', fx.state.idleExpiresAt + 1)).thenNothingHappened();
  });

  it('keeps the first revocation if a second one is ever replayed', () => {
    const fx = issued();
    const e1 = fx.given.when(revokeCmd('logout', T0 + 1)).outcome().events;
    const e2 = fx.given.when(revokeCmd('admin', T0 + 2)).outcome().events;
    expect(family.fold([...e1, ...e2], fx.state)).toMatchObject({ revokedAt: T0 + 1, revokedReason: 'logout' });
  });

  it('still revokes an active family whose time ran out but whose expiry was not recorded', () => {
    const fx = issued();
    fx.given.when(revokeCmd('admin', fx.state.absoluteExpiresAt + 1)).thenEventTypes(['TokenFamilyRevoked']);
  });

  it('pre-emptively revokes a family that does not exist yet; issuing it then fails', () => {
    const revoked = family
      .given()
      .when(revokeCmd('subject_revoked', T0, { subject: 'user-1', clientId: 'web' }))
      .thenEvents([{ type: 'TokenFamilyRevoked', ...header(T0), data: { reason: 'subject_revoked', revokedAt: iso(T0), accessTokensValidUntil: iso(T0) } }])
      .thenStateMatches({ status: 'revoked', familyId: FAMILY, subject: 'user-1', clientId: 'web', revokedReason: 'subject_revoked' })
      .next();
    revoked.when(issueCmd({ now: T0 + 1 })).thenThrows({ code: 'family_exists' });
    revoked.when(revokeCmd('logout', T0 + 2)).thenNothingHappened();
    // A token can never have been issued on it, so rotation is a forgery.
    expect(revoked.when(rotateCmd(1, secretOf(1), T0 + 3)).outcome().events[0]).toMatchObject({ data: { reason: 'bad_secret' } });
  });

  it('needs subject and clientId to revoke a family that does not exist', () => {
    family.given().when(revokeCmd('admin', T0)).thenThrows({ code: 'missing_subject' });
    family.given().when(revokeCmd('admin', T0, { subject: 'u' })).thenThrows({ code: 'missing_subject' });
  });

  it('needs a reason', () => {
    issued().given.when(revokeCmd('' as RevocationReason, T0)).thenThrows(DomainError);
  });
});

describe('ExpireIdle', () => {
  it('does nothing before the idle deadline', () => {
    const fx = issued();
    fx.given.when(expireCmd(fx.state.idleExpiresAt - 1)).thenNothingHappened();
  });

  it('records idle expiry at the deadline, with the deadline as expiredAt', () => {
    const fx = issued();
    const now = fx.state.idleExpiresAt + 7 * S; // the sweeper is a little late
    fx.given
      .when(expireCmd(now))
      .thenEvents([{ type: 'TokenFamilyExpired', ...header(now), data: { reason: 'idle', expiredAt: iso(fx.state.idleExpiresAt) } }])
      .thenStateMatches({ status: 'expired', expiredReason: 'idle' })
      .next()
      .when(expireCmd(now + 1))
      .thenNothingHappened();
  });

  it('says absolute when both deadlines coincide', () => {
    const fx = issued({ refreshIdleTtl: 100, refreshAbsoluteTtl: 100 });
    const { events } = fx.given.when(expireCmd(fx.state.absoluteExpiresAt)).outcome();
    expect(events[0]).toMatchObject({ data: { reason: 'absolute', expiredAt: iso(fx.state.absoluteExpiresAt) } });
  });

  it('says absolute when idle expiry was clamped to absolute by rotations', () => {
    const fx = rotated(issued({ refreshIdleTtl: 3600, refreshAbsoluteTtl: 7200 }), 3, 1800 * S);
    expect(fx.given.when(expireCmd(fx.state.absoluteExpiresAt + 1)).outcome().events[0]).toMatchObject({ data: { reason: 'absolute' } });
  });

  it('reports the deadline that passed first when the sweeper was down past both', () => {
    const fx = issued({ refreshIdleTtl: 100, refreshAbsoluteTtl: 1000 });
    const { events } = fx.given.when(expireCmd(fx.state.absoluteExpiresAt + 1)).outcome();
    expect(events[0]).toMatchObject({ data: { reason: 'idle', expiredAt: iso(fx.state.idleExpiresAt) } });
  });

  it('does nothing for revoked, expired or unknown families', () => {
    const fx = issued();
    const revoked = fx.given.after(revokeCmd('logout', T0));
    const late = fx.state.absoluteExpiresAt + 1;
    revoked.when(expireCmd(late)).thenNothingHappened();
    family.given().when(expireCmd(late)).thenNothingHappened();
    // A stray expiry after a revocation (e.g. a sweeper race) does not un-revoke.
    const stray = fx.given.when(expireCmd(late)).outcome().events;
    expect(family.fold(stray, revoked.state).status).toBe('revoked');
  });
});

describe('RevokeAccessToken', () => {
  const cmd = (jti: string, expiresAt: number, now: number): FamilyCommand => ({ type: 'RevokeAccessToken', familyId: FAMILY, jti, expiresAt, now });

  it('records a jti once, until it expires', () => {
    const exp = T0 + 300 * S;
    const revoked = issued()
      .given.when(cmd('jti-1', exp, T0 + S))
      .thenEvents([{ type: 'AccessTokenRevoked', ...header(T0 + S), data: { jti: 'jti-1', expiresAt: iso(exp) } }])
      .next();
    expect(revoked.state.revokedJtis).toEqual({ 'jti-1': exp });
    expect(isAccessTokenRevoked(revoked.state, 'jti-1')).toBe(true);
    expect(isAccessTokenRevoked(revoked.state, 'jti-2')).toBe(false);
    revoked.when(cmd('jti-1', exp, T0 + 2 * S)).thenNothingHappened();
  });

  it('prunes revoked jtis once an event occurs at or after their expiry', () => {
    const exp = T0 + 300 * S;
    const given = issued().given.after(cmd('jti-1', exp, T0 + S), cmd('jti-2', exp + 1, T0 + 2 * S));
    const just = given.when(rotateCmd(1, secretOf(1), exp - 1)).outcome().state;
    expect(Object.keys(just.revokedJtis)).toEqual(['jti-1', 'jti-2']);
    const at = given.when(rotateCmd(1, secretOf(1), exp)).outcome().state;
    expect(at.revokedJtis).toEqual({ 'jti-2': exp + 1 });
  });

  it('ignores tokens already expired, and revoked or unknown families', () => {
    const fx = issued();
    fx.given.when(cmd('j', T0, T0)).thenNothingHappened();
    fx.given.after(revokeCmd('logout', T0)).when(cmd('j', T0 + 300 * S, T0 + 1)).thenNothingHappened();
    family.given().when(cmd('j', T0 + 300 * S, T0 + 1)).thenNothingHappened();
  });

  it('still records a live access token of an expired family (it can outlive the family)', () => {
    const fx = issued();
    const idle = fx.state.idleExpiresAt;
    fx.given.after(expireCmd(idle)).when(cmd('j', idle + 200 * S, idle + 1)).thenEventTypes(['AccessTokenRevoked']);
  });

  it('handles hostile jti values as plain keys', () => {
    let given = issued().given;
    for (const jti of ['__proto__', 'constructor', 'hasOwnProperty']) {
      expect(isAccessTokenRevoked(given.state, jti)).toBe(false);
      given = given.after(cmd(jti, T0 + 300 * S, T0 + 1));
      expect(isAccessTokenRevoked(given.state, jti)).toBe(true);
    }
    expect(Object.keys(JSON.parse(JSON.stringify(given.state)).revokedJtis)).toHaveLength(3);
    expect(Object.getPrototypeOf(given.state.revokedJtis)).toBe(Object.prototype);
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
    const revoked = fx.given.after(revokeCmd('logout', T0)).state;
    expect(describeFamilyStatus(revoked, T0)).toBe('revoked');
    expect(familyIsActiveAt(revoked, T0)).toBe(false);
    expect(expiryReasonAt(revoked, idle)).toBeNull();
  });
});

describe('state', () => {
  function richState(): FamilyState {
    const fx = rotated(issued({ reuseGraceSeconds: 30 }), 3);
    const rich = fx.given.after(
      rotateCmd(3, fx.secrets[3], fx.now + 1, { context: CTX }), // replay
      rotateCmd(4, Buffer.alloc(32), fx.now + 2), // forgery
      { type: 'RevokeAccessToken', familyId: FAMILY, jti: 'j1', expiresAt: fx.now + 300 * S, now: fx.now + 3 },
    );
    expect(rich.events.slice(fx.given.events.length).map((e) => e.type)).toEqual(['TokenRotationReplayed', 'RefreshRejected', 'AccessTokenRevoked']);
    return rich.state;
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
    const { events, state } = fx.given.when(rotateCmd(1, secretOf(1), T0 + 1, { context: CTX })).outcome();
    const viaJson = JSON.parse(JSON.stringify(events)) as FamilyEvent[];
    expect(family.fold(viaJson, fx.state)).toStrictEqual(state);
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
      decideFamily(revokeCmd('logout', fx.now + 1), base, secrets),
      decideFamily(expireCmd(base.absoluteExpiresAt), base, secrets),
      decideFamily({ type: 'RevokeAccessToken', familyId: FAMILY, jti: 'x', expiresAt: fx.now + 10, now: fx.now + 1 }, base, secrets),
    ];
    const seen = new Set<string>();
    for (const d of decisions) {
      for (const e of d.events) {
        seen.add(e.type);
        evolveFamily(base, deepFreeze(e));
      }
    }
    const jtiState = deepFreeze(family.fold(decisions[6].events, base));
    evolveFamily(jtiState, deepFreeze({ ...decisions[0].events[0], occurredAt: iso(fx.now + 20) }));
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
    issued().given.when({ ...(rotateCmd(1, secretOf(1), T0 + 1) as object), familyId: OTHER_FAMILY } as FamilyCommand).thenThrows({ code: 'invalid_argument' });
  });

  it('refuses an unknown command type', () => {
    family.given().when({ type: 'Nope', familyId: FAMILY, now: T0 } as never).thenThrows(DomainError);
  });
});

describe('refusals are recorded once per interval: a flood cannot grow the stream or revoke (rule 4)', () => {
  const fx = rotated(issued(), 2); // head = generation 3
  const wrong = Buffer.alloc(32, 0xab);
  const I = REJECTION_RECORD_INTERVAL_MS;
  const forgedAt = (now: number, ip = '198.51.100.1') => rotateCmd(3, wrong, now, { context: { ip } });
  const recordCmd = (tallies: RejectionTally[], now: number): FamilyCommand => ({ type: 'RecordRejections', familyId: FAMILY, tallies, now });

  it('records the first refusal, tallies the others of the interval (nothing appended), records again after it', () => {
    const first = fx.given.when(forgedAt(fx.now + 1));
    first.thenEventTypes(['RefreshRejected']).thenStateMatches({ status: 'active', generation: 3, lastRejectedAt: fx.now + 1 });
    const after = first.next();
    const inside = decideFamily(forgedAt(fx.now + 2, '198.51.100.2'), after.state, secrets);
    expect(inside).toEqual({
      events: [],
      rotation: { kind: 'rejected', error: 'invalid_grant', description: 'The refresh token is invalid' },
      unrecorded: { reason: 'bad_secret', presentedGeneration: 3, context: { ip: '198.51.100.2' }, at: fx.now + 2 },
    });
    after.when(forgedAt(fx.now + 1 + I - 1)).thenNothingHappened().thenState(after.state);
    after.when(forgedAt(fx.now + 1 + I)).thenEventTypes(['RefreshRejected']);
    // Another node's clock slightly behind: still inside, still tallied.
    after.when(forgedAt(fx.now - 50)).thenNothingHappened();
  });

  it('inside the interval the owner still rotates, reuse still revokes, and the other reasons are tallied too', () => {
    const after = fx.given.after(forgedAt(fx.now + 1));
    after.when(rotateCmd(3, fx.secrets[3], fx.now + 2)).thenEventTypes(['TokenRotated']).thenResultMatches({ kind: 'rotated', generation: 4 });
    after.when(rotateCmd(1, fx.secrets[1], fx.now + 2)).thenEventTypes([...REUSE]);
    const otherClient = decideFamily(rotateCmd(3, fx.secrets[3], fx.now + 2, { clientId: 'other' }), after.state, secrets);
    expect(otherClient).toMatchObject({ events: [], unrecorded: { reason: 'client_mismatch' } });
    const wideScope = decideFamily(rotateCmd(3, fx.secrets[3], fx.now + 2, { scope: ['admin'] }), after.state, secrets);
    expect(wideScope).toMatchObject({ events: [], rotation: { error: 'invalid_scope' }, unrecorded: { reason: 'invalid_scope' } });
    const revoked = after.after(revokeCmd('logout', fx.now + 3));
    expect(decideFamily(rotateCmd(3, fx.secrets[3], fx.now + 4), revoked.state, secrets)).toMatchObject({ events: [], unrecorded: { reason: 'revoked' } });
  });

  it('RecordRejections: one aggregated RefreshRejected per reason, sources most frequent first; nothing on an unknown family', () => {
    let tallies: RejectionTally[] = [];
    const ips = ['198.51.100.9', '198.51.100.9', '203.0.113.5', '198.51.100.9', undefined];
    ips.forEach((ip, i) => {
      tallies = tallyRejection(tallies, { reason: 'bad_secret', presentedGeneration: 3 + i, context: ip ? { ip, userAgent: 'bot' } : undefined, at: fx.now + 10 + i });
    });
    tallies = tallyRejection(tallies, { reason: 'client_mismatch', presentedGeneration: 3, context: { ip: '192.0.2.1' }, at: fx.now + 20 });
    const at = fx.now + I;
    fx.given
      .after(forgedAt(fx.now + 1))
      .when(recordCmd(tallies, at))
      .thenEvents([
        {
          type: 'RefreshRejected',
          ...header(at),
          data: {
            reason: 'bad_secret',
            presentedGeneration: 7,
            context: { ip: '198.51.100.9', userAgent: 'bot' },
            count: 5,
            from: iso(fx.now + 10),
            to: iso(fx.now + 14),
            sources: [
              { ip: '198.51.100.9', count: 3 },
              { ip: '203.0.113.5', count: 1 },
            ],
            otherSources: 1,
          },
        },
        {
          type: 'RefreshRejected',
          ...header(at),
          data: {
            reason: 'client_mismatch',
            presentedGeneration: 3,
            context: { ip: '192.0.2.1' },
            count: 1,
            from: iso(fx.now + 20),
            to: iso(fx.now + 20),
            sources: [{ ip: '192.0.2.1', count: 1 }],
            otherSources: 0,
          },
        },
      ])
      .thenStateMatches({ status: 'active', generation: 3, lastRejectedAt: at });
    family.given().when(recordCmd(tallies, at)).thenNothingHappened();
    fx.given.when(recordCmd([], at)).thenNothingHappened();
  });

  it('a flood of 2,000 forgeries over a minute, flushed every interval: a handful of events, every refusal counted, the owner unharmed', () => {
    let given = fx.given;
    let tallies: RejectionTally[] = [];
    let nextFlush = fx.now + I;
    const flush = (now: number) => {
      if (tallies.length > 0) given = given.after(recordCmd(tallies, now));
      tallies = [];
    };
    for (let i = 0; i < 2000; i++) {
      const now = fx.now + 1 + i * 30; // 60 s of forgeries from 40 addresses
      if (now >= nextFlush) {
        flush(nextFlush);
        nextFlush += I;
      }
      const d = decideFamily(forgedAt(now, `198.51.100.${i % 40}`), given.state, secrets);
      expect(d.rotation).toMatchObject({ kind: 'rejected', error: 'invalid_grant' });
      if (d.unrecorded) tallies = tallyRejection(tallies, d.unrecorded);
      else given = given.after(forgedAt(now, `198.51.100.${i % 40}`));
    }
    flush(nextFlush);
    const recorded = given.events.slice(fx.given.events.length);
    expect(recorded.every((e) => e.type === 'RefreshRejected')).toBe(true);
    expect(recorded.length).toBeLessThanOrEqual(Math.ceil((2000 * 30) / I) + 2);
    const counted = recorded.reduce((n, e) => n + (e.type === 'RefreshRejected' ? (e.data.count ?? 1) : 0), 0);
    expect(counted).toBe(2000);
    for (const e of recorded) if (e.type === 'RefreshRejected') expect((e.data.sources ?? []).length).toBeLessThanOrEqual(MAX_REJECTION_SOURCES);
    expect(given.state).toMatchObject({ status: 'active', generation: 3 });
    given.when(rotateCmd(3, fx.secrets[3], nextFlush + 1)).thenResultMatches({ kind: 'rotated', generation: 4 });
  });
});

describe('input limits are domain invariants', () => {
  it('a subject over 256 characters, or a context field over its limit, is invalid_argument', () => {
    family.given().when(issueCmd({ subject: 'x'.repeat(257) })).thenThrows(DomainError, { code: 'invalid_argument' });
    family.given().when(issueCmd({ subject: 'x'.repeat(256) })).thenEventTypes(['TokenFamilyIssued']);
    family.given().when(issueCmd({ context: { userAgent: 'u'.repeat(513) } })).thenThrows({ code: 'invalid_argument', message: expect.stringContaining('context.userAgent') });
    family.given().when(issueCmd({ context: { deviceId: 'd'.repeat(129) } })).thenThrows({ code: 'invalid_argument' });
    family.given().when(issueCmd({ context: { ip: 7 as unknown as string } })).thenThrows({ code: 'invalid_argument' });
    issued().given.when(rotateCmd(1, secretOf(1), T0 + 1, { context: { ip: 'i'.repeat(65) } })).thenThrows({ code: 'invalid_argument' });
    const long = 's'.repeat(257);
    expect(() => decideSubject({ type: 'RevokeSubject', subject: long, reason: 'admin', now: T0 }, initialSubjectState(long))).toThrow(/at most 256/);
  });
});

describe('DPoP binding (RFC 9449): a bound family needs a proof for its key; a missing or other key is refused, never reuse', () => {
  const JKT = 'A'.repeat(43);
  const OTHER_JKT = 'B'.repeat(43);
  const bound = (): Fixture => {
    const given = family.given().after(issueCmd({ dpopJkt: JKT, policy: { ...POLICY, reuseGraceSeconds: 10 } }));
    return rotated({ given, state: given.state, secrets: [Buffer.alloc(0), secretOf(1)], now: T0 }, 3, S, { dpopJkt: JKT }); // head = 4
  };

  it('records the key on TokenFamilyIssued and in the state; an unbound issue records none', () => {
    family
      .given()
      .when(issueCmd({ dpopJkt: JKT }))
      .thenEvents([expect.objectContaining({ type: 'TokenFamilyIssued', data: expect.objectContaining({ dpopJkt: JKT }) })])
      .thenStateMatches({ dpopJkt: JKT });
    const unbound = family.given().when(issueCmd()).outcome();
    expect(unbound.events[0].data).not.toHaveProperty('dpopJkt');
    expect(family.given().after(issueCmd()).state).not.toHaveProperty('dpopJkt');
  });

  it.each(['short', 'A'.repeat(44), `${'A'.repeat(42)}=`, `${'A'.repeat(42)}+`, ''])('refuses a malformed dpopJkt %j at issue', (jkt) => {
    family.given().when(issueCmd({ dpopJkt: jkt })).thenThrows(DomainError);
  });

  it('rotates the head with a proof for the family key; the access token is bound to it', () => {
    const fx = bound();
    fx.given
      .when(rotateCmd(4, fx.secrets[4], fx.now + 1, { dpopJkt: JKT }))
      .thenEventTypes(['TokenRotated'])
      .thenResultMatches({ kind: 'rotated', generation: 5, accessTokenJkt: JKT });
  });

  it('a grace replay with the right key is bound too', () => {
    const fx = bound();
    fx.given.when(rotateCmd(3, fx.secrets[3], fx.now + 1, { dpopJkt: JKT })).thenResultMatches({ kind: 'replayed', generation: 4, accessTokenJkt: JKT });
  });

  it.each([
    ['no proof, the head', 4, undefined],
    ['another key, the head', 4, OTHER_JKT],
    ['no proof, an old generation', 1, undefined],
    ['another key, an old generation', 2, OTHER_JKT],
    ['no proof, the previous generation in the grace window', 3, undefined],
  ])('%s: invalid_dpop_proof, recorded as dpop_key_mismatch, the family stays active and the owner rotates', (_name, generation, jkt) => {
    const fx = bound();
    fx.given
      .when(rotateCmd(generation as number, fx.secrets[generation as number], fx.now + 1, { dpopJkt: jkt, context: CTX }))
      .thenEvents([expect.objectContaining({ type: 'RefreshRejected', data: { reason: 'dpop_key_mismatch', presentedGeneration: generation, context: CTX } })])
      .thenResultMatches({ kind: 'rejected', error: 'invalid_dpop_proof' })
      .thenStateMatches({ status: 'active', generation: 4 })
      .next()
      .when(rotateCmd(4, fx.secrets[4], fx.now + 2, { dpopJkt: JKT }))
      .thenResultMatches({ kind: 'rotated', generation: 5 });
  });

  it('comes before forgery, status and expiry: without the key nothing about the token is revealed', () => {
    const fx = bound();
    const wrong = Buffer.alloc(32, 0xab);
    for (const state of [fx.state, fx.given.after(revokeCmd('logout', fx.now)).state]) {
      for (const [g, secret] of [[4, wrong], [4, fx.secrets[4]], [2, fx.secrets[2]]] as const) {
        const d = decideFamily(rotateCmd(g, secret, fx.now + 1) as FamilyCommand, state, secrets);
        expect(d.rotation).toMatchObject({ kind: 'rejected', error: 'invalid_dpop_proof' });
        expect(d.events.map((e) => e.type)).toEqual(['RefreshRejected']);
      }
    }
    // Past its expiry, too.
    const late = decideFamily(rotateCmd(4, fx.secrets[4], fx.now + 10 * 86_400 * S) as FamilyCommand, fx.state, secrets);
    expect(late.rotation).toMatchObject({ error: 'invalid_dpop_proof' });
  });

  it('the same old generation with the right key is reuse, as before: the family is revoked', () => {
    const fx = bound();
    fx.given.when(rotateCmd(1, fx.secrets[1], fx.now + 60 * S, { dpopJkt: JKT })).thenEventTypes([...REUSE]).thenStateMatches({ status: 'revoked' });
  });

  it('a flood of keyless requests is tallied like any refusal: one event per interval, never a revocation', () => {
    const fx = bound();
    const after = fx.given.after(rotateCmd(2, fx.secrets[2], fx.now + 1));
    const inside = decideFamily(rotateCmd(1, fx.secrets[1], fx.now + 2) as FamilyCommand, after.state, secrets);
    expect(inside).toMatchObject({ events: [], rotation: { error: 'invalid_dpop_proof' }, unrecorded: { reason: 'dpop_key_mismatch', presentedGeneration: 1 } });
  });

  it('an unbound family refreshed with a proof: the access token is bound to the proof key, the family stays unbound', () => {
    const fx = rotated(issued(), 1);
    fx.given
      .when(rotateCmd(2, fx.secrets[2], fx.now + 1, { dpopJkt: OTHER_JKT }))
      .thenResultMatches({ kind: 'rotated', generation: 3, accessTokenJkt: OTHER_JKT })
      .next()
      // The next refresh needs no proof (the refresh token is not bound)...
      .when(rotateCmd(3, fx.secrets[2] && secrets.successor(fx.secrets[2], FAMILY, 3), fx.now + 2))
      .thenResultMatches({ kind: 'rotated', generation: 4 });
    const plain = decideFamily(rotateCmd(2, fx.secrets[2], fx.now + 1) as FamilyCommand, fx.state, secrets);
    expect(plain.rotation).not.toHaveProperty('accessTokenJkt');
  });

  it('refuses a malformed proof thumbprint from the caller', () => {
    const fx = bound();
    expect(() => decideFamily(rotateCmd(4, fx.secrets[4], fx.now + 1, { dpopJkt: 'x' }) as FamilyCommand, fx.state, secrets)).toThrow(DomainError);
  });
});
