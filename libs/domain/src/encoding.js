"use strict";
/**
 * Fixed-width text encodings used by identifiers and the refresh-token wire format. Fixed width
 * (left-padded) so every value has exactly one spelling, which keeps parsing strict and the
 * checksum meaningful.
 */
Object.defineProperty(exports, "__esModule", { value: true });
exports.CROCKFORD32_ALPHABET = exports.BASE62_ALPHABET = void 0;
exports.encodeBase62 = encodeBase62;
exports.decodeBase62 = decodeBase62;
exports.encodeBase62Uint = encodeBase62Uint;
exports.encodeCrockford32 = encodeCrockford32;
/** 0-9, A-Z, a-z: ASCII order, so encoded values sort like the numbers they encode. */
exports.BASE62_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** Crockford base32 in lower case (no i, l, o, u), as used by ULIDs. */
exports.CROCKFORD32_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
function bytesToBigInt(bytes) {
    let n = 0n;
    for (const b of bytes)
        n = (n << 8n) | BigInt(b);
    return n;
}
function bigIntToBytes(n, length) {
    const out = Buffer.alloc(length);
    for (let i = length - 1; i >= 0; i--) {
        out[i] = Number(n & 0xffn);
        n >>= 8n;
    }
    return out;
}
function encodeBigInt(n, alphabet, width) {
    const base = BigInt(alphabet.length);
    const chars = new Array(width);
    for (let i = width - 1; i >= 0; i--) {
        chars[i] = alphabet[Number(n % base)];
        n /= base;
    }
    if (n !== 0n)
        throw new RangeError(`value does not fit in ${width} characters`);
    return chars.join('');
}
/** Returns null when a character is outside the alphabet. */
function decodeBigInt(s, alphabet) {
    const base = BigInt(alphabet.length);
    let n = 0n;
    for (const ch of s) {
        const d = alphabet.indexOf(ch);
        if (d < 0)
            return null;
        n = n * base + BigInt(d);
    }
    return n;
}
/** Bytes -> fixed-width base62 (32 bytes -> 43 characters, since 62^43 > 2^256). */
function encodeBase62(bytes, width) {
    return encodeBigInt(bytesToBigInt(bytes), exports.BASE62_ALPHABET, width);
}
/** Fixed-width base62 -> exactly `byteLength` bytes; null if invalid or the value does not fit. */
function decodeBase62(s, byteLength) {
    const n = decodeBigInt(s, exports.BASE62_ALPHABET);
    if (n === null || n >> BigInt(byteLength * 8) !== 0n)
        return null;
    return bigIntToBytes(n, byteLength);
}
/** Unsigned integer -> fixed-width base62. */
function encodeBase62Uint(n, width) {
    return encodeBigInt(BigInt(n), exports.BASE62_ALPHABET, width);
}
/** Bytes -> fixed-width lower-case Crockford base32 (16 bytes -> 26 characters). */
function encodeCrockford32(bytes, width) {
    return encodeBigInt(bytesToBigInt(bytes), exports.CROCKFORD32_ALPHABET, width);
}
