"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.ANCHOR_INTERVAL = void 0;
exports.isAnchorGeneration = isAnchorGeneration;
exports.initialFamilyState = initialFamilyState;
exports.expiryReasonAt = expiryReasonAt;
exports.familyIsActiveAt = familyIsActiveAt;
exports.describeFamilyStatus = describeFamilyStatus;
exports.isAccessTokenRevoked = isAccessTokenRevoked;
exports.decideFamily = decideFamily;
exports.evolveFamily = evolveFamily;
const client_policy_1 = require("./client-policy");
const constant_time_1 = require("./constant-time");
const errors_1 = require("./errors");
const refresh_token_1 = require("./refresh-token");
const scope_1 = require("./scope");
const time_1 = require("./time");
/**
 * Generations 1, 1+A, 1+2A, … keep their hash in `anchors`. An authentic secret of an old
 * generation is recognised by deriving forward to the next anchor: at most A-1 successor calls,
 * while the state stays O(head / A) instead of one hash per generation.
 */
exports.ANCHOR_INTERVAL = 256;
function isAnchorGeneration(generation) {
    return Number.isSafeInteger(generation) && generation >= 1 && (generation - 1) % exports.ANCHOR_INTERVAL === 0;
}
function initialFamilyState() {
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
function expiryReasonAt(state, now) {
    if (state.status === 'expired')
        return state.expiredReason;
    if (state.status !== 'active')
        return null;
    const idleFirst = state.idleExpiresAt < state.absoluteExpiresAt;
    if (idleFirst && now >= state.idleExpiresAt)
        return 'idle';
    if (now >= state.absoluteExpiresAt)
        return 'absolute';
    return null;
}
/** True when the family's refresh token can still be used at `now` (ignoring the secret). */
function familyIsActiveAt(state, now) {
    return state.status === 'active' && now < state.idleExpiresAt && now < state.absoluteExpiresAt;
}
/** The status a reader should see at `now`: an active family past a deadline reads as expired. */
function describeFamilyStatus(state, now) {
    if (state.status === 'active' && !familyIsActiveAt(state, now))
        return 'expired';
    return state.status;
}
/**
 * Whether an access token of this family (by jti) counts as revoked: every access token of a
 * revoked family does (SPEC rule 3), plus the individually revoked ones.
 */
function isAccessTokenRevoked(state, jti) {
    return state.status === 'revoked' || Object.prototype.hasOwnProperty.call(state.revokedJtis, jti);
}
// ---------------------------------------------------------------------------------------------
// Decide
function decideFamily(command, state, secrets) {
    if (!Number.isSafeInteger(command.now) || command.now < 0) {
        throw new errors_1.DomainError('invalid_argument', 'now must be epoch milliseconds');
    }
    if (state.status !== 'none' && state.familyId !== command.familyId) {
        // The caller loaded the wrong stream; deciding on it would corrupt another family.
        throw new errors_1.DomainError('invalid_argument', 'command and state are for different families');
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
        default: {
            const never = command;
            throw new errors_1.DomainError('invalid_argument', `unknown command ${never.type}`);
        }
    }
}
function header(state, now) {
    return { familyId: state.familyId, subject: state.subject, clientId: state.clientId, occurredAt: (0, time_1.toIso)(now) };
}
function withContext(context) {
    return context === undefined ? {} : { context: { ...context } };
}
function issue(cmd, state, secrets) {
    if (state.status !== 'none') {
        // Includes a stream revoked pre-emptively by RevokeSubject before the family was issued.
        throw new errors_1.DomainError('family_exists', `family ${cmd.familyId} already exists`);
    }
    if (!(0, refresh_token_1.isFamilyId)(cmd.familyId))
        throw new errors_1.DomainError('invalid_argument', 'not a family id');
    if (typeof cmd.subject !== 'string' || cmd.subject === '')
        throw new errors_1.DomainError('invalid_argument', 'subject is required');
    if (typeof cmd.clientId !== 'string' || cmd.clientId === '')
        throw new errors_1.DomainError('invalid_argument', 'clientId is required');
    const scope = Array.isArray(cmd.scope) ? (0, scope_1.normaliseScope)(cmd.scope) : null;
    if (scope === null)
        throw new errors_1.DomainError('invalid_argument', 'scope contains an invalid scope token');
    if (!Array.isArray(cmd.audience) || !cmd.audience.every((a) => typeof a === 'string' && a !== '')) {
        throw new errors_1.DomainError('invalid_argument', 'audience must be a list of non-empty strings');
    }
    const policyErrors = (0, client_policy_1.validateFamilyPolicy)(cmd.policy);
    if (policyErrors.length > 0)
        throw new errors_1.DomainError('invalid_argument', `invalid policy: ${policyErrors.join('; ')}`);
    // The wire format carries exactly 32 bytes, so any other length could never be presented back.
    if (!Buffer.isBuffer(cmd.initialSecret) || cmd.initialSecret.length !== refresh_token_1.REFRESH_TOKEN_SECRET_BYTES) {
        throw new errors_1.DomainError('invalid_argument', `initialSecret must be exactly ${refresh_token_1.REFRESH_TOKEN_SECRET_BYTES} bytes`);
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
                    createdAt: (0, time_1.toIso)(now),
                    idleExpiresAt: (0, time_1.toIso)(idleExpiresAt),
                    absoluteExpiresAt: (0, time_1.toIso)(absoluteExpiresAt),
                    policy: { ...cmd.policy },
                    ...withContext(cmd.context),
                },
            },
        ],
    };
}
/**
 * Rule 4: is `secret` the genuine secret of `generation`? Hashes are compared in constant time.
 * Older generations are derived forward to the nearest generation whose hash is kept (next
 * anchor or the previous generation).
 */
function authenticate(state, generation, secret, secrets) {
    const head = state.generation;
    if (!Number.isSafeInteger(generation) || generation < 1 || generation > head)
        return false;
    if (!Buffer.isBuffer(secret) || secret.length !== refresh_token_1.REFRESH_TOKEN_SECRET_BYTES)
        return false;
    if (generation === head)
        return (0, constant_time_1.constantTimeEqual)(secrets.hash(secret), state.headHash);
    if (generation === head - 1)
        return state.previousHash !== null && (0, constant_time_1.constantTimeEqual)(secrets.hash(secret), state.previousHash);
    const nextAnchor = 1 + Math.ceil((generation - 1) / exports.ANCHOR_INTERVAL) * exports.ANCHOR_INTERVAL;
    const target = Math.min(nextAnchor, head - 1);
    const expected = target === head - 1 ? state.previousHash : state.anchors[(target - 1) / exports.ANCHOR_INTERVAL];
    if (expected === null || expected === undefined)
        return false;
    let derived = secret;
    for (let g = generation + 1; g <= target; g++)
        derived = secrets.successor(derived, state.familyId, g);
    return (0, constant_time_1.constantTimeEqual)(secrets.hash(derived), expected);
}
function refreshExpiresIn(idleExpiresAt, absoluteExpiresAt, now) {
    return Math.max(0, Math.ceil((Math.min(idleExpiresAt, absoluteExpiresAt) - now) / 1000));
}
function familyRevoked(state, reason, now) {
    return {
        ...header(state, now),
        type: 'TokenFamilyRevoked',
        // The last access token minted before now expires at most accessTokenTtl later.
        data: { reason, revokedAt: (0, time_1.toIso)(now), accessTokensValidUntil: (0, time_1.toIso)(now + state.policy.accessTokenTtl * 1000) },
    };
}
const UNKNOWN_TOKEN = 'The refresh token is invalid';
function rotate(cmd, state, secrets) {
    const now = cmd.now;
    // Unknown family: nothing to record on (appending would create the stream). Same answer as a
    // forgery so the response does not reveal whether a family id exists.
    if (state.status === 'none') {
        return { events: [], rotation: { kind: 'rejected', error: 'invalid_grant', description: UNKNOWN_TOKEN } };
    }
    const reject = (reason, description, error = 'invalid_grant') => {
        const event = {
            ...header(state, now),
            type: 'RefreshRejected',
            data: { reason, presentedGeneration: cmd.generation, ...withContext(cmd.context) },
        };
        return { events: [event], rotation: { kind: 'rejected', error, description } };
    };
    // Rule 4 first: nothing below may be influenced by someone who merely knows a family id.
    if (!authenticate(state, cmd.generation, cmd.secret, secrets))
        return reject('bad_secret', UNKNOWN_TOKEN);
    if (cmd.clientId !== state.clientId)
        return reject('client_mismatch', 'The refresh token was issued to another client');
    if (state.status === 'revoked')
        return reject('revoked', 'The refresh token has been revoked');
    if (!familyIsActiveAt(state, now))
        return reject('expired', 'The refresh token has expired');
    // Rule 7: narrowing applies to this access token only; the family keeps its scope.
    let scope = state.scope;
    if (cmd.scope !== undefined) {
        const requested = Array.isArray(cmd.scope) ? (0, scope_1.normaliseScope)(cmd.scope) : null;
        if (requested === null || !(0, scope_1.isSubset)(requested, state.scope)) {
            return reject('invalid_scope', 'The requested scope exceeds the scope originally granted', 'invalid_scope');
        }
        scope = requested;
    }
    const head = state.generation;
    // Rule 1: the live head rotates.
    if (cmd.generation === head) {
        const generation = head + 1;
        const secret = secrets.successor(cmd.secret, state.familyId, generation);
        const idleExpiresAt = Math.min(now + state.policy.refreshIdleTtl * 1000, state.absoluteExpiresAt);
        const rotation = {
            kind: 'rotated',
            generation,
            secret,
            scope: [...scope],
            refreshExpiresIn: refreshExpiresIn(idleExpiresAt, state.absoluteExpiresAt, now),
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
                        idleExpiresAt: (0, time_1.toIso)(idleExpiresAt),
                        scope: [...scope],
                        ...withContext(cmd.context),
                    },
                },
            ],
            rotation,
        };
    }
    // Rule 2: the previous generation inside the grace window gets the head's secret again. The
    // window end is exclusive, so a grace of 0 never replays. A negative age (another node's clock
    // slightly behind) counts as inside the window.
    const graceMs = state.policy.reuseGraceSeconds * 1000;
    if (cmd.generation === head - 1 && graceMs > 0 && state.rotatedAt !== null && now - state.rotatedAt < graceMs) {
        // successor(secret of head-1, head) is by construction the head's secret: nothing stored.
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
            },
        };
    }
    // Rule 3: an authentic but superseded token is reuse: the family is presumed stolen.
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
function revoke(cmd, state) {
    if (typeof cmd.reason !== 'string' || cmd.reason === '')
        throw new errors_1.DomainError('invalid_argument', 'reason is required');
    if (state.status === 'active')
        return { events: [familyRevoked(state, cmd.reason, cmd.now)] };
    if (state.status !== 'none')
        return { events: [] }; // already revoked or expired: idempotent
    // Pre-emptive revocation (RevokeSubject racing an issue): the stream is created revoked, so a
    // later IssueToken on it fails. No access token was minted on it, hence validUntil = revokedAt.
    if (!(0, refresh_token_1.isFamilyId)(cmd.familyId))
        throw new errors_1.DomainError('invalid_argument', 'not a family id');
    if (!cmd.subject || !cmd.clientId) {
        throw new errors_1.DomainError('missing_subject', 'revoking a family that does not exist yet needs subject and clientId');
    }
    const target = {
        familyId: cmd.familyId,
        subject: cmd.subject,
        clientId: cmd.clientId,
        policy: { ...state.policy, accessTokenTtl: 0 },
    };
    return { events: [familyRevoked(target, cmd.reason, cmd.now)] };
}
function expire(cmd, state) {
    if (state.status !== 'active')
        return { events: [] };
    const reason = expiryReasonAt(state, cmd.now);
    if (reason === null)
        return { events: [] };
    const event = {
        ...header(state, cmd.now),
        type: 'TokenFamilyExpired',
        // When the deadline passed, not when the sweeper noticed (that is occurredAt).
        data: { reason, expiredAt: (0, time_1.toIso)(reason === 'idle' ? state.idleExpiresAt : state.absoluteExpiresAt) },
    };
    return { events: [event] };
}
function revokeAccessToken(cmd, state) {
    if (typeof cmd.jti !== 'string' || cmd.jti === '')
        throw new errors_1.DomainError('invalid_argument', 'jti is required');
    if (!Number.isSafeInteger(cmd.expiresAt))
        throw new errors_1.DomainError('invalid_argument', 'expiresAt must be epoch milliseconds');
    // A revoked family already revokes all its access tokens. An expired family's last access
    // tokens can outlive it by up to accessTokenTtl, so revoking one still matters.
    if (state.status !== 'active' && state.status !== 'expired')
        return { events: [] };
    if (cmd.expiresAt <= cmd.now)
        return { events: [] }; // already dead
    if (Object.prototype.hasOwnProperty.call(state.revokedJtis, cmd.jti))
        return { events: [] };
    const event = {
        ...header(state, cmd.now),
        type: 'AccessTokenRevoked',
        data: { jti: cmd.jti, expiresAt: (0, time_1.toIso)(cmd.expiresAt) },
    };
    return { events: [event] };
}
// ---------------------------------------------------------------------------------------------
// Evolve (pure: returns a new state, never mutates the input)
function evolveFamily(state, event) {
    const at = (0, time_1.fromIso)(event.occurredAt);
    return pruneRevokedJtis(apply(state, event, at), at);
}
function apply(state, event, at) {
    switch (event.type) {
        case 'TokenFamilyIssued': {
            const d = event.data;
            const next = {
                ...state,
                // A stream revoked before issue stays revoked (the decider never produces this; fail closed).
                status: state.status === 'none' ? 'active' : state.status,
                familyId: event.familyId,
                subject: event.subject,
                clientId: event.clientId,
                scope: [...d.scope],
                audience: [...d.audience],
                policy: { ...d.policy },
                createdAt: (0, time_1.fromIso)(d.createdAt),
                generation: d.generation,
                headHash: d.tokenHash,
                previousHash: null,
                rotatedAt: null,
                anchors: [d.tokenHash],
                idleExpiresAt: (0, time_1.fromIso)(d.idleExpiresAt),
                absoluteExpiresAt: (0, time_1.fromIso)(d.absoluteExpiresAt),
                lastUsedAt: (0, time_1.fromIso)(d.createdAt),
            };
            return withLastContext(next, d.context);
        }
        case 'TokenRotated': {
            const d = event.data;
            const next = {
                ...state,
                generation: d.generation,
                previousHash: state.headHash,
                headHash: d.tokenHash,
                rotatedAt: at,
                anchors: isAnchorGeneration(d.generation) ? [...state.anchors, d.tokenHash] : state.anchors,
                idleExpiresAt: (0, time_1.fromIso)(d.idleExpiresAt),
                lastUsedAt: at,
            };
            return withLastContext(next, d.context);
        }
        case 'TokenRotationReplayed':
            return withLastContext({ ...state, lastUsedAt: at }, event.data.context);
        case 'TokenFamilyRevoked': {
            if (state.status === 'revoked')
                return state; // the first revocation is the one that counts
            return {
                ...state,
                status: 'revoked',
                // Pre-emptive revocation creates the stream: take identity from the event.
                familyId: state.status === 'none' ? event.familyId : state.familyId,
                subject: state.status === 'none' ? event.subject : state.subject,
                clientId: state.status === 'none' ? event.clientId : state.clientId,
                revokedAt: (0, time_1.fromIso)(event.data.revokedAt),
                revokedReason: event.data.reason,
            };
        }
        case 'TokenFamilyExpired':
            if (state.status !== 'active')
                return state;
            return { ...state, status: 'expired', expiredReason: event.data.reason };
        case 'AccessTokenRevoked':
            return {
                ...state,
                revokedJtis: Object.fromEntries([...Object.entries(state.revokedJtis), [event.data.jti, (0, time_1.fromIso)(event.data.expiresAt)]]),
            };
        case 'TokenReuseDetected': // the TokenFamilyRevoked that follows carries the state change
        case 'RefreshRejected':
            return state;
        default:
            return state; // unknown future event types do not change the decision state
    }
}
function withLastContext(state, context) {
    return context === undefined ? state : { ...state, lastContext: { ...context } };
}
function pruneRevokedJtis(state, at) {
    const entries = Object.entries(state.revokedJtis);
    if (!entries.some(([, exp]) => exp <= at))
        return state;
    return { ...state, revokedJtis: Object.fromEntries(entries.filter(([, exp]) => exp > at)) };
}
