"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.REFRESH_TOKEN_PATTERN = exports.REFRESH_TOKEN_MAX_LENGTH = exports.REFRESH_TOKEN_MIN_LENGTH = exports.REFRESH_TOKEN_SECRET_BYTES = exports.REFRESH_TOKEN_PREFIX = exports.FAMILY_ID_RANDOM_BYTES = exports.FAMILY_ID_PATTERN = exports.FAMILY_ID_PREFIX = void 0;
exports.isFamilyId = isFamilyId;
exports.formatFamilyId = formatFamilyId;
exports.formatRefreshToken = formatRefreshToken;
exports.parseRefreshToken = parseRefreshToken;
const crc32_1 = require("./crc32");
const encoding_1 = require("./encoding");
const errors_1 = require("./errors");
/**
 * Family ids: `fam_` + 26 lower-case Crockford base32 characters (128 random bits, ULID-style
 * alphabet without i, l, o, u). Only the string matters after creation, so any 26 characters of
 * the alphabet are accepted.
 */
exports.FAMILY_ID_PREFIX = 'fam_';
exports.FAMILY_ID_PATTERN = /^fam_[0-9a-hjkmnp-tv-z]{26}$/;
exports.FAMILY_ID_RANDOM_BYTES = 16;
function isFamilyId(s) {
    return typeof s === 'string' && exports.FAMILY_ID_PATTERN.test(s);
}
/** The caller supplies the 16 random bytes: the domain has no source of randomness. */
function formatFamilyId(bytes16) {
    if (!Buffer.isBuffer(bytes16) || bytes16.length !== exports.FAMILY_ID_RANDOM_BYTES) {
        throw new errors_1.DomainError('invalid_argument', `a family id needs exactly ${exports.FAMILY_ID_RANDOM_BYTES} random bytes`);
    }
    return exports.FAMILY_ID_PREFIX + (0, encoding_1.encodeCrockford32)(bytes16, 26);
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
 * Example: tlr_01hzy3k9x8w7v6t5s4r3q2p1n0_2s_0Yb6…(43)…_3fG7aQ
 *
 * Only [A-Za-z0-9_] appear, so the token needs no escaping in form bodies, headers or URLs, and
 * double-clicking it selects the whole token. No field contains `_`, so the split is unambiguous.
 * Every field has one canonical spelling, and CRC-32 catches every single-character change (any
 * burst of up to 32 bits), so garbage and typos are rejected with no I/O. The checksum is not
 * authentication: only the keyed hash in the event store decides whether a secret is genuine.
 * Length: 83–93 characters.
 */
exports.REFRESH_TOKEN_PREFIX = 'tlr_';
exports.REFRESH_TOKEN_SECRET_BYTES = 32;
exports.REFRESH_TOKEN_MIN_LENGTH = 83;
exports.REFRESH_TOKEN_MAX_LENGTH = 93;
/** Anything longer is rejected before any other work (cheap guard against oversized input). */
const HARD_MAX_INPUT = 200;
const SECRET_CHARS = 43;
const CHECKSUM_CHARS = 6;
const MAX_GENERATION_CHARS = 11; // Number.MAX_SAFE_INTEGER in base36
/** Shape only (no checksum check): for secret scanners, log scrubbers and token_type_hint guessing. */
exports.REFRESH_TOKEN_PATTERN = /\btlr_[0-9a-hjkmnp-tv-z]{26}_[1-9a-z][0-9a-z]{0,10}_[0-9A-Za-z]{43}_[0-9A-Za-z]{6}\b/;
const STRICT = /^tlr_([0-9a-hjkmnp-tv-z]{26})_([1-9a-z][0-9a-z]{0,10})_([0-9A-Za-z]{43})_([0-9A-Za-z]{6})$/;
function checksum(body) {
    return (0, encoding_1.encodeBase62Uint)((0, crc32_1.crc32)(body), CHECKSUM_CHARS);
}
/** Throws DomainError('invalid_argument') on parts that cannot be encoded (a caller bug). */
function formatRefreshToken(parts) {
    const { familyId, generation, secret } = parts;
    if (!isFamilyId(familyId))
        throw new errors_1.DomainError('invalid_argument', 'not a family id');
    if (!Number.isSafeInteger(generation) || generation < 1) {
        throw new errors_1.DomainError('invalid_argument', 'generation must be a positive safe integer');
    }
    if (!Buffer.isBuffer(secret) || secret.length !== exports.REFRESH_TOKEN_SECRET_BYTES) {
        throw new errors_1.DomainError('invalid_argument', `the secret must be exactly ${exports.REFRESH_TOKEN_SECRET_BYTES} bytes`);
    }
    const body = `${exports.REFRESH_TOKEN_PREFIX}${familyId.slice(exports.FAMILY_ID_PREFIX.length)}_${generation.toString(36)}_${(0, encoding_1.encodeBase62)(secret, SECRET_CHARS)}`;
    return `${body}_${checksum(body)}`;
}
/** Null for anything that is not a well-formed token with a valid checksum. Never throws. */
function parseRefreshToken(s) {
    if (typeof s !== 'string' || s.length > HARD_MAX_INPUT)
        return null;
    if (s.length < exports.REFRESH_TOKEN_MIN_LENGTH || s.length > exports.REFRESH_TOKEN_MAX_LENGTH)
        return null;
    const m = STRICT.exec(s);
    if (!m)
        return null;
    const [, family, gen, secretText, sum] = m;
    const body = s.slice(0, s.length - CHECKSUM_CHARS - 1);
    // A different value in the checksum field always differs from the computed CRC, so comparing
    // the decoded number is equivalent to comparing canonical text; compare text (no overflow cases).
    if (checksum(body) !== sum)
        return null;
    if (gen.length > MAX_GENERATION_CHARS)
        return null;
    const generation = parseInt(gen, 36);
    if (!Number.isSafeInteger(generation) || generation < 1)
        return null;
    const secret = (0, encoding_1.decodeBase62)(secretText, exports.REFRESH_TOKEN_SECRET_BYTES);
    if (secret === null)
        return null; // 43 base62 digits can exceed 2^256
    return { familyId: exports.FAMILY_ID_PREFIX + family, generation, secret };
}
