/**
 * Fixed-width text encodings used by identifiers and the refresh-token wire format. Fixed width
 * (left-padded) so every value has exactly one spelling, which keeps parsing strict and the
 * checksum meaningful.
 */

/** 0-9, A-Z, a-z: ASCII order, so encoded values sort like the numbers they encode. */
export const BASE62_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Crockford base32 in lower case (no i, l, o, u), as used by ULIDs. */
export const CROCKFORD32_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

function bytesToBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function bigIntToBytes(n: bigint, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

function encodeBigInt(n: bigint, alphabet: string, width: number): string {
  const base = BigInt(alphabet.length);
  const chars: string[] = new Array<string>(width);
  for (let i = width - 1; i >= 0; i--) {
    chars[i] = alphabet[Number(n % base)];
    n /= base;
  }
  if (n !== 0n) throw new RangeError(`value does not fit in ${width} characters`);
  return chars.join('');
}

/** Returns null when a character is outside the alphabet. */
function decodeBigInt(s: string, alphabet: string): bigint | null {
  const base = BigInt(alphabet.length);
  let n = 0n;
  for (const ch of s) {
    const d = alphabet.indexOf(ch);
    if (d < 0) return null;
    n = n * base + BigInt(d);
  }
  return n;
}

/** Bytes -> fixed-width base62 (32 bytes -> 43 characters, since 62^43 > 2^256). */
export function encodeBase62(bytes: Uint8Array, width: number): string {
  return encodeBigInt(bytesToBigInt(bytes), BASE62_ALPHABET, width);
}

/** Fixed-width base62 -> exactly `byteLength` bytes; null if invalid or the value does not fit. */
export function decodeBase62(s: string, byteLength: number): Buffer | null {
  const n = decodeBigInt(s, BASE62_ALPHABET);
  if (n === null || n >> BigInt(byteLength * 8) !== 0n) return null;
  return bigIntToBytes(n, byteLength);
}

/** Unsigned integer -> fixed-width base62. */
export function encodeBase62Uint(n: number, width: number): string {
  return encodeBigInt(BigInt(n), BASE62_ALPHABET, width);
}

/** Bytes -> fixed-width lower-case Crockford base32 (16 bytes -> 26 characters). */
export function encodeCrockford32(bytes: Uint8Array, width: number): string {
  return encodeBigInt(bytesToBigInt(bytes), CROCKFORD32_ALPHABET, width);
}
