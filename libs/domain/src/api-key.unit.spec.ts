import {
  API_KEY_LENGTH,
  API_KEY_PATTERN,
  API_KEY_SCOPES,
  apiKeyIsUsable,
  decideApiKey,
  evolveApiKey,
  formatApiKey,
  formatApiKeyId,
  initialApiKeyState,
  parseApiKey,
  scopesGrant,
  validateApiKeyInput,
  type ApiKeyCommand,
  type ApiKeyState,
} from './api-key';
import { crc32 } from './crc32';
import { encodeBase62Uint } from './encoding';
import { DomainError } from './errors';
import { publicEventData } from './events';
import { deciderSpec } from './testing/decider-spec';

const T0 = Date.UTC(2025, 0, 1);
const K1 = formatApiKeyId(Buffer.alloc(16, 7));
const SECRET = Buffer.alloc(32, 9);

const apiKey = deciderSpec({
  initialState: () => initialApiKeyState(K1),
  evolve: evolveApiKey,
  decide: (command: ApiKeyCommand, state: ApiKeyState) => ({ events: decideApiKey(command, state) }),
});

const create = (over: Partial<Extract<ApiKeyCommand, { type: 'CreateApiKey' }>> = {}): ApiKeyCommand => ({
  type: 'CreateApiKey',
  keyId: K1,
  name: 'resource server A',
  scopes: ['revocations:read'],
  keyHash: 'hash-1',
  now: T0,
  ...over,
});
const revoke = (now: number): ApiKeyCommand => ({ type: 'RevokeApiKey', keyId: K1, now });
const header = (now: number) => ({ familyId: '' as const, subject: '' as const, clientId: '' as const, occurredAt: new Date(now).toISOString() });

describe('API key wire format', () => {
  it('round-trips, has the scanner prefix and a fixed length', () => {
    const key = formatApiKey({ keyId: K1, secret: SECRET });
    expect(key).toHaveLength(API_KEY_LENGTH);
    expect(key.startsWith('tlk_')).toBe(true);
    expect(API_KEY_PATTERN.test(`Authorization: Bearer ${key}`)).toBe(true);
    const parsed = parseApiKey(key);
    expect(parsed?.keyId).toBe(K1);
    expect(parsed?.secret.equals(SECRET)).toBe(true);
  });

  it('rejects every single-character change, garbage and wrong types without throwing', () => {
    const key = formatApiKey({ keyId: K1, secret: SECRET });
    for (let i = 0; i < key.length; i++) {
      const c = key[i] === 'a' ? 'b' : 'a';
      expect(parseApiKey(key.slice(0, i) + c + key.slice(i + 1))).toBeNull();
    }
    for (const bad of [undefined, null, 42, '', 'tlk_', key + 'x', key.slice(1), key.replace('tlk_', 'tlr_'), 'x'.repeat(10_000)]) {
      expect(parseApiKey(bad)).toBeNull();
    }
  });

  it('rejects 43 base62 digits beyond 2^256 even with a valid checksum', () => {
    const body = `tlk_${K1.slice(4)}_${'z'.repeat(43)}`;
    // A secret that does not fit in 32 bytes cannot be formatted, so the text is built by hand.
    expect(parseApiKey(`${body}_${encodeBase62Uint(crc32(body), 6)}`)).toBeNull();
  });

  it('refuses to format a wrong id or secret size', () => {
    expect(() => formatApiKey({ keyId: 'fam_x', secret: SECRET })).toThrow(DomainError);
    expect(() => formatApiKey({ keyId: K1, secret: Buffer.alloc(16) })).toThrow(DomainError);
    expect(() => formatApiKeyId(Buffer.alloc(15))).toThrow(DomainError);
  });
});

describe('scopes', () => {
  it('admin grants every scope; any other scope only itself', () => {
    for (const s of API_KEY_SCOPES) expect(scopesGrant(['admin'], s)).toBe(true);
    expect(scopesGrant(['revocations:read'], 'revocations:read')).toBe(true);
    for (const s of API_KEY_SCOPES.filter((x) => x !== 'revocations:read')) expect(scopesGrant(['revocations:read'], s)).toBe(false);
    expect(scopesGrant([], 'audit:read')).toBe(false);
  });

  it('validates name and scopes, naming every problem', () => {
    expect(validateApiKeyInput('ok', ['audit:read', 'families:issue'])).toEqual([]);
    const errors = validateApiKeyInput('', ['audit:read', 'root']);
    expect(errors).toHaveLength(2);
    expect(errors.join(' ')).toMatch(/name/);
    expect(errors.join(' ')).toMatch(/"root"/);
    expect(validateApiKeyInput('x', [])).toHaveLength(1);
    expect(validateApiKeyInput('x\n', ['admin'])).toHaveLength(1);
    expect(validateApiKeyInput('x'.repeat(129), ['admin'])).toHaveLength(1);
  });
});

describe('API key decider', () => {
  it('creates a key with its hash, deduplicated scopes and expiry', () => {
    apiKey
      .given()
      .when(create({ scopes: ['audit:read', 'audit:read', 'families:issue'], expiresAt: T0 + 60_000 }))
      .thenEvents([
        {
          type: 'ApiKeyCreated',
          ...header(T0),
          data: {
            keyId: K1,
            name: 'resource server A',
            scopes: ['audit:read', 'families:issue'],
            keyHash: 'hash-1',
            createdAt: new Date(T0).toISOString(),
            expiresAt: new Date(T0 + 60_000).toISOString(),
          },
        },
      ])
      .thenStateMatches({ status: 'active', scopes: ['audit:read', 'families:issue'], keyHash: 'hash-1', expiresAt: T0 + 60_000 });
  });

  it('a key id is created once', () => {
    const when = apiKey.given().after(create()).when(create({ keyHash: 'other' }));
    expect(() => when.outcome()).toThrow(expect.objectContaining({ code: 'api_key_exists' }));
  });

  it('refuses bad input: unknown scope, past expiry, no hash, another key id', () => {
    for (const bad of [create({ scopes: ['root'] }), create({ expiresAt: T0 }), create({ keyHash: '' }), create({ name: '' })]) {
      expect(() => apiKey.given().when(bad).outcome()).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
    }
    expect(() => apiKey.given().when(create({ keyId: 'key_nope' })).outcome()).toThrow(DomainError);
  });

  it('revokes once; a second revoke does nothing; an unknown key is not found', () => {
    apiKey
      .given()
      .after(create())
      .when(revoke(T0 + 5))
      .thenEvents([{ type: 'ApiKeyRevoked', ...header(T0 + 5), data: { keyId: K1, revokedAt: new Date(T0 + 5).toISOString() } }])
      .thenStateMatches({ status: 'revoked', revokedAt: T0 + 5 });
    apiKey.given().after(create(), revoke(T0 + 5)).when(revoke(T0 + 6)).thenNothingHappened();
    expect(() => apiKey.given().when(revoke(T0)).outcome()).toThrow(expect.objectContaining({ code: 'api_key_not_found' }));
  });

  it('usable while active and before expiry only', () => {
    const active = apiKey.given().after(create({ expiresAt: T0 + 1000 })).state;
    expect(apiKeyIsUsable(active, T0 + 999)).toBe(true);
    expect(apiKeyIsUsable(active, T0 + 1000)).toBe(false);
    expect(apiKeyIsUsable(apiKey.given().after(create()).state, T0 + 10 ** 12)).toBe(true);
    expect(apiKeyIsUsable(apiKey.given().after(create(), revoke(T0 + 1)).state, T0 + 2)).toBe(false);
    expect(apiKeyIsUsable(initialApiKeyState(K1), T0)).toBe(false);
  });

  it('the public shape of ApiKeyCreated has no hash', () => {
    const [event] = apiKey.given().when(create()).outcome().events;
    expect(publicEventData(event.type, event.data)).not.toHaveProperty('keyHash');
    expect(publicEventData(event.type, event.data)).toMatchObject({ keyId: K1, scopes: ['revocations:read'] });
  });
});
