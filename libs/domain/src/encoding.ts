/**
 * Fixed-width text encodings used by identifiers and the refresh-token wire format. Fixed width
 * (left-padded) so every value has exactly one spelling, which keeps parsing strict and the
 * checksum meaningful.
 */
import baseX from 'base-x';

type BaseConverter = ReturnType<typeof baseX>;

/** 0-9, A-Z, a-z: ASCII order, so encoded values sort like the numbers they encode. */
export const BASE62_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Crockford base32 in lower case (no i, l, o, u), as used by ULIDs. */
export const CROCKFORD32_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

const base62 = baseX(BASE62_ALPHABET);
const crockford32 = baseX(CROCKFORD32_ALPHABET);

/**
 * base-x spells each leading zero byte as one zero digit and then the value; here every value has one
 * spelling, `width` digits left-padded with the zero digit.
 */
function encodeFixed(codec: BaseConverter, zero: string, bytes: Uint8Array, width: number): string {
  const text = codec.encode(bytes);
  let i = 0;
  while (i < text.length && text[i] === zero) i++;
  const digits = text.length - i;
  if (digits > width) throw new RangeError(`value does not fit in ${width} characters`);
  return zero.repeat(width - digits) + text.slice(i);
}

function encodeDigits(digits: number[], alphabet: string, width: number): string {
  if (digits.length > width) throw new RangeError(`value does not fit in ${width} characters`);
  return alphabet[0].repeat(width - digits.length) + digits.map((d) => alphabet[d]).join('');
}

/** Bytes -> fixed-width base62 (32 bytes -> 43 characters, since 62^43 > 2^256). */
export function encodeBase62(bytes: Uint8Array, width: number): string {
  return encodeFixed(base62, BASE62_ALPHABET[0], bytes, width);
}

/** Fixed-width base62 -> exactly `byteLength` bytes; null if invalid or the value does not fit. */
export function decodeBase62(s: string, byteLength: number): Buffer | null {
  const bytes = base62.decodeUnsafe(s); // undefined when a character is outside the alphabet
  if (bytes === undefined) return null;
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++; // one per leading zero digit, then the value
  const value = bytes.subarray(i);
  if (value.length > byteLength) return null;
  const out = Buffer.alloc(byteLength);
  out.set(value, byteLength - value.length);
  return out;
}

/** Unsigned integer -> fixed-width base62. */
export function encodeBase62Uint(n: number, width: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not an unsigned integer: ${n}`);
  const digits: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 62)) digits.unshift(v % 62);
  return encodeDigits(digits, BASE62_ALPHABET, width);
}

/** Bytes -> fixed-width lower-case Crockford base32 (16 bytes -> 26 characters). */
export function encodeCrockford32(bytes: Uint8Array, width: number): string {
  return encodeFixed(crockford32, CROCKFORD32_ALPHABET[0], bytes, width);
}
