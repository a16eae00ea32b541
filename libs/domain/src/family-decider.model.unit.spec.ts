/**
 * Model-based test of the family decider (fc.commands): random sequences of rotations (head,
 * previous, older, forged), revocations, expiry sweeps and clock steps run against the real
 * decide/evolve (through deciderSpec) and against a model small enough to be obviously right. After
 * every command the real state, events and answer are checked against the model and against the
 * invariants of SPEC §2 (rotation rules 1–5). Half the families are DPoP-bound (RFC 9449): their
 * rotations carry the family key, and requests without it or with another key are refusals that
 * change nothing, whatever the generation presented.
 */
import fc from 'fast-check';
import type { FamilyCommand, RotationOutcome } from './commands';
import { encodeBase62 } from './encoding';
import type { FamilyEvent, FamilyPolicy } from './events';
import { decideFamily, evolveFamily, initialFamilyState } from './family-decider';
import type { FamilyState } from './family-state';
import { formatFamilyId, formatRefreshToken } from './refresh-token';
import { deciderSpec, type Given } from './testing/decider-spec';
import { testSecrets } from './testing/test-secrets';

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const S = 1000;
const FAMILY = formatFamilyId(Buffer.from('00112233445566778899aabbccddeeff', 'hex'));
const CLIENT = 'web';
const secrets = testSecrets('model-test-key');

const family = deciderSpec({
  initialState: initialFamilyState,
  evolve: evolveFamily,
  decide: (command: FamilyCommand, state: FamilyState) => {
    const { events, rotation } = decideFamily(command, state, secrets);
    return { events, result: rotation };
  },
});

type Status = 'active' | 'revoked' | 'expired';

/** What the family should be, kept by hand from the SPEC's rules, never read from the real state. */
interface Model {
  now: number;
  generation: number;
  /** The recorded status (an unswept expiry is still 'active' here, as in the stream). */
  status: Status;
  /** When the head was created by a rotation (null until the first rotation). */
  rotatedAt: number | null;
  idleExpiresAt: number;
  absoluteExpiresAt: number;
  policy: FamilyPolicy;
  /** The DPoP key the family is bound to, if it is. */
  jkt?: string;
}

const JKT = 'k'.repeat(43);
const OTHER_JKT = 'o'.repeat(43);
/** The family's key, as a legitimate client proves it. */
const key = (m: Readonly<Model>) => (m.jkt === undefined ? {} : { dpopJkt: m.jkt });

/** The real system: the history so far, and every secret a client was ever handed or presented. */
interface Real {
  given: Given<FamilyCommand, FamilyEvent, FamilyState, RotationOutcome>;
  /** The genuine secret of each generation (index = generation; 0 unused). */
  secretOf: Buffer[];
  /** The string forms of every secret presented, returned or genuine: none may ever appear in an event. */
  leakForms: Set<string>;
  /** Generation → hash of its one successor's creation (TokenRotated), to catch a second one. */
  successors: Map<number, string>;
}

const usableAt = (m: Model) => m.status === 'active' && m.now < m.idleExpiresAt && m.now < m.absoluteExpiresAt;

/** Every string form a secret could leak under: raw encodings and the wire-format token. */
function addLeakForms(real: Real, secret: Buffer, generation: number): void {
  const forms = [secret.toString('hex'), secret.toString('base64'), secret.toString('base64url'), encodeBase62(secret, 43)];
  if (generation >= 1 && secret.length === 32) forms.push(formatRefreshToken({ familyId: FAMILY, generation, secret }));
  for (const form of forms) real.leakForms.add(form);
}

/**
 * Decides `command` on the real history, checks what every command must satisfy, advances the real
 * system, and returns the outcome for the command's own expectations.
 */
function step(model: Model, real: Real, command: FamilyCommand, presented?: { generation: number; secret: Buffer }) {
  const before = real.given.state;
  const when = real.given.when(command);
  const outcome = when.outcome();

  // The state/snapshot survives JSON, and the decision taken on the round-tripped snapshot is the same.
  const roundTripped = JSON.parse(JSON.stringify(before)) as FamilyState;
  expect(roundTripped).toEqual(before);
  const again = decideFamily(command, roundTripped, secrets);
  expect(again.events).toEqual(outcome.events);
  expect(again.rotation).toEqual(outcome.result);

  real.given = when.next();
  const state = real.given.state;

  // fold(events) = state: the whole history replayed from nothing gives the state kept incrementally.
  expect(family.fold(real.given.events)).toEqual(state);
  expect(JSON.parse(JSON.stringify(state))).toEqual(state);

  // Generation never decreases; at most one successor per generation, always of the head.
  expect(state.generation).toBeGreaterThanOrEqual(before.generation);
  for (const e of outcome.events) {
    if (e.type !== 'TokenRotated') continue;
    expect(e.data.fromGeneration).toBe(before.generation);
    expect(e.data.generation).toBe(before.generation + 1);
    expect(real.successors.has(e.data.fromGeneration)).toBe(false);
    real.successors.set(e.data.fromGeneration, e.data.tokenHash);
  }

  // Revoked and expired are final: nothing is minted on them and the status never changes back.
  if (before.status === 'revoked' || before.status === 'expired') {
    expect(state.status).toBe(before.status);
    expect(state.generation).toBe(before.generation);
    expect(outcome.events.filter((e) => e.type !== 'RefreshRejected')).toEqual([]);
  }

  // Replay only of the generation just before the head, and only inside the grace window.
  for (const e of outcome.events) {
    if (e.type !== 'TokenRotationReplayed') continue;
    expect(e.data.presentedGeneration).toBe(before.generation - 1);
    expect(e.data.generation).toBe(before.generation);
    expect(before.rotatedAt).not.toBeNull();
    expect(command.now - (before.rotatedAt as number)).toBeLessThan(before.policy.reuseGraceSeconds * S);
  }

  // No secret in any event: neither the presented one nor any generation's, nor the one returned.
  if (presented) addLeakForms(real, presented.secret, presented.generation);
  const result = outcome.result;
  if (result && result.kind !== 'rejected') addLeakForms(real, result.secret, result.generation);
  const text = JSON.stringify(outcome.events);
  for (const form of real.leakForms) if (text.includes(form)) throw new Error(`a secret (${form}) appears in ${text}`);

  // The real state agrees with the model on everything the model keeps.
  return {
    outcome,
    state,
    checkModel(): void {
      expect(state.generation).toBe(model.generation);
      expect(state.status).toBe(model.status);
      expect(state.rotatedAt).toBe(model.rotatedAt);
      expect(state.idleExpiresAt).toBe(model.idleExpiresAt);
      expect(state.absoluteExpiresAt).toBe(model.absoluteExpiresAt);
    },
  };
}

/** A rejected rotation: nothing but (at most) a RefreshRejected, and the decision state untouched. */
function expectRejectedWithoutChange(
  outcome: { events: FamilyEvent[]; result: RotationOutcome | undefined; before: FamilyState; state: FamilyState },
  reason: string,
  error = 'invalid_grant',
): void {
  expect(outcome.result).toMatchObject({ kind: 'rejected', error });
  expect(outcome.events.map((e) => e.type).filter((t) => t !== 'RefreshRejected')).toEqual([]);
  for (const e of outcome.events) expect(e).toMatchObject({ type: 'RefreshRejected', data: { reason } });
  // Only when the refusal was last recorded may change (it decides whether the next one is tallied).
  const { lastRejectedAt: _a, ...after } = outcome.state;
  const { lastRejectedAt: _b, ...was } = outcome.before;
  expect(after).toEqual(was);
}

type FamilyCmd = fc.Command<Model, Real>;

class RotateHead implements FamilyCmd {
  check = () => true;
  run(m: Model, r: Real): void {
    const secret = r.secretOf[m.generation];
    const cmd: FamilyCommand = { type: 'RotateToken', familyId: FAMILY, generation: m.generation, secret, clientId: CLIENT, now: m.now, ...key(m) };
    const usable = usableAt(m);
    const recorded = m.status;
    const { outcome, checkModel } = step(m, r, cmd, { generation: m.generation, secret });
    if (usable) {
      const next = m.generation + 1;
      const expected = secrets.successor(secret, FAMILY, next);
      expect(outcome.result).toMatchObject({ kind: 'rotated', generation: next });
      expect((outcome.result as { secret: Buffer }).secret.equals(expected)).toBe(true);
      expect(outcome.events.map((e) => e.type)).toEqual(['TokenRotated']);
      m.generation = next;
      m.rotatedAt = m.now;
      m.idleExpiresAt = Math.min(m.now + m.policy.refreshIdleTtl * S, m.absoluteExpiresAt);
      r.secretOf[next] = expected;
      addLeakForms(r, expected, next);
    } else {
      expectRejectedWithoutChange(outcome, recorded === 'revoked' ? 'revoked' : 'expired');
    }
    checkModel();
  }
  toString = () => 'RotateHead';
}

class RotatePrevious implements FamilyCmd {
  check = (m: Readonly<Model>) => m.generation >= 2;
  run(m: Model, r: Real): void {
    const presentedGeneration = m.generation - 1;
    const secret = r.secretOf[presentedGeneration];
    const cmd: FamilyCommand = { type: 'RotateToken', familyId: FAMILY, generation: presentedGeneration, secret, clientId: CLIENT, now: m.now, ...key(m) };
    const usable = usableAt(m);
    const recorded = m.status;
    const inGrace = m.rotatedAt !== null && m.now - m.rotatedAt < m.policy.reuseGraceSeconds * S;
    const { outcome, checkModel } = step(m, r, cmd, { generation: presentedGeneration, secret });
    if (!usable) {
      expectRejectedWithoutChange(outcome, recorded === 'revoked' ? 'revoked' : 'expired');
    } else if (inGrace) {
      // Rule 2: the same successor again, nothing new minted.
      expect(outcome.result).toMatchObject({ kind: 'replayed', generation: m.generation });
      expect((outcome.result as { secret: Buffer }).secret.equals(r.secretOf[m.generation])).toBe(true);
      expect(outcome.events.map((e) => e.type)).toEqual(['TokenRotationReplayed']);
    } else {
      expectReuse(outcome);
      m.status = 'revoked';
    }
    checkModel();
  }
  toString = () => 'RotatePrevious';
}

class RotateOlder implements FamilyCmd {
  constructor(private readonly pick: number) {}
  check = (m: Readonly<Model>) => m.generation >= 3;
  run(m: Model, r: Real): void {
    const presentedGeneration = 1 + (this.pick % (m.generation - 2)); // 1 .. head-2
    const secret = r.secretOf[presentedGeneration];
    const cmd: FamilyCommand = { type: 'RotateToken', familyId: FAMILY, generation: presentedGeneration, secret, clientId: CLIENT, now: m.now, ...key(m) };
    const usable = usableAt(m);
    const recorded = m.status;
    const { outcome, checkModel } = step(m, r, cmd, { generation: presentedGeneration, secret });
    if (usable) {
      // Rule 3: never replayed, whatever the window: reuse revokes the family.
      expectReuse(outcome);
      m.status = 'revoked';
    } else {
      expectRejectedWithoutChange(outcome, recorded === 'revoked' ? 'revoked' : 'expired');
    }
    checkModel();
  }
  toString = () => `RotateOlder(${this.pick})`;
}

/** Rule 4: a secret that is not the claimed generation's, whatever its status, changes nothing. */
class RotateForged implements FamilyCmd {
  constructor(
    private readonly how: 'random' | 'flipped' | 'other-generation',
    private readonly bytes: Uint8Array,
    private readonly generationOffset: number,
  ) {}
  check = () => true;
  run(m: Model, r: Real): void {
    // Claimed generation: anywhere from 1 to one past the head.
    const generation = Math.max(1, m.generation + 1 - this.generationOffset);
    let secret: Buffer;
    if (this.how === 'random') secret = Buffer.from(this.bytes);
    else if (this.how === 'flipped') {
      secret = Buffer.from(r.secretOf[Math.min(generation, m.generation)]);
      secret[this.bytes[0] % 32] ^= 1 + (this.bytes[1] % 255);
    } else {
      // A genuine secret, of a generation other than the one claimed.
      const real = generation === 1 ? Math.min(2, m.generation) : generation - 1;
      secret = Buffer.from(r.secretOf[real] ?? this.bytes);
      if (real === generation) secret = Buffer.from(this.bytes);
    }
    const cmd: FamilyCommand = { type: 'RotateToken', familyId: FAMILY, generation, secret, clientId: CLIENT, now: m.now, ...key(m) };
    const { outcome, checkModel } = step(m, r, cmd, { generation, secret });
    expectRejectedWithoutChange(outcome, 'bad_secret');
    checkModel();
  }
  toString = () => `RotateForged(${this.how}, -${this.generationOffset})`;
}

/** A bound family's token — genuine or not, any generation — without the family key: refused, never reuse. */
class RotateWithoutKey implements FamilyCmd {
  constructor(
    private readonly pick: number,
    private readonly otherKey: boolean,
  ) {}
  check = (m: Readonly<Model>) => m.jkt !== undefined;
  run(m: Model, r: Real): void {
    const generation = 1 + (this.pick % m.generation); // 1 .. head
    const secret = r.secretOf[generation];
    const cmd: FamilyCommand = {
      type: 'RotateToken',
      familyId: FAMILY,
      generation,
      secret,
      clientId: CLIENT,
      now: m.now,
      ...(this.otherKey ? { dpopJkt: OTHER_JKT } : {}),
    };
    const before = r.given.state;
    const { outcome, state, checkModel } = step(m, r, cmd, { generation, secret });
    expectRejectedWithoutChange({ ...outcome, before, state }, 'dpop_key_mismatch', 'invalid_dpop_proof');
    checkModel();
  }
  toString = () => `RotateWithoutKey(${this.pick}, ${this.otherKey ? 'other key' : 'no proof'})`;
}

class Revoke implements FamilyCmd {
  check = () => true;
  run(m: Model, r: Real): void {
    const cmd: FamilyCommand = { type: 'RevokeFamily', familyId: FAMILY, reason: 'logout', now: m.now };
    const { outcome, checkModel } = step(m, r, cmd);
    if (m.status === 'active') {
      expect(outcome.events).toMatchObject([{ type: 'TokenFamilyRevoked', data: { reason: 'logout' } }]);
      m.status = 'revoked';
    } else {
      expect(outcome.events).toEqual([]); // idempotent; an expired family stays expired
    }
    checkModel();
  }
  toString = () => 'Revoke';
}

class Expire implements FamilyCmd {
  check = () => true;
  run(m: Model, r: Real): void {
    const cmd: FamilyCommand = { type: 'ExpireIdle', familyId: FAMILY, now: m.now };
    const { outcome, checkModel } = step(m, r, cmd);
    if (m.status === 'active' && !usableAt(m)) {
      const reason = m.idleExpiresAt < m.absoluteExpiresAt && m.now >= m.idleExpiresAt ? 'idle' : 'absolute';
      const expiredAt = reason === 'idle' ? m.idleExpiresAt : m.absoluteExpiresAt;
      expect(outcome.events).toMatchObject([{ type: 'TokenFamilyExpired', data: { reason, expiredAt: new Date(expiredAt).toISOString() } }]);
      m.status = 'expired';
    } else {
      expect(outcome.events).toEqual([]);
    }
    checkModel();
  }
  toString = () => 'Expire';
}

class Tick implements FamilyCmd {
  constructor(private readonly ms: number) {}
  check = () => true;
  run(m: Model): void {
    m.now += this.ms;
  }
  toString = () => `Tick(${this.ms})`;
}

/** Jumps to the grace window's end (exclusive), just before or just after it: the boundary of rule 2. */
class ToGraceEdge implements FamilyCmd {
  constructor(private readonly delta: -1 | 0 | 1) {}
  check = (m: Readonly<Model>) => m.rotatedAt !== null;
  run(m: Model): void {
    m.now = Math.max(m.now, (m.rotatedAt as number) + m.policy.reuseGraceSeconds * S + this.delta);
  }
  toString = () => `ToGraceEdge(${this.delta})`;
}

function expectReuse(outcome: { events: FamilyEvent[]; result: RotationOutcome | undefined }): void {
  expect(outcome.result).toMatchObject({ kind: 'rejected', error: 'invalid_grant' });
  expect(outcome.events).toMatchObject([
    { type: 'TokenReuseDetected' },
    { type: 'TokenFamilyRevoked', data: { reason: 'reuse_detected' } },
  ]);
}

/** Weighted so families live long enough to rotate deep and reach the grace window's edge before a revocation ends them. */
const commands = fc.commands(
  [
    fc.oneof(
      { weight: 10, arbitrary: fc.constant(new RotateHead()) },
      { weight: 4, arbitrary: fc.constant(new RotatePrevious()) },
      { weight: 2, arbitrary: fc.nat().map((n) => new RotateOlder(n)) },
      {
        weight: 4,
        arbitrary: fc
          .tuple(fc.constantFrom('random', 'flipped', 'other-generation' as const), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat({ max: 4 }))
          .map(([how, bytes, offset]) => new RotateForged(how, bytes, offset)),
      },
      { weight: 3, arbitrary: fc.tuple(fc.nat(), fc.boolean()).map(([pick, other]) => new RotateWithoutKey(pick, other)) },
      { weight: 1, arbitrary: fc.constant(new Revoke()) },
      { weight: 2, arbitrary: fc.constant(new Expire()) },
      {
        weight: 4,
        arbitrary: fc
          .oneof(fc.integer({ min: 0, max: 2 * S }), fc.integer({ min: 0, max: 15 * S }), fc.integer({ min: 0, max: 200 * S }))
          .map((ms) => new Tick(ms)),
      },
      { weight: 4, arbitrary: fc.constantFrom(-1 as const, 0 as const, 1 as const).map((d) => new ToGraceEdge(d)) },
    ),
  ],
  { maxCommands: 40, size: 'max' },
);

/** Idle never past absolute (the policy rule); sometimes equal, so the 'absolute' reason wins the tie. */
const policies: fc.Arbitrary<FamilyPolicy> = fc
  .tuple(fc.integer({ min: 20, max: 120 }), fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 300 })), fc.constantFrom(0, 1, 5, 10))
  .map(([idle, extra, grace]) => ({ accessTokenTtl: 300, refreshIdleTtl: idle, refreshAbsoluteTtl: idle + extra, reuseGraceSeconds: grace }));

describe('family decider, model-based', () => {
  it('follows the model and keeps the invariants over random command sequences', () => {
    fc.assert(
      fc.property(policies, fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.boolean(), commands, (policy, initial, bound, cmds) => {
        const initialSecret = Buffer.from(initial);
        const issue: FamilyCommand = {
          type: 'IssueToken',
          familyId: FAMILY,
          subject: 'user-1',
          clientId: CLIENT,
          scope: ['openid'],
          audience: ['https://api.example'],
          policy,
          initialSecret,
          now: T0,
          ...(bound ? { dpopJkt: JKT } : {}),
        };
        const absoluteExpiresAt = T0 + policy.refreshAbsoluteTtl * S;
        const setup = (): { model: Model; real: Real } => ({
          model: {
            now: T0,
            generation: 1,
            status: 'active' as Status,
            rotatedAt: null,
            idleExpiresAt: Math.min(T0 + policy.refreshIdleTtl * S, absoluteExpiresAt),
            absoluteExpiresAt,
            policy,
            ...(bound ? { jkt: JKT } : {}),
          },
          real: {
            given: family.given().after(issue),
            secretOf: [Buffer.alloc(0), initialSecret],
            leakForms: new Set<string>(),
            successors: new Map<number, string>(),
          },
        });
        fc.modelRun(() => {
          const s = setup();
          addLeakForms(s.real, initialSecret, 1);
          return s;
        }, cmds);
      }),
      { numRuns: 100 },
    );
  });
});
