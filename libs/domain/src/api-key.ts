import { crc32 } from './crc32';
import { decodeBase62, encodeBase62, encodeBase62Uint, encodeCrockford32 } from './encoding';
import { DomainError } from './errors';
import type { ApiKeyCreated, ApiKeyEvent, ApiKeyRevoked } from './events';
import { fromIso, toIso } from './time';

/**
 * API keys for `/v1` (SPEC §3, §9): each key grants a set of scopes, is stored only as a keyed hash,
 * and lives on its own stream `apikey-<keyId>` (created once, revoked at most once).
 */

/** What each scope lets a key do; `admin` grants every other one. */
export const API_KEY_SCOPES = [
  'families:issue',
  'families:revoke',
  'subjects:revoke',
  'clients:write',
  'audit:read',
  'revocations:read',
  'api-keys:write',
  'anomalies:triage',
  'ssf:manage',
  'ssf:read',
  'admin',
] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

export function isApiKeyScope(s: unknown): s is ApiKeyScope {
  return typeof s === 'string' && (API_KEY_SCOPES as readonly string[]).includes(s);
}

/** Whether keys with `granted` may call an endpoint that needs `required`. */
export function scopesGrant(granted: readonly string[], required: ApiKeyScope): boolean {
  return granted.includes('admin') || granted.includes(required);
}

/** Key ids: `key_` + 26 lower-case Crockford base32 characters (128 random bits), like family ids. */
export const API_KEY_ID_PREFIX = 'key_';
export const API_KEY_ID_PATTERN = /^key_[0-9a-hjkmnp-tv-z]{26}$/;
export const API_KEY_ID_RANDOM_BYTES = 16;

export function isApiKeyId(s: unknown): s is string {
  return typeof s === 'string' && API_KEY_ID_PATTERN.test(s);
}

/** The caller supplies the random bytes: the domain has no source of randomness. */
export function formatApiKeyId(bytes16: Buffer): string {
  if (!Buffer.isBuffer(bytes16) || bytes16.length !== API_KEY_ID_RANDOM_BYTES) {
    throw new DomainError('invalid_argument', `an API key id needs exactly ${API_KEY_ID_RANDOM_BYTES} random bytes`);
  }
  return API_KEY_ID_PREFIX + encodeCrockford32(bytes16, 26);
}

/*
 * API-key wire format, built like the refresh tokens (refresh-token.ts):
 *
 *   tlk_<key id body>_<secret>_<checksum>
 *
 *   tlk_       fixed prefix for secret scanners
 *   key id     the 26-character body of the key id (without `key_`): the key is found without a scan
 *   secret     exactly 32 random bytes (256 bits), base62, fixed width 43
 *   checksum   CRC-32 of everything before the last `_`, base62, fixed width 6
 *
 * 81 characters of [A-Za-z0-9_]. Parsing needs no I/O; the checksum only rejects typos and garbage —
 * the keyed hash in the key's stream decides whether the secret is genuine.
 */
export const API_KEY_PREFIX = 'tlk_';
export const API_KEY_SECRET_BYTES = 32;
export const API_KEY_LENGTH = 81;
/** Shape only, for secret scanners and log scrubbers. */
export const API_KEY_PATTERN = /\btlk_[0-9a-hjkmnp-tv-z]{26}_[0-9A-Za-z]{43}_[0-9A-Za-z]{6}\b/;
const STRICT = /^tlk_([0-9a-hjkmnp-tv-z]{26})_([0-9A-Za-z]{43})_([0-9A-Za-z]{6})$/;
const SECRET_CHARS = 43;
const CHECKSUM_CHARS = 6;

export interface ApiKeyParts {
  keyId: string;
  secret: Buffer;
}

function checksum(body: string): string {
  return encodeBase62Uint(crc32(body), CHECKSUM_CHARS);
}

export function formatApiKey({ keyId, secret }: ApiKeyParts): string {
  if (!isApiKeyId(keyId)) throw new DomainError('invalid_argument', 'not an API key id');
  if (!Buffer.isBuffer(secret) || secret.length !== API_KEY_SECRET_BYTES) {
    throw new DomainError('invalid_argument', `an API key secret must be exactly ${API_KEY_SECRET_BYTES} bytes`);
  }
  const body = `${API_KEY_PREFIX}${keyId.slice(API_KEY_ID_PREFIX.length)}_${encodeBase62(secret, SECRET_CHARS)}`;
  return `${body}_${checksum(body)}`;
}

/** Null for anything that is not a well-formed key with a valid checksum. Never throws. */
export function parseApiKey(s: unknown): ApiKeyParts | null {
  if (typeof s !== 'string' || s.length !== API_KEY_LENGTH) return null;
  const m = STRICT.exec(s);
  if (!m) return null;
  const [, id, secretText, sum] = m;
  if (checksum(s.slice(0, s.length - CHECKSUM_CHARS - 1)) !== sum) return null;
  const secret = decodeBase62(secretText, API_KEY_SECRET_BYTES);
  if (secret === null) return null;
  return { keyId: API_KEY_ID_PREFIX + id, secret };
}

export const API_KEY_NAME_MAX = 128;
const API_KEY_NAME = /^[\x20-\x7e]+$/;

export interface ApiKeyState {
  v: 1;
  status: 'none' | 'active' | 'revoked';
  keyId: string;
  name: string;
  scopes: ApiKeyScope[];
  /** Keyed hash of the secret (LedgerSecrets.hashApiKeySecret); '' before creation. */
  keyHash: string;
  createdAt: number;
  /** Epoch ms; null = never expires. */
  expiresAt: number | null;
  revokedAt: number | null;
}

export type ApiKeyCommand =
  | {
      type: 'CreateApiKey';
      keyId: string;
      name: string;
      scopes: readonly string[];
      /** Computed by the caller from the secret it generated: the secret never reaches the decider. */
      keyHash: string;
      expiresAt?: number | null;
      now: number;
    }
  | { type: 'RevokeApiKey'; keyId: string; now: number };

export function initialApiKeyState(keyId: string): ApiKeyState {
  return { v: 1, status: 'none', keyId, name: '', scopes: [], keyHash: '', createdAt: 0, expiresAt: null, revokedAt: null };
}

/** Whether a key in this state may authenticate at `now` (expiry is checked against the caller's clock). */
export function apiKeyIsUsable(state: ApiKeyState, now: number): boolean {
  return state.status === 'active' && (state.expiresAt === null || now < state.expiresAt);
}

/** Name and scopes as a create command gives them, or every problem with them. */
export function validateApiKeyInput(name: unknown, scopes: unknown): string[] {
  const errors: string[] = [];
  if (typeof name !== 'string' || name.trim() === '' || name.length > API_KEY_NAME_MAX || !API_KEY_NAME.test(name)) {
    errors.push(`name must be 1 to ${API_KEY_NAME_MAX} printable ASCII characters`);
  }
  if (!Array.isArray(scopes) || scopes.length === 0) {
    errors.push(`scopes must be a non-empty list of: ${API_KEY_SCOPES.join(', ')}`);
  } else {
    const unknown = scopes.filter((s) => !isApiKeyScope(s));
    if (unknown.length > 0) errors.push(`unknown scopes ${unknown.map((s) => JSON.stringify(s)).join(', ')}; known: ${API_KEY_SCOPES.join(', ')}`);
  }
  return errors;
}

/**
 * Create once (DomainError 'api_key_exists' on a second create of the id); revoke is idempotent
 * (nothing happens to a key already revoked) and needs the key to exist ('api_key_not_found').
 */
export function decideApiKey(command: ApiKeyCommand, state: ApiKeyState): ApiKeyEvent[] {
  if (!isApiKeyId(command.keyId)) throw new DomainError('invalid_argument', 'not an API key id');
  if (state.status !== 'none' && state.keyId !== command.keyId) throw new DomainError('invalid_argument', 'command and state are for different keys');
  if (!Number.isSafeInteger(command.now) || command.now < 0) throw new DomainError('invalid_argument', 'now must be epoch milliseconds');
  const header = { familyId: '' as const, subject: '' as const, clientId: '' as const, occurredAt: toIso(command.now) };
  switch (command.type) {
    case 'CreateApiKey': {
      if (state.status !== 'none') throw new DomainError('api_key_exists', `API key ${command.keyId} already exists`);
      const errors = validateApiKeyInput(command.name, command.scopes);
      const expiresAt = command.expiresAt ?? null;
      if (expiresAt !== null && (!Number.isSafeInteger(expiresAt) || expiresAt <= command.now)) errors.push('expiresAt must be in the future');
      if (typeof command.keyHash !== 'string' || command.keyHash === '') errors.push('a key hash is required');
      if (errors.length > 0) throw new DomainError('invalid_argument', errors.join('; '));
      const event: ApiKeyCreated = {
        type: 'ApiKeyCreated',
        ...header,
        data: {
          keyId: command.keyId,
          name: command.name,
          scopes: [...new Set(command.scopes as ApiKeyScope[])],
          keyHash: command.keyHash,
          createdAt: header.occurredAt,
          expiresAt: expiresAt === null ? null : toIso(expiresAt),
        },
      };
      return [event];
    }
    case 'RevokeApiKey': {
      if (state.status === 'none') throw new DomainError('api_key_not_found', `no API key ${command.keyId}`);
      if (state.status === 'revoked') return [];
      const event: ApiKeyRevoked = { type: 'ApiKeyRevoked', ...header, data: { keyId: command.keyId, revokedAt: header.occurredAt } };
      return [event];
    }
  }
}

export function evolveApiKey(state: ApiKeyState, event: ApiKeyEvent): ApiKeyState {
  switch (event.type) {
    case 'ApiKeyCreated':
      return {
        ...state,
        status: 'active',
        keyId: event.data.keyId,
        name: event.data.name,
        // A scope this version does not know (written by a newer one) grants nothing here.
        scopes: event.data.scopes.filter(isApiKeyScope),
        keyHash: event.data.keyHash,
        createdAt: fromIso(event.data.createdAt),
        expiresAt: event.data.expiresAt === null ? null : fromIso(event.data.expiresAt),
      };
    case 'ApiKeyRevoked':
      return { ...state, status: 'revoked', revokedAt: fromIso(event.data.revokedAt) };
    default:
      return state;
  }
}
