import { crc32 } from './crc32';
import { decodeBase62, encodeBase62, encodeBase62Uint, encodeCrockford32 } from './encoding';
import { DomainError } from './errors';

/**
 * Family ids: `fam_` + 26 lower-case Crockford base32 characters (128 random bits, ULID-style
 * alphabet without i, l, o, u). Only the string matters after creation, so any 26 characters of
 * the alphabet are accepted.
 */
export const FAMILY_ID_PREFIX = 'fam_';
export const FAMILY_ID_PATTERN = /^fam_[0-9a-hjkmnp-tv-z]{26}$/;
export const FAMILY_ID_RANDOM_BYTES = 16;

export function isFamilyId(s: unknown): s is string {
  return typeof s === 'string' && FAMILY_ID_PATTERN.test(s);
}

/** The caller supplies the 16 random bytes: the domain has no source of randomness. */
export function formatFamilyId(bytes16: Buffer): string {
  if (!Buffer.isBuffer(bytes16) || bytes16.length !== FAMILY_ID_RANDOM_BYTES) {
    throw new DomainError('invalid_argument', `a family id needs exactly ${FAMILY_ID_RANDOM_BYTES} random bytes`);
  }
  return FAMILY_ID_PREFIX + encodeCrockford32(bytes16, 26);
}

/*
 * Refresh-token wire format
 *
 *   tlr_<family>_<generation>_<secret>_<checksum>
 *
 *   tlr_        fixed prefix, so secret scanners (GitHub, gitleaks, …) can find leaked tokens
 *   family      the 26-character body of the family id (without `fam_`)
 *   generation  positive integer, lower-case base36, no leading zeros (1–11 characters)
 *   secret      exactly 32 bytes (256 bits), base62, fixed width 43 (62^43 > 2^256)
 *   checksum    CRC-32 of everything before the last `_` (prefix included), base62, fixed width 6
 *
 * Example (generation 100 = "2s"):
 *   tlr_01j3sw38nk9herx7x0p71d7s7n_2s_bpNQOHxKv2ryNnlsG67oZ0FLM9EnjX2thik59zrzhv6_3YhbVm
 *
 * Only [A-Za-z0-9_] appear, so the token needs no escaping in form bodies, headers or URLs, and
 * double-clicking it selects the whole token. No field contains `_`, so the split is unambiguous.
 * Every field has one canonical spelling, and CRC-32 catches every single-character change (any
 * burst of up to 32 bits), so garbage and typos are rejected with no I/O. The checksum is not
 * authentication: only the keyed hash in the event store decides whether a secret is genuine.
 * Length: 83–93 characters.
 */
export const REFRESH_TOKEN_PREFIX = 'tlr_';
export const REFRESH_TOKEN_SECRET_BYTES = 32;
export const REFRESH_TOKEN_MIN_LENGTH = 83;
export const REFRESH_TOKEN_MAX_LENGTH = 93;
/** Anything longer is rejected before any other work (cheap guard against oversized input). */
const HARD_MAX_INPUT = 200;
const SECRET_CHARS = 43;
const CHECKSUM_CHARS = 6;

/** Shape only (no checksum check): for secret scanners, log scrubbers and token_type_hint guessing. */
export const REFRESH_TOKEN_PATTERN = /\btlr_[0-9a-hjkmnp-tv-z]{26}_[1-9a-z][0-9a-z]{0,10}_[0-9A-Za-z]{43}_[0-9A-Za-z]{6}\b/;

const STRICT = /^tlr_([0-9a-hjkmnp-tv-z]{26})_([1-9a-z][0-9a-z]{0,10})_([0-9A-Za-z]{43})_([0-9A-Za-z]{6})$/;

export interface RefreshTokenParts {
  familyId: string;
  generation: number;
  secret: Buffer;
}

function checksum(body: string): string {
  return encodeBase62Uint(crc32(body), CHECKSUM_CHARS);
}

/** Throws DomainError('invalid_argument') on parts that cannot be encoded (a caller bug). */
export function formatRefreshToken(parts: RefreshTokenParts): string {
  const { familyId, generation, secret } = parts;
  if (!isFamilyId(familyId)) throw new DomainError('invalid_argument', 'not a family id');
  if (!Number.isSafeInteger(generation) || generation < 1) {
    throw new DomainError('invalid_argument', 'generation must be a positive safe integer');
  }
  if (!Buffer.isBuffer(secret) || secret.length !== REFRESH_TOKEN_SECRET_BYTES) {
    throw new DomainError('invalid_argument', `the secret must be exactly ${REFRESH_TOKEN_SECRET_BYTES} bytes`);
  }
  const body = `${REFRESH_TOKEN_PREFIX}${familyId.slice(FAMILY_ID_PREFIX.length)}_${generation.toString(36)}_${encodeBase62(secret, SECRET_CHARS)}`;
  return `${body}_${checksum(body)}`;
}

/** Null for anything that is not a well-formed token with a valid checksum. Never throws. */
export function parseRefreshToken(s: unknown): RefreshTokenParts | null {
  if (typeof s !== 'string' || s.length > HARD_MAX_INPUT) return null;
  if (s.length < REFRESH_TOKEN_MIN_LENGTH || s.length > REFRESH_TOKEN_MAX_LENGTH) return null;
  const m = STRICT.exec(s);
  if (!m) return null;
  const [, family, gen, secretText, sum] = m;
  const body = s.slice(0, s.length - CHECKSUM_CHARS - 1);
  // Fixed-width encoding gives each CRC value one spelling, so comparing the text is exact.
  if (checksum(body) !== sum) return null;
  const generation = parseInt(gen, 36);
  if (!Number.isSafeInteger(generation) || generation < 1) return null;
  const secret = decodeBase62(secretText, REFRESH_TOKEN_SECRET_BYTES);
  if (secret === null) return null; // 43 base62 digits can exceed 2^256
  return { familyId: FAMILY_ID_PREFIX + family, generation, secret };
}
