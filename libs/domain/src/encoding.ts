/**
 * Fixed-width text encodings used by identifiers and the refresh-token wire format. Fixed width
 * (left-padded) so every value has exactly one spelling, which keeps parsing strict and the
 * checksum meaningful.
 */

/** 0-9, A-Z, a-z: ASCII order, so encoded values sort like the numbers they encode. */
export const BASE62_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Crockford base32 in lower case (no i, l, o, u), as used by ULIDs. */
export const CROCKFORD32_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** The most digits of `base` whose value fits in 24 bits (256 → 3, 62 → 4, 32 → 4). */
function digitsPerLimb(base: number): number {
  let k = 1;
  while (base ** (k + 1) <= 2 ** 24) k++;
  return k;
}

/** Each character's digit in `alphabet` (-1: not in it), indexed by char code below 128. */
function digitTable(alphabet: string): Int8Array {
  const table = new Int8Array(128).fill(-1);
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  return table;
}
const BASE62_DIGITS = digitTable(BASE62_ALPHABET);

/**
 * Big-endian digits in base `from` -> little-endian digits in base `to`, without high zeros, by
 * schoolbook division on limbs of up to 24 bits (several digits each: every intermediate stays
 * below 2^48, exact in a double). Plain numbers rather than BigInt; limbs rather than digits, since
 * this runs on every refresh: about 10× fewer divisions than digit by digit. The dividend is divided
 * in place, so a conversion allocates its limbs and its output only (it ran three times a rotation,
 * and its per-step quotient arrays were 8 % of the token endpoint's allocations).
 */
function convertBase(digits: ArrayLike<number>, from: number, to: number): number[] {
  const a = digitsPerLimb(from);
  const b = digitsPerLimb(to);
  const F = from ** a;
  const T = to ** b;
  const num = new Float64Array(Math.ceil(digits.length / a));
  for (let i = 0, l = 0, end = digits.length % a || a; i < digits.length; end += a, l++) {
    let v = 0;
    for (; i < end; i++) v = v * from + digits[i];
    num[l] = v;
  }
  const out: number[] = [];
  let first = 0;
  while (first < num.length && num[first] === 0) first++;
  while (first < num.length) {
    let rem = 0;
    for (let i = first; i < num.length; i++) {
      const acc = rem * F + num[i];
      const q = Math.floor(acc / T);
      rem = acc - q * T;
      num[i] = q;
    }
    while (first < num.length && num[first] === 0) first++;
    for (let k = 0; k < b; k++) {
      const q = Math.floor(rem / to);
      out.push(rem - q * to);
      rem = q;
    }
  }
  while (out.length > 0 && out[out.length - 1] === 0) out.pop();
  return out;
}

/** Little-endian digits -> `width` characters, left-padded with the alphabet's zero. */
function encodeDigits(digits: number[], alphabet: string, width: number): string {
  if (digits.length > width) throw new RangeError(`value does not fit in ${width} characters`);
  let out = alphabet[0].repeat(width - digits.length);
  for (let i = digits.length - 1; i >= 0; i--) out += alphabet[digits[i]];
  return out;
}

/** Returns null when a character is outside the alphabet. */
function decodeDigits(s: string, table: Int8Array): Uint8Array | null {
  const digits = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const d = c < 128 ? table[c] : -1;
    if (d < 0) return null;
    digits[i] = d;
  }
  return digits;
}

/** Bytes -> fixed-width base62 (32 bytes -> 43 characters, since 62^43 > 2^256). */
export function encodeBase62(bytes: Uint8Array, width: number): string {
  return encodeDigits(convertBase(bytes, 256, 62), BASE62_ALPHABET, width);
}

/** Fixed-width base62 -> exactly `byteLength` bytes; null if invalid or the value does not fit. */
export function decodeBase62(s: string, byteLength: number): Buffer | null {
  const digits = decodeDigits(s, BASE62_DIGITS);
  if (digits === null) return null;
  const bytes = convertBase(digits, 62, 256);
  if (bytes.length > byteLength) return null;
  const out = Buffer.alloc(byteLength);
  for (let i = 0; i < bytes.length; i++) out[byteLength - 1 - i] = bytes[i];
  return out;
}

/** Unsigned integer -> fixed-width base62. */
export function encodeBase62Uint(n: number, width: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not an unsigned integer: ${n}`);
  const digits: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 62)) digits.push(v % 62);
  return encodeDigits(digits, BASE62_ALPHABET, width);
}

/** Bytes -> fixed-width lower-case Crockford base32 (16 bytes -> 26 characters). */
export function encodeCrockford32(bytes: Uint8Array, width: number): string {
  return encodeDigits(convertBase(bytes, 256, 32), CROCKFORD32_ALPHABET, width);
}
