"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.CLIENT_LIMITS = exports.CLIENT_DEFAULTS = exports.CLIENT_ID_PATTERN = void 0;
exports.normaliseClientRegistration = normaliseClientRegistration;
exports.validateFamilyPolicy = validateFamilyPolicy;
exports.initialClientState = initialClientState;
exports.evolveClient = evolveClient;
exports.decideClient = decideClient;
const errors_1 = require("./errors");
const scope_1 = require("./scope");
const time_1 = require("./time");
/**
 * Client registrations (SPEC §3 `POST /v1/clients`): defaults, validation, and the client stream's
 * state. All TTLs are whole seconds.
 */
exports.CLIENT_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
exports.CLIENT_DEFAULTS = Object.freeze({
    type: 'confidential',
    allowedScopes: [],
    accessTokenTtl: 300,
    refreshIdleTtl: 1_296_000, // 15 days
    refreshAbsoluteTtl: 2_592_000, // 30 days
    reuseGraceSeconds: 0,
    maxFamiliesPerSubject: 200,
});
/** Upper bounds that keep millisecond arithmetic far from overflow and policies sane. */
exports.CLIENT_LIMITS = Object.freeze({
    maxAccessTokenTtl: 86_400, // a JWT that outlives a day defeats revocation by expiry
    maxRefreshTtl: 315_360_000, // 10 years
    maxReuseGraceSeconds: 300,
    maxFamiliesPerSubject: 100_000,
    maxSecretLength: 256,
    maxScopes: 256,
});
const KNOWN_FIELDS = new Set([
    'clientId',
    'type',
    'secret',
    'allowedScopes',
    'accessTokenTtl',
    'refreshIdleTtl',
    'refreshAbsoluteTtl',
    'reuseGraceSeconds',
    'maxFamiliesPerSubject',
]);
// client_secret = *VSCHAR (RFC 6749 Appendix A.2).
const VSCHAR = /^[\x20-\x7e]+$/;
function intField(input, name, dflt, min, max, errors) {
    const v = input[name];
    if (v === undefined || v === null)
        return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v)) {
        errors.push(`${name} must be a whole number of ${name === 'maxFamiliesPerSubject' ? 'families' : 'seconds'}`);
        return dflt;
    }
    if (v < min || v > max) {
        errors.push(`${name} must be between ${min} and ${max}`);
        return dflt;
    }
    return v;
}
/**
 * Applies defaults and validates a registration body (parsed JSON, so `unknown`). Unknown fields
 * are errors, so that a typo such as `refreshIdleTTL` cannot silently fall back to a default.
 * `null` counts as absent for optional fields. Never throws.
 */
function normaliseClientRegistration(input) {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        return { ok: false, errors: ['the registration must be a JSON object'] };
    }
    const body = input;
    const errors = [];
    for (const key of Object.keys(body))
        if (!KNOWN_FIELDS.has(key))
            errors.push(`unknown field ${JSON.stringify(key)}`);
    const clientId = body.clientId;
    if (typeof clientId !== 'string' || !exports.CLIENT_ID_PATTERN.test(clientId)) {
        errors.push('clientId is required: 1-128 characters of A-Z a-z 0-9 . _ : -');
    }
    let type = exports.CLIENT_DEFAULTS.type;
    if (body.type !== undefined && body.type !== null) {
        if (body.type === 'confidential' || body.type === 'public')
            type = body.type;
        else
            errors.push('type must be "confidential" or "public"');
    }
    let secret = null;
    if (body.secret !== undefined && body.secret !== null) {
        if (typeof body.secret !== 'string' || body.secret.length > exports.CLIENT_LIMITS.maxSecretLength || !VSCHAR.test(body.secret)) {
            errors.push(`secret must be 1-${exports.CLIENT_LIMITS.maxSecretLength} printable ASCII characters`);
        }
        else if (type === 'public') {
            errors.push('a public client must not have a secret');
        }
        else {
            secret = body.secret;
        }
    }
    let allowedScopes = [...exports.CLIENT_DEFAULTS.allowedScopes];
    if (body.allowedScopes !== undefined && body.allowedScopes !== null) {
        if (!Array.isArray(body.allowedScopes) || body.allowedScopes.length > exports.CLIENT_LIMITS.maxScopes) {
            errors.push(`allowedScopes must be an array of at most ${exports.CLIENT_LIMITS.maxScopes} scope tokens`);
        }
        else if (!body.allowedScopes.every(scope_1.isScopeToken)) {
            errors.push('allowedScopes contains an invalid scope token (RFC 6749 §3.3)');
        }
        else {
            allowedScopes = [...new Set(body.allowedScopes)];
        }
    }
    const accessTokenTtl = intField(body, 'accessTokenTtl', exports.CLIENT_DEFAULTS.accessTokenTtl, 1, exports.CLIENT_LIMITS.maxAccessTokenTtl, errors);
    const refreshIdleTtl = intField(body, 'refreshIdleTtl', exports.CLIENT_DEFAULTS.refreshIdleTtl, 1, exports.CLIENT_LIMITS.maxRefreshTtl, errors);
    const refreshAbsoluteTtl = intField(body, 'refreshAbsoluteTtl', exports.CLIENT_DEFAULTS.refreshAbsoluteTtl, 1, exports.CLIENT_LIMITS.maxRefreshTtl, errors);
    const reuseGraceSeconds = intField(body, 'reuseGraceSeconds', exports.CLIENT_DEFAULTS.reuseGraceSeconds, 0, exports.CLIENT_LIMITS.maxReuseGraceSeconds, errors);
    const maxFamiliesPerSubject = intField(body, 'maxFamiliesPerSubject', exports.CLIENT_DEFAULTS.maxFamiliesPerSubject, 1, exports.CLIENT_LIMITS.maxFamiliesPerSubject, errors);
    if (refreshIdleTtl > refreshAbsoluteTtl)
        errors.push('refreshIdleTtl must not exceed refreshAbsoluteTtl');
    if (errors.length > 0)
        return { ok: false, errors };
    return {
        ok: true,
        value: {
            clientId: clientId,
            type,
            secret,
            allowedScopes,
            policy: { accessTokenTtl, refreshIdleTtl, refreshAbsoluteTtl, reuseGraceSeconds },
            maxFamiliesPerSubject,
        },
    };
}
/** Errors in a policy (empty when valid): the decider re-checks what IssueToken is given. */
function validateFamilyPolicy(policy) {
    if (typeof policy !== 'object' || policy === null)
        return ['policy must be an object'];
    const p = policy;
    const errors = [];
    const check = (name, min, max) => {
        const v = p[name];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
            errors.push(`${name} must be an integer in [${min}, ${max}]`);
    };
    check('accessTokenTtl', 1, exports.CLIENT_LIMITS.maxAccessTokenTtl);
    check('refreshIdleTtl', 1, exports.CLIENT_LIMITS.maxRefreshTtl);
    check('refreshAbsoluteTtl', 1, exports.CLIENT_LIMITS.maxRefreshTtl);
    check('reuseGraceSeconds', 0, exports.CLIENT_LIMITS.maxReuseGraceSeconds);
    if (errors.length === 0 && p.refreshIdleTtl > p.refreshAbsoluteTtl) {
        errors.push('refreshIdleTtl must not exceed refreshAbsoluteTtl');
    }
    return errors;
}
function initialClientState(clientId = '') {
    return {
        v: 1,
        status: 'none',
        clientId,
        type: exports.CLIENT_DEFAULTS.type,
        secretHash: null,
        allowedScopes: [],
        policy: {
            accessTokenTtl: exports.CLIENT_DEFAULTS.accessTokenTtl,
            refreshIdleTtl: exports.CLIENT_DEFAULTS.refreshIdleTtl,
            refreshAbsoluteTtl: exports.CLIENT_DEFAULTS.refreshAbsoluteTtl,
            reuseGraceSeconds: exports.CLIENT_DEFAULTS.reuseGraceSeconds,
        },
        maxFamiliesPerSubject: exports.CLIENT_DEFAULTS.maxFamiliesPerSubject,
        registeredAt: 0,
    };
}
function evolveClient(state, event) {
    if (event.type !== 'ClientRegistered')
        return state;
    return {
        v: 1,
        status: 'registered',
        clientId: event.clientId,
        type: event.data.type,
        secretHash: event.data.secretHash,
        allowedScopes: [...event.data.allowedScopes],
        policy: { ...event.data.policy },
        maxFamiliesPerSubject: event.data.maxFamiliesPerSubject,
        registeredAt: (0, time_1.fromIso)(event.occurredAt),
    };
}
/**
 * RegisterClient -> ClientRegistered. A client id is registered once: a second registration
 * throws DomainError('client_exists') (409), so a policy cannot be changed by accident.
 */
function decideClient(command, state) {
    const { registration: r, secretHash, now } = command;
    if (state.status !== 'none')
        throw new errors_1.DomainError('client_exists', `client ${r.clientId} is already registered`);
    if (r.type === 'confidential' && !secretHash) {
        throw new errors_1.DomainError('invalid_argument', 'a confidential client needs a secret hash');
    }
    if (r.type === 'public' && secretHash)
        throw new errors_1.DomainError('invalid_argument', 'a public client has no secret');
    return [
        {
            type: 'ClientRegistered',
            familyId: '',
            subject: '',
            clientId: r.clientId,
            occurredAt: (0, time_1.toIso)(now),
            data: {
                type: r.type,
                secretHash: r.type === 'public' ? null : secretHash,
                allowedScopes: [...r.allowedScopes],
                policy: { ...r.policy },
                maxFamiliesPerSubject: r.maxFamiliesPerSubject,
            },
        },
    ];
}
