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

/**
 * Big-endian digits in base `from` -> big-endian digits in base `to`, without leading zeros, by
 * schoolbook division on limbs of up to 24 bits (several digits each: every intermediate stays
 * below 2^48, exact in a double). Plain numbers rather than BigInt; limbs rather than digits, since
 * this runs twice on every refresh: about 10× fewer divisions than digit by digit.
 */
function convertBase(digits: ArrayLike<number>, from: number, to: number): number[] {
  const a = digitsPerLimb(from);
  const b = digitsPerLimb(to);
  const F = from ** a;
  const T = to ** b;
  let num: number[] = [];
  for (let i = 0, end = digits.length % a || a; i < digits.length; end += a) {
    let v = 0;
    for (; i < end; i++) v = v * from + digits[i];
    num.push(v);
  }
  const out: number[] = [];
  while (num.length > 0) {
    const quotient: number[] = [];
    let rem = 0;
    for (const d of num) {
      const acc = rem * F + d;
      const q = Math.floor(acc / T);
      rem = acc - q * T;
      if (quotient.length > 0 || q > 0) quotient.push(q);
    }
    for (let k = 0; k < b; k++) {
      const q = Math.floor(rem / to);
      out.push(rem - q * to);
      rem = q;
    }
    num = quotient;
  }
  while (out.length > 0 && out[out.length - 1] === 0) out.pop();
  return out.reverse();
}

function encodeDigits(digits: number[], alphabet: string, width: number): string {
  if (digits.length > width) throw new RangeError(`value does not fit in ${width} characters`);
  return alphabet[0].repeat(width - digits.length) + digits.map((d) => alphabet[d]).join('');
}

/** Returns null when a character is outside the alphabet. */
function decodeDigits(s: string, alphabet: string): number[] | null {
  const digits: number[] = new Array<number>(s.length);
  for (let i = 0; i < s.length; i++) {
    const d = alphabet.indexOf(s[i]);
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
  const digits = decodeDigits(s, BASE62_ALPHABET);
  if (digits === null) return null;
  const bytes = convertBase(digits, 62, 256);
  if (bytes.length > byteLength) return null;
  const out = Buffer.alloc(byteLength);
  out.set(bytes, byteLength - bytes.length);
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
  return encodeDigits(convertBase(bytes, 256, 32), CROCKFORD32_ALPHABET, width);
}
