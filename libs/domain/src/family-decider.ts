import { validateFamilyPolicy } from './client-policy';
import type { FamilyCommand, FamilyDecision, RotationOutcome } from './commands';
import { constantTimeEqual } from './constant-time';
import { isJwkThumbprint } from './dpop-binding';
import { DomainError } from './errors';
import { assertRequestContext, assertSubject } from './limits';
import type {
  AccessTokenRevoked,
  EventHeader,
  FamilyEvent,
  RefreshRejected,
  RejectionReason,
  RequestContext,
  RevocationReason,
  TokenFamilyExpired,
  TokenFamilyRevoked,
} from './events';
import type { FamilyState } from './family-state';
import { isFamilyId, REFRESH_TOKEN_SECRET_BYTES } from './refresh-token';
import { isWithinRejectionInterval, type RejectionTally } from './rejection-tally';
import { isSubset, normaliseScope } from './scope';
import { fromIso, toIso } from './time';
import type { TokenSecrets } from './token-secrets';

/**
 * Generations 1, 1+A, 1+2A, … keep their hash in `anchors`. An authentic secret of an old
 * generation is recognised by deriving forward to the next anchor: at most A-1 successor calls,
 * while the state stays O(head / A) instead of one hash per generation.
 */
export const ANCHOR_INTERVAL = 256;

export function isAnchorGeneration(generation: number): boolean {
  return Number.isSafeInteger(generation) && generation >= 1 && (generation - 1) % ANCHOR_INTERVAL === 0;
}

export type FamilyStatus = FamilyState['status'];
export type ExpiryReason = 'idle' | 'absolute';

export function initialFamilyState(): FamilyState {
  return {
    v: 1,
    status: 'none',
    familyId: '',
    subject: '',
    clientId: '',
    scope: [],
    audience: [],
    policy: { accessTokenTtl: 0, refreshIdleTtl: 0, refreshAbsoluteTtl: 0, reuseGraceSeconds: 0 },
    createdAt: 0,
    generation: 0,
    headHash: '',
    previousHash: null,
    rotatedAt: null,
    anchors: [],
    idleExpiresAt: 0,
    absoluteExpiresAt: 0,
    lastUsedAt: 0,
    revokedAt: null,
    revokedReason: null,
    expiredReason: null,
    revokedJtis: {},
  };
}

// ---------------------------------------------------------------------------------------------
// Time-based status: correctness never depends on the sweeper having recorded TokenFamilyExpired.

/**
 * Why an active family has expired by `now`, or null if it has not. The reason is the deadline that
 * passed first (idle expiry never lies after the absolute one); when they coincide — idle clamped
 * to absolute — it is 'absolute'. For a recorded expiry, the recorded reason.
 */
export function expiryReasonAt(state: FamilyState, now: number): ExpiryReason | null {
  if (state.status === 'expired') return state.expiredReason;
  if (state.status !== 'active') return null;
  const idleFirst = state.idleExpiresAt < state.absoluteExpiresAt;
  if (idleFirst && now >= state.idleExpiresAt) return 'idle';
  if (now >= state.absoluteExpiresAt) return 'absolute';
  return null;
}

/** True when the family's refresh token can still be used at `now` (ignoring the secret). */
export function familyIsActiveAt(state: FamilyState, now: number): boolean {
  return state.status === 'active' && now < state.idleExpiresAt && now < state.absoluteExpiresAt;
}

/** The status a reader should see at `now`: an active family past a deadline reads as expired. */
export function describeFamilyStatus(state: FamilyState, now: number): FamilyStatus {
  if (state.status === 'active' && !familyIsActiveAt(state, now)) return 'expired';
  return state.status;
}

/**
 * Whether an access token of this family (by jti) counts as revoked: every access token of a
 * revoked family does (SPEC rule 3), plus the individually revoked ones.
 */
export function isAccessTokenRevoked(state: FamilyState, jti: string): boolean {
  return state.status === 'revoked' || Object.prototype.hasOwnProperty.call(state.revokedJtis, jti);
}

// ---------------------------------------------------------------------------------------------
// Decide

export function decideFamily(command: FamilyCommand, state: FamilyState, secrets: TokenSecrets): FamilyDecision {
  if (!Number.isSafeInteger(command.now) || command.now < 0) {
    throw new DomainError('invalid_argument', 'now must be epoch milliseconds');
  }
  if (state.status !== 'none' && state.familyId !== command.familyId) {
    // The caller loaded the wrong stream; deciding on it would corrupt another family.
    throw new DomainError('invalid_argument', 'command and state are for different families');
  }
  switch (command.type) {
    case 'IssueToken':
      return issue(command, state, secrets);
    case 'RotateToken':
      return rotate(command, state, secrets);
    case 'RevokeFamily':
      return revoke(command, state);
    case 'ExpireIdle':
      return expire(command, state);
    case 'RevokeAccessToken':
      return revokeAccessToken(command, state);
    case 'RecordRejections':
      return recordRejections(command, state);
    default: {
      const never: never = command;
      throw new DomainError('invalid_argument', `unknown command ${(never as { type: string }).type}`);
    }
  }
}

type Cmd<T extends FamilyCommand['type']> = Extract<FamilyCommand, { type: T }>;

function header(state: Pick<FamilyState, 'familyId' | 'subject' | 'clientId'>, now: number): EventHeader {
  return { familyId: state.familyId, subject: state.subject, clientId: state.clientId, occurredAt: toIso(now) };
}

function withContext(context: RequestContext | undefined): { context?: RequestContext } {
  return context === undefined ? {} : { context: { ...context } };
}

function issue(cmd: Cmd<'IssueToken'>, state: FamilyState, secrets: TokenSecrets): FamilyDecision {
  if (state.status !== 'none') {
    // Includes a stream revoked pre-emptively by RevokeSubject before the family was issued.
    throw new DomainError('family_exists', `family ${cmd.familyId} already exists`);
  }
  if (!isFamilyId(cmd.familyId)) throw new DomainError('invalid_argument', 'not a family id');
  assertSubject(cmd.subject);
  assertRequestContext(cmd.context);
  if (typeof cmd.clientId !== 'string' || cmd.clientId === '') throw new DomainError('invalid_argument', 'clientId is required');
  const scope = Array.isArray(cmd.scope) ? normaliseScope(cmd.scope) : null;
  if (scope === null) throw new DomainError('invalid_argument', 'scope contains an invalid scope token');
  if (!Array.isArray(cmd.audience) || !cmd.audience.every((a) => typeof a === 'string' && a !== '')) {
    throw new DomainError('invalid_argument', 'audience must be a list of non-empty strings');
  }
  const policyErrors = validateFamilyPolicy(cmd.policy);
  if (policyErrors.length > 0) throw new DomainError('invalid_argument', `invalid policy: ${policyErrors.join('; ')}`);
  // The wire format carries exactly 32 bytes, so any other length could never be presented back.
  if (!Buffer.isBuffer(cmd.initialSecret) || cmd.initialSecret.length !== REFRESH_TOKEN_SECRET_BYTES) {
    throw new DomainError('invalid_argument', `initialSecret must be exactly ${REFRESH_TOKEN_SECRET_BYTES} bytes`);
  }
  if (cmd.dpopJkt !== undefined && !isJwkThumbprint(cmd.dpopJkt)) {
    throw new DomainError('invalid_argument', 'dpopJkt must be a JWK SHA-256 thumbprint (RFC 7638): 43 base64url characters');
  }

  const now = cmd.now;
  const absoluteExpiresAt = now + cmd.policy.refreshAbsoluteTtl * 1000;
  const idleExpiresAt = Math.min(now + cmd.policy.refreshIdleTtl * 1000, absoluteExpiresAt);
  return {
    events: [
      {
        ...header(cmd, now),
        type: 'TokenFamilyIssued',
        data: {
          scope,
          audience: [...cmd.audience],
          generation: 1,
          tokenHash: secrets.hash(cmd.initialSecret),
          createdAt: toIso(now),
          idleExpiresAt: toIso(idleExpiresAt),
          absoluteExpiresAt: toIso(absoluteExpiresAt),
          policy: { ...cmd.policy },
          ...withContext(cmd.context),
          ...(cmd.dpopJkt === undefined ? {} : { dpopJkt: cmd.dpopJkt }),
        },
      },
    ],
  };
}

/** How a presented (generation, secret) relates to the family: which generation it genuinely is, or forged. */
export type PresentedTokenMatch = 'head' | 'previous' | 'older' | 'forged';

/**
 * Rule 4: is `secret` the genuine secret of `generation`? Hashes are compared in constant time.
 * Older generations are derived forward to the nearest generation whose hash is kept (the next
 * anchor or the previous generation), in fewer than ANCHOR_INTERVAL successor calls. Says nothing
 * about status or expiry; introspection and revocation use it to treat forgeries as unknown tokens.
 */
export function authenticatePresentedToken(
  state: FamilyState,
  generation: number,
  secret: Buffer,
  secrets: TokenSecrets,
): PresentedTokenMatch {
  const head = state.generation;
  if (state.status === 'none' || head < 1) return 'forged';
  if (!Number.isSafeInteger(generation) || generation < 1 || generation > head) return 'forged';
  if (!Buffer.isBuffer(secret) || secret.length !== REFRESH_TOKEN_SECRET_BYTES) return 'forged';
  if (generation === head) return constantTimeEqual(secrets.hash(secret), state.headHash) ? 'head' : 'forged';
  if (generation === head - 1) {
    return state.previousHash !== null && constantTimeEqual(secrets.hash(secret), state.previousHash) ? 'previous' : 'forged';
  }

  const nextAnchor = 1 + Math.ceil((generation - 1) / ANCHOR_INTERVAL) * ANCHOR_INTERVAL;
  const target = Math.min(nextAnchor, head - 1);
  const expected = target === head - 1 ? state.previousHash : state.anchors[(target - 1) / ANCHOR_INTERVAL];
  if (expected === null || expected === undefined) return 'forged';
  let derived = secret;
  for (let g = generation + 1; g <= target; g++) derived = secrets.successor(derived, state.familyId, g);
  return constantTimeEqual(secrets.hash(derived), expected) ? 'older' : 'forged';
}

function refreshExpiresIn(idleExpiresAt: number, absoluteExpiresAt: number, now: number): number {
  return Math.max(0, Math.ceil((Math.min(idleExpiresAt, absoluteExpiresAt) - now) / 1000));
}

function familyRevoked(
  state: Pick<FamilyState, 'familyId' | 'subject' | 'clientId' | 'policy'>,
  reason: RevocationReason,
  now: number,
): TokenFamilyRevoked {
  return {
    ...header(state, now),
    type: 'TokenFamilyRevoked',
    // The last access token minted before now expires at most accessTokenTtl later.
    data: { reason, revokedAt: toIso(now), accessTokensValidUntil: toIso(now + state.policy.accessTokenTtl * 1000) },
  };
}

const UNKNOWN_TOKEN = 'The refresh token is invalid';

function rotate(cmd: Cmd<'RotateToken'>, state: FamilyState, secrets: TokenSecrets): FamilyDecision {
  const now = cmd.now;
  assertRequestContext(cmd.context);
  if (cmd.dpopJkt !== undefined && !isJwkThumbprint(cmd.dpopJkt)) throw new DomainError('invalid_argument', 'dpopJkt must be a JWK SHA-256 thumbprint');
  // Unknown family: nothing to record on (appending would create the stream). Same answer as a
  // forgery so the response does not reveal whether a family id exists.
  if (state.status === 'none') {
    return { events: [], rotation: { kind: 'rejected', error: 'invalid_grant', description: UNKNOWN_TOKEN } };
  }

  const reject = (
    reason: RejectionReason,
    description: string,
    error: 'invalid_grant' | 'invalid_scope' | 'invalid_dpop_proof' = 'invalid_grant',
  ): FamilyDecision => {
    const rotation = { kind: 'rejected', error, description } as const;
    if (isWithinRejectionInterval(state.lastRejectedAt, now)) {
      // Recorded later with the others of this interval: a flood costs the stream nothing per request.
      return { events: [], rotation, unrecorded: { reason, presentedGeneration: cmd.generation, ...withContext(cmd.context), at: now } };
    }
    const event: RefreshRejected = {
      ...header(state, now),
      type: 'RefreshRejected',
      data: { reason, presentedGeneration: cmd.generation, ...withContext(cmd.context) },
    };
    return { events: [event], rotation };
  };

  // DPoP binding (RFC 9449) before everything else about the token: a bound family answers a request
  // without a proof for its key with a refusal, never with reuse (which would revoke), so a thief
  // holding a stolen bound token — of any generation — can neither log the user out nor even learn
  // whether the token is genuine, current, revoked or expired.
  if (state.dpopJkt !== undefined && cmd.dpopJkt !== state.dpopJkt) {
    return reject(
      'dpop_key_mismatch',
      cmd.dpopJkt === undefined ? 'The refresh token is DPoP-bound: a DPoP proof for its key is required' : 'The DPoP proof is not for the key the refresh token is bound to',
      'invalid_dpop_proof',
    );
  }
  // Unbound family: a proof binds the new access token only (RFC 9449 §5); the refresh token stays unbound.
  const accessTokenJkt = state.dpopJkt ?? cmd.dpopJkt;
  const bound = accessTokenJkt === undefined ? {} : { accessTokenJkt };

  // Rule 4 first: nothing below may be influenced by someone who merely knows a family id.
  const match = authenticatePresentedToken(state, cmd.generation, cmd.secret, secrets);
  if (match === 'forged') return reject('bad_secret', UNKNOWN_TOKEN);
  if (cmd.clientId !== state.clientId) return reject('client_mismatch', 'The refresh token was issued to another client');
  if (state.status === 'revoked') return reject('revoked', 'The refresh token has been revoked');
  if (!familyIsActiveAt(state, now)) return reject('expired', 'The refresh token has expired');

  const head = state.generation;
  // Rule 2's window: the end is exclusive, so a grace of 0 never replays. A negative age (another
  // node's clock slightly behind) counts as inside the window.
  const graceMs = state.policy.reuseGraceSeconds * 1000;
  const replayable = match === 'previous' && graceMs > 0 && state.rotatedAt !== null && now - state.rotatedAt < graceMs;

  // Rule 3 before rule 7: an authentic but superseded token is reuse, whatever scope it asks for,
  // so a thief cannot dodge the alarm by sending a bad scope.
  if (match !== 'head' && !replayable) return reuseDetected(cmd, state, now);

  // Rule 7: narrowing applies to this access token only; the family keeps its scope.
  let scope = state.scope;
  if (cmd.scope !== undefined) {
    const requested = Array.isArray(cmd.scope) ? normaliseScope(cmd.scope) : null;
    if (requested === null || !isSubset(requested, state.scope)) {
      return reject('invalid_scope', 'The requested scope exceeds the scope originally granted', 'invalid_scope');
    }
    scope = requested;
  }

  // Rule 1: the live head rotates.
  if (match === 'head') {
    const generation = head + 1;
    const secret = secrets.successor(cmd.secret, state.familyId, generation);
    const idleExpiresAt = Math.min(now + state.policy.refreshIdleTtl * 1000, state.absoluteExpiresAt);
    const rotation: RotationOutcome = {
      kind: 'rotated',
      generation,
      secret,
      scope: [...scope],
      refreshExpiresIn: refreshExpiresIn(idleExpiresAt, state.absoluteExpiresAt, now),
      ...bound,
    };
    return {
      events: [
        {
          ...header(state, now),
          type: 'TokenRotated',
          data: {
            fromGeneration: head,
            generation,
            tokenHash: secrets.hash(secret),
            idleExpiresAt: toIso(idleExpiresAt),
            scope: [...scope],
            ...withContext(cmd.context),
          },
        },
      ],
      rotation,
    };
  }

  // Rule 2: the previous generation inside the grace window gets the head's secret again:
  // successor(secret of head-1, head) is by construction the head's secret, so nothing is stored.
  const secret = secrets.successor(cmd.secret, state.familyId, head);
  return {
    events: [
      {
        ...header(state, now),
        type: 'TokenRotationReplayed',
        data: { presentedGeneration: cmd.generation, generation: head, scope: [...scope], ...withContext(cmd.context) },
      },
    ],
    rotation: {
      kind: 'replayed',
      generation: head,
      secret,
      scope: [...scope],
      refreshExpiresIn: refreshExpiresIn(state.idleExpiresAt, state.absoluteExpiresAt, now),
      ...bound,
    },
  };
}

/** Rule 3: an authentic but superseded token is reuse: the family is presumed stolen. */
function reuseDetected(cmd: Cmd<'RotateToken'>, state: FamilyState, now: number): FamilyDecision {
  const head = state.generation;
  return {
    events: [
      {
        ...header(state, now),
        type: 'TokenReuseDetected',
        data: { presentedGeneration: cmd.generation, headGeneration: head, ...withContext(cmd.context) },
      },
      familyRevoked(state, 'reuse_detected', now),
    ],
    rotation: { kind: 'rejected', error: 'invalid_grant', description: 'The refresh token has already been used' },
  };
}

function revoke(cmd: Cmd<'RevokeFamily'>, state: FamilyState): FamilyDecision {
  if (typeof cmd.reason !== 'string' || cmd.reason === '') throw new DomainError('invalid_argument', 'reason is required');
  if (state.status === 'active') return { events: [familyRevoked(state, cmd.reason, cmd.now)] };
  if (state.status !== 'none') return { events: [] }; // already revoked or expired: idempotent

  // Pre-emptive revocation (RevokeSubject racing an issue): the stream is created revoked, so a
  // later IssueToken on it fails. No access token was minted on it, hence validUntil = revokedAt.
  if (!isFamilyId(cmd.familyId)) throw new DomainError('invalid_argument', 'not a family id');
  if (!cmd.subject || !cmd.clientId) {
    throw new DomainError('missing_subject', 'revoking a family that does not exist yet needs subject and clientId');
  }
  const target = {
    familyId: cmd.familyId,
    subject: cmd.subject,
    clientId: cmd.clientId,
    policy: { ...state.policy, accessTokenTtl: 0 },
  } satisfies Parameters<typeof familyRevoked>[0];
  return { events: [familyRevoked(target, cmd.reason, cmd.now)] };
}

function expire(cmd: Cmd<'ExpireIdle'>, state: FamilyState): FamilyDecision {
  if (state.status !== 'active') return { events: [] };
  const reason = expiryReasonAt(state, cmd.now);
  if (reason === null) return { events: [] };
  const event: TokenFamilyExpired = {
    ...header(state, cmd.now),
    type: 'TokenFamilyExpired',
    // When the deadline passed, not when the sweeper noticed (that is occurredAt).
    data: { reason, expiredAt: toIso(reason === 'idle' ? state.idleExpiresAt : state.absoluteExpiresAt) },
  };
  return { events: [event] };
}

function recordRejections(cmd: Cmd<'RecordRejections'>, state: FamilyState): FamilyDecision {
  if (!Array.isArray(cmd.tallies)) throw new DomainError('invalid_argument', 'tallies must be a list');
  if (state.status === 'none') return { events: [] }; // never created by a rejection
  const events: RefreshRejected[] = cmd.tallies
    .filter((t) => Number.isSafeInteger(t.count) && t.count > 0)
    .map((t) => ({
      ...header(state, cmd.now),
      type: 'RefreshRejected',
      data: {
        reason: t.reason,
        presentedGeneration: t.presentedGeneration,
        ...withContext(t.context),
        count: t.count,
        from: toIso(t.from),
        to: toIso(t.to),
        sources: sortedSources(t),
        otherSources: t.otherSources,
      },
    }));
  return { events };
}

/** Most frequent first; equal counts in address order, so the same tally makes the same event. */
function sortedSources(t: RejectionTally): RejectionTally['sources'] {
  return [...t.sources].sort((a, b) => b.count - a.count || (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0)).map((s) => ({ ...s }));
}

function revokeAccessToken(cmd: Cmd<'RevokeAccessToken'>, state: FamilyState): FamilyDecision {
  if (typeof cmd.jti !== 'string' || cmd.jti === '') throw new DomainError('invalid_argument', 'jti is required');
  if (!Number.isSafeInteger(cmd.expiresAt)) throw new DomainError('invalid_argument', 'expiresAt must be epoch milliseconds');
  // A revoked family already revokes all its access tokens. An expired family's last access
  // tokens can outlive it by up to accessTokenTtl, so revoking one still matters.
  if (state.status !== 'active' && state.status !== 'expired') return { events: [] };
  if (cmd.expiresAt <= cmd.now) return { events: [] }; // already dead
  if (Object.prototype.hasOwnProperty.call(state.revokedJtis, cmd.jti)) return { events: [] };
  const event: AccessTokenRevoked = {
    ...header(state, cmd.now),
    type: 'AccessTokenRevoked',
    data: { jti: cmd.jti, expiresAt: toIso(cmd.expiresAt) },
  };
  return { events: [event] };
}

// ---------------------------------------------------------------------------------------------
// Evolve (pure: returns a new state, never mutates the input)

export function evolveFamily(state: FamilyState, event: FamilyEvent): FamilyState {
  const at = fromIso(event.occurredAt);
  return pruneRevokedJtis(apply(state, event, at), at);
}

function apply(state: FamilyState, event: FamilyEvent, at: number): FamilyState {
  switch (event.type) {
    case 'TokenFamilyIssued': {
      const d = event.data;
      const next: FamilyState = {
        ...state,
        // A stream revoked before issue stays revoked (the decider never produces this; fail closed).
        status: state.status === 'none' ? 'active' : state.status,
        familyId: event.familyId,
        subject: event.subject,
        clientId: event.clientId,
        scope: [...d.scope],
        audience: [...d.audience],
        policy: { ...d.policy },
        createdAt: fromIso(d.createdAt),
        generation: d.generation,
        headHash: d.tokenHash,
        previousHash: null,
        rotatedAt: null,
        anchors: [d.tokenHash],
        idleExpiresAt: fromIso(d.idleExpiresAt),
        absoluteExpiresAt: fromIso(d.absoluteExpiresAt),
        lastUsedAt: fromIso(d.createdAt),
        // Set only when bound, so unbound families fold to the same state (and snapshots) as before.
        ...(d.dpopJkt === undefined ? {} : { dpopJkt: d.dpopJkt }),
      };
      return withLastContext(next, d.context);
    }
    case 'TokenRotated': {
      const d = event.data;
      const next: FamilyState = {
        ...state,
        generation: d.generation,
        previousHash: state.headHash,
        headHash: d.tokenHash,
        rotatedAt: at,
        anchors: isAnchorGeneration(d.generation) ? [...state.anchors, d.tokenHash] : state.anchors,
        idleExpiresAt: fromIso(d.idleExpiresAt),
        lastUsedAt: at,
      };
      return withLastContext(next, d.context);
    }
    case 'TokenRotationReplayed':
      return withLastContext({ ...state, lastUsedAt: at }, event.data.context);
    case 'TokenFamilyRevoked': {
      if (state.status === 'revoked') return state; // the first revocation is the one that counts
      return {
        ...state,
        status: 'revoked',
        // Pre-emptive revocation creates the stream: take identity from the event.
        familyId: state.status === 'none' ? event.familyId : state.familyId,
        subject: state.status === 'none' ? event.subject : state.subject,
        clientId: state.status === 'none' ? event.clientId : state.clientId,
        revokedAt: fromIso(event.data.revokedAt),
        revokedReason: event.data.reason,
      };
    }
    case 'TokenFamilyExpired':
      if (state.status !== 'active') return state;
      return { ...state, status: 'expired', expiredReason: event.data.reason };
    case 'AccessTokenRevoked':
      return {
        ...state,
        revokedJtis: Object.fromEntries([...Object.entries(state.revokedJtis), [event.data.jti, fromIso(event.data.expiresAt)]]),
      };
    case 'TokenReuseDetected': // the TokenFamilyRevoked that follows carries the state change
      return state;
    case 'RefreshRejected':
      // Only when refusals were last recorded: the decision on who may rotate never depends on it.
      return { ...state, lastRejectedAt: at };
    default:
      return state; // unknown future event types do not change the decision state
  }
}

function withLastContext(state: FamilyState, context: RequestContext | undefined): FamilyState {
  return context === undefined ? state : { ...state, lastContext: { ...context } };
}

function pruneRevokedJtis(state: FamilyState, at: number): FamilyState {
  const entries = Object.entries(state.revokedJtis);
  if (!entries.some(([, exp]) => exp <= at)) return state;
  return { ...state, revokedJtis: Object.fromEntries(entries.filter(([, exp]) => exp > at)) };
}
