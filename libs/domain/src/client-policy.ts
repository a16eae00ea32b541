import type { ClientEvent, ClientRegistered, FamilyPolicy } from './events';
import { DomainError } from './errors';
import { isScopeToken } from './scope';
import { toIso, fromIso } from './time';

/**
 * Client registrations (SPEC §3 `POST /v1/clients`): defaults, validation, and the client stream's
 * state. All TTLs are whole seconds.
 */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export const CLIENT_DEFAULTS = Object.freeze({
  type: 'confidential' as const,
  allowedScopes: [] as readonly string[],
  accessTokenTtl: 300,
  refreshIdleTtl: 1_296_000, // 15 days
  refreshAbsoluteTtl: 2_592_000, // 30 days
  reuseGraceSeconds: 0,
  maxFamiliesPerSubject: 200,
});

/** Upper bounds that keep millisecond arithmetic far from overflow and policies sane. */
export const CLIENT_LIMITS = Object.freeze({
  maxAccessTokenTtl: 86_400, // a JWT that outlives a day defeats revocation by expiry
  maxRefreshTtl: 315_360_000, // 10 years
  maxReuseGraceSeconds: 300,
  maxFamiliesPerSubject: 100_000,
  maxSecretLength: 256,
  maxScopes: 256,
  maxSecretOverlapSeconds: 2_592_000, // 30 days: long enough to roll a fleet, short enough to end
});

export type ClientType = 'confidential' | 'public';

export interface ClientRegistration {
  clientId: string;
  type: ClientType;
  /**
   * The secret exactly as supplied: the caller hashes it and never stores or echoes it.
   * null for a public client, and for a confidential client that sent none (the caller
   * generates one and returns it once).
   */
  secret: string | null;
  allowedScopes: string[];
  policy: FamilyPolicy;
  maxFamiliesPerSubject: number;
  /** RFC 7662 §4: an explicit right to introspect every client's tokens (resource servers). */
  introspectAll: boolean;
  /** RFC 9449: families of this client must be issued DPoP-bound (dpopJkt); default false. */
  requireDpop: boolean;
}

export type ClientValidation = { ok: true; value: ClientRegistration } | { ok: false; errors: string[] };

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
  'introspectAll',
  'requireDpop',
]);

// client_secret = *VSCHAR (RFC 6749 Appendix A.2).
const VSCHAR = /^[\x20-\x7e]+$/;

function intField(
  input: Record<string, unknown>,
  name: string,
  dflt: number,
  min: number,
  max: number,
  errors: string[],
): number {
  const v = input[name];
  if (v === undefined || v === null) return dflt;
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
export function normaliseClientRegistration(input: unknown): ClientValidation {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, errors: ['the registration must be a JSON object'] };
  }
  const body = input as Record<string, unknown>;
  const errors: string[] = [];

  for (const key of Object.keys(body)) if (!KNOWN_FIELDS.has(key)) errors.push(`unknown field ${JSON.stringify(key)}`);

  const clientId = body.clientId;
  if (typeof clientId !== 'string' || !CLIENT_ID_PATTERN.test(clientId)) {
    errors.push('clientId is required: 1-128 characters of A-Z a-z 0-9 . _ : -');
  }

  let type: ClientType = CLIENT_DEFAULTS.type;
  if (body.type !== undefined && body.type !== null) {
    if (body.type === 'confidential' || body.type === 'public') type = body.type;
    else errors.push('type must be "confidential" or "public"');
  }

  let secret: string | null = null;
  if (body.secret !== undefined && body.secret !== null) {
    if (typeof body.secret !== 'string' || body.secret.length > CLIENT_LIMITS.maxSecretLength || !VSCHAR.test(body.secret)) {
      errors.push(`secret must be 1-${CLIENT_LIMITS.maxSecretLength} printable ASCII characters`);
    } else if (type === 'public') {
      errors.push('a public client must not have a secret');
    } else {
      secret = body.secret;
    }
  }

  const allowedScopes = scopesField(body, errors) ?? [...CLIENT_DEFAULTS.allowedScopes];
  const introspectAll = boolField(body, 'introspectAll', errors) ?? false;
  const requireDpop = boolField(body, 'requireDpop', errors) ?? false;

  const accessTokenTtl = intField(body, 'accessTokenTtl', CLIENT_DEFAULTS.accessTokenTtl, 1, CLIENT_LIMITS.maxAccessTokenTtl, errors);
  const refreshIdleTtl = intField(body, 'refreshIdleTtl', CLIENT_DEFAULTS.refreshIdleTtl, 1, CLIENT_LIMITS.maxRefreshTtl, errors);
  const refreshAbsoluteTtl = intField(
    body,
    'refreshAbsoluteTtl',
    CLIENT_DEFAULTS.refreshAbsoluteTtl,
    1,
    CLIENT_LIMITS.maxRefreshTtl,
    errors,
  );
  const reuseGraceSeconds = intField(
    body,
    'reuseGraceSeconds',
    CLIENT_DEFAULTS.reuseGraceSeconds,
    0,
    CLIENT_LIMITS.maxReuseGraceSeconds,
    errors,
  );
  const maxFamiliesPerSubject = intField(
    body,
    'maxFamiliesPerSubject',
    CLIENT_DEFAULTS.maxFamiliesPerSubject,
    1,
    CLIENT_LIMITS.maxFamiliesPerSubject,
    errors,
  );
  if (refreshIdleTtl > refreshAbsoluteTtl) errors.push('refreshIdleTtl must not exceed refreshAbsoluteTtl');

  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    value: {
      clientId: clientId as string,
      type,
      secret,
      allowedScopes,
      policy: { accessTokenTtl, refreshIdleTtl, refreshAbsoluteTtl, reuseGraceSeconds },
      maxFamiliesPerSubject,
      introspectAll,
      requireDpop,
    },
  };
}

function scopesField(body: Record<string, unknown>, errors: string[]): string[] | undefined {
  const v = body.allowedScopes;
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length > CLIENT_LIMITS.maxScopes) {
    errors.push(`allowedScopes must be an array of at most ${CLIENT_LIMITS.maxScopes} scope tokens`);
  } else if (!v.every(isScopeToken)) {
    errors.push('allowedScopes contains an invalid scope token (RFC 6749 §3.3)');
  } else {
    return [...new Set(v as string[])];
  }
  return undefined;
}

function boolField(body: Record<string, unknown>, name: string, errors: string[]): boolean | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') {
    errors.push(`${name} must be true or false`);
    return undefined;
  }
  return v;
}

/** The settings PATCH /v1/clients/{id} may change; absent fields keep their value. */
export interface ClientPolicyPatch {
  allowedScopes?: string[];
  accessTokenTtl?: number;
  refreshIdleTtl?: number;
  refreshAbsoluteTtl?: number;
  reuseGraceSeconds?: number;
  maxFamiliesPerSubject?: number;
  introspectAll?: boolean;
  requireDpop?: boolean;
}

const PATCHABLE_FIELDS = new Set<string>([
  'allowedScopes',
  'accessTokenTtl',
  'refreshIdleTtl',
  'refreshAbsoluteTtl',
  'reuseGraceSeconds',
  'maxFamiliesPerSubject',
  'introspectAll',
  'requireDpop',
]);

/**
 * Validates a PATCH body field by field (the same bounds as a registration; idle ≤ absolute is
 * checked by the decider on the merged result). Type, id and secret are not settings: changing
 * them is an error, as is any unknown field. Never throws.
 */
export function normaliseClientPolicyPatch(input: unknown): { ok: true; value: ClientPolicyPatch } | { ok: false; errors: string[] } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return { ok: false, errors: ['the patch must be a JSON object'] };
  const body = input as Record<string, unknown>;
  const errors: string[] = [];
  for (const key of Object.keys(body)) {
    if (!PATCHABLE_FIELDS.has(key)) errors.push(`${JSON.stringify(key)} cannot be changed${KNOWN_FIELDS.has(key) ? '' : ' (unknown field)'}`);
  }
  const value: ClientPolicyPatch = {};
  const int = (name: keyof ClientPolicyPatch, min: number, max: number): void => {
    if (body[name] === undefined || body[name] === null) return;
    const before = errors.length;
    const v = intField(body, name, 0, min, max, errors);
    if (errors.length === before) (value as Record<string, unknown>)[name] = v;
  };
  int('accessTokenTtl', 1, CLIENT_LIMITS.maxAccessTokenTtl);
  int('refreshIdleTtl', 1, CLIENT_LIMITS.maxRefreshTtl);
  int('refreshAbsoluteTtl', 1, CLIENT_LIMITS.maxRefreshTtl);
  int('reuseGraceSeconds', 0, CLIENT_LIMITS.maxReuseGraceSeconds);
  int('maxFamiliesPerSubject', 1, CLIENT_LIMITS.maxFamiliesPerSubject);
  const scopes = scopesField(body, errors);
  if (scopes) value.allowedScopes = scopes;
  const introspectAll = boolField(body, 'introspectAll', errors);
  if (introspectAll !== undefined) value.introspectAll = introspectAll;
  const requireDpop = boolField(body, 'requireDpop', errors);
  if (requireDpop !== undefined) value.requireDpop = requireDpop;
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value };
}

/** Errors in a policy (empty when valid): the decider re-checks what IssueToken is given. */
export function validateFamilyPolicy(policy: unknown): string[] {
  if (typeof policy !== 'object' || policy === null) return ['policy must be an object'];
  const p = policy as Record<string, unknown>;
  const errors: string[] = [];
  const check = (name: string, min: number, max: number): void => {
    const v = p[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) errors.push(`${name} must be an integer in [${min}, ${max}]`);
  };
  check('accessTokenTtl', 1, CLIENT_LIMITS.maxAccessTokenTtl);
  check('refreshIdleTtl', 1, CLIENT_LIMITS.maxRefreshTtl);
  check('refreshAbsoluteTtl', 1, CLIENT_LIMITS.maxRefreshTtl);
  check('reuseGraceSeconds', 0, CLIENT_LIMITS.maxReuseGraceSeconds);
  if (errors.length === 0 && (p.refreshIdleTtl as number) > (p.refreshAbsoluteTtl as number)) {
    errors.push('refreshIdleTtl must not exceed refreshAbsoluteTtl');
  }
  return errors;
}

/**
 * State of one client stream. JSON-serialisable; times in epoch ms. v2 added the lifecycle (secret
 * rotation with overlap, disable, introspectAll): a v1 snapshot is replayed from the events.
 */
export interface ClientState {
  v: 2;
  status: 'none' | 'registered';
  clientId: string;
  type: ClientType;
  secretHash: string | null;
  /** The secret replaced by the last rotation, accepted until previousSecretValidUntil (exclusive). */
  previousSecretHash: string | null;
  previousSecretValidUntil: number;
  disabled: boolean;
  introspectAll: boolean;
  allowedScopes: string[];
  policy: FamilyPolicy;
  maxFamiliesPerSubject: number;
  registeredAt: number;
  /** Set only once an event says so (absent = false), so older streams fold to the same snapshots. */
  requireDpop?: boolean;
}

export function initialClientState(clientId = ''): ClientState {
  return {
    v: 2,
    status: 'none',
    clientId,
    type: CLIENT_DEFAULTS.type,
    secretHash: null,
    previousSecretHash: null,
    previousSecretValidUntil: 0,
    disabled: false,
    introspectAll: false,
    allowedScopes: [],
    policy: {
      accessTokenTtl: CLIENT_DEFAULTS.accessTokenTtl,
      refreshIdleTtl: CLIENT_DEFAULTS.refreshIdleTtl,
      refreshAbsoluteTtl: CLIENT_DEFAULTS.refreshAbsoluteTtl,
      reuseGraceSeconds: CLIENT_DEFAULTS.reuseGraceSeconds,
    },
    maxFamiliesPerSubject: CLIENT_DEFAULTS.maxFamiliesPerSubject,
    registeredAt: 0,
  };
}

/** The secret hashes that authenticate the client at `now`: the current one, and the previous one within its overlap. */
export function acceptedSecretHashes(state: ClientState, now: number): string[] {
  const hashes = state.secretHash ? [state.secretHash] : [];
  if (state.previousSecretHash && now < state.previousSecretValidUntil) hashes.push(state.previousSecretHash);
  return hashes;
}

export function evolveClient(state: ClientState, event: ClientEvent): ClientState {
  switch (event.type) {
    case 'ClientRegistered':
      return {
        ...initialClientState(event.clientId),
        status: 'registered',
        type: event.data.type,
        secretHash: event.data.secretHash,
        introspectAll: event.data.introspectAll === true,
        allowedScopes: [...event.data.allowedScopes],
        policy: { ...event.data.policy },
        maxFamiliesPerSubject: event.data.maxFamiliesPerSubject,
        registeredAt: fromIso(event.occurredAt),
        ...(event.data.requireDpop === true ? { requireDpop: true } : {}),
      };
    case 'ClientSecretRotated': {
      const until = event.data.previousValidUntil === null ? 0 : fromIso(event.data.previousValidUntil);
      return {
        ...state,
        secretHash: event.data.secretHash,
        previousSecretHash: until > 0 ? state.secretHash : null,
        previousSecretValidUntil: until,
      };
    }
    case 'ClientDisabled':
      return { ...state, disabled: true };
    case 'ClientEnabled':
      return { ...state, disabled: false };
    case 'ClientPolicyChanged':
      return {
        ...state,
        allowedScopes: [...event.data.allowedScopes],
        policy: { ...event.data.policy },
        maxFamiliesPerSubject: event.data.maxFamiliesPerSubject,
        introspectAll: event.data.introspectAll,
        ...(event.data.requireDpop === undefined ? {} : { requireDpop: event.data.requireDpop }),
      };
    default:
      return state;
  }
}

export interface RegisterClient {
  type: 'RegisterClient';
  registration: ClientRegistration;
  /** Hash of the (supplied or generated) secret; null for a public client. */
  secretHash: string | null;
  now: number;
}

/** The caller generates the secret and hashes it; only the hash comes in. */
export interface RotateClientSecret {
  type: 'RotateClientSecret';
  secretHash: string;
  /** How long the replaced secret keeps authenticating (whole seconds, 0 = not at all). */
  overlapSeconds: number;
  now: number;
}

export interface DisableClient {
  type: 'DisableClient';
  revokeFamilies: boolean;
  now: number;
}

export interface EnableClient {
  type: 'EnableClient';
  now: number;
}

export interface ChangeClientPolicy {
  type: 'ChangeClientPolicy';
  patch: ClientPolicyPatch;
  now: number;
}

export type ClientCommand = RegisterClient | RotateClientSecret | DisableClient | EnableClient | ChangeClientPolicy;

/**
 * The client stream's decider. A client id is registered once: a second registration throws
 * DomainError('client_exists') (409), so a policy cannot be changed by accident — PATCH
 * (ChangeClientPolicy) is the way. Lifecycle commands on an unregistered id throw
 * DomainError('client_not_found'). Disable, enable and a patch that changes nothing decide no event.
 */
export function decideClient(command: ClientCommand, state: ClientState): ClientEvent[] {
  if (command.type === 'RegisterClient') return register(command, state);
  if (state.status !== 'registered') throw new DomainError('client_not_found', `client ${state.clientId} is not registered`);
  const header = { familyId: '' as const, subject: '' as const, clientId: state.clientId, occurredAt: toIso(command.now) };
  switch (command.type) {
    case 'RotateClientSecret': {
      if (state.type === 'public') throw new DomainError('invalid_argument', 'a public client has no secret to rotate');
      const overlap = command.overlapSeconds;
      if (!Number.isInteger(overlap) || overlap < 0 || overlap > CLIENT_LIMITS.maxSecretOverlapSeconds) {
        throw new DomainError('invalid_argument', `overlapSeconds must be a whole number between 0 and ${CLIENT_LIMITS.maxSecretOverlapSeconds}`);
      }
      if (!command.secretHash) throw new DomainError('invalid_argument', 'a new secret hash is required');
      return [
        {
          type: 'ClientSecretRotated',
          ...header,
          data: { secretHash: command.secretHash, previousValidUntil: overlap > 0 ? toIso(command.now + overlap * 1000) : null },
        },
      ];
    }
    case 'DisableClient':
      return state.disabled ? [] : [{ type: 'ClientDisabled', ...header, data: { revokeFamilies: command.revokeFamilies } }];
    case 'EnableClient':
      return state.disabled ? [{ type: 'ClientEnabled', ...header, data: {} }] : [];
    case 'ChangeClientPolicy': {
      const p = command.patch;
      const policy: FamilyPolicy = {
        accessTokenTtl: p.accessTokenTtl ?? state.policy.accessTokenTtl,
        refreshIdleTtl: p.refreshIdleTtl ?? state.policy.refreshIdleTtl,
        refreshAbsoluteTtl: p.refreshAbsoluteTtl ?? state.policy.refreshAbsoluteTtl,
        reuseGraceSeconds: p.reuseGraceSeconds ?? state.policy.reuseGraceSeconds,
      };
      const errors = validateFamilyPolicy(policy);
      const maxFamiliesPerSubject = p.maxFamiliesPerSubject ?? state.maxFamiliesPerSubject;
      if (!Number.isInteger(maxFamiliesPerSubject) || maxFamiliesPerSubject < 1 || maxFamiliesPerSubject > CLIENT_LIMITS.maxFamiliesPerSubject) {
        errors.push(`maxFamiliesPerSubject must be an integer in [1, ${CLIENT_LIMITS.maxFamiliesPerSubject}]`);
      }
      const allowedScopes = p.allowedScopes ? [...new Set(p.allowedScopes)] : state.allowedScopes;
      if (allowedScopes.length > CLIENT_LIMITS.maxScopes || !allowedScopes.every(isScopeToken)) errors.push('allowedScopes is invalid');
      if (errors.length > 0) throw new DomainError('invalid_argument', errors.join('; '));
      const data = {
        allowedScopes: [...allowedScopes],
        policy,
        maxFamiliesPerSubject,
        introspectAll: p.introspectAll ?? state.introspectAll,
      };
      const requireDpop = p.requireDpop ?? state.requireDpop === true;
      // Said only once it was ever true, so events of clients that never used DPoP keep their shape.
      if (requireDpop || state.requireDpop !== undefined) Object.assign(data, { requireDpop });
      const unchanged =
        JSON.stringify(data) ===
        JSON.stringify({
          allowedScopes: state.allowedScopes,
          policy: state.policy,
          maxFamiliesPerSubject: state.maxFamiliesPerSubject,
          introspectAll: state.introspectAll,
          ...(requireDpop || state.requireDpop !== undefined ? { requireDpop: state.requireDpop === true } : {}),
        });
      return unchanged ? [] : [{ type: 'ClientPolicyChanged', ...header, data }];
    }
  }
}

function register(command: RegisterClient, state: ClientState): ClientRegistered[] {
  const { registration: r, secretHash, now } = command;
  if (state.status !== 'none') throw new DomainError('client_exists', `client ${r.clientId} is already registered`);
  if (r.type === 'confidential' && !secretHash) {
    throw new DomainError('invalid_argument', 'a confidential client needs a secret hash');
  }
  if (r.type === 'public' && secretHash) throw new DomainError('invalid_argument', 'a public client has no secret');
  return [
    {
      type: 'ClientRegistered',
      familyId: '',
      subject: '',
      clientId: r.clientId,
      occurredAt: toIso(now),
      data: {
        type: r.type,
        secretHash: r.type === 'public' ? null : secretHash,
        allowedScopes: [...r.allowedScopes],
        policy: { ...r.policy },
        maxFamiliesPerSubject: r.maxFamiliesPerSubject,
        introspectAll: r.introspectAll,
        ...(r.requireDpop === true ? { requireDpop: true } : {}),
      },
    },
  ];
}
