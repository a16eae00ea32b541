import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { BASE62_ALPHABET, decodeBase62, encodeBase62, encodeBase62Uint, encodeCrockford32, CROCKFORD32_ALPHABET } from './encoding';

/** The obvious BigInt implementation, as the reference the fast one must agree with. */
function reference(bytes: Uint8Array, alphabet: string, width: number): string {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  let out = '';
  for (let i = 0; i < width; i++) {
    out = alphabet[Number(n % BigInt(alphabet.length))] + out;
    n /= BigInt(alphabet.length);
  }
  return out;
}

describe('fixed-width encodings', () => {
  it('agree with a BigInt reference and round-trip, including leading zero bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat({ max: 31 }), (bytes, zeros) => {
        bytes.fill(0, 0, zeros);
        const encoded = encodeBase62(bytes, 43);
        expect(encoded).toBe(reference(bytes, BASE62_ALPHABET, 43));
        expect(decodeBase62(encoded, 32)).toEqual(Buffer.from(bytes));
        expect(encodeCrockford32(bytes.subarray(0, 16), 26)).toBe(reference(bytes.subarray(0, 16), CROCKFORD32_ALPHABET, 26));
      }),
    );
  });

  it('encodes edge values and rejects what does not fit', () => {
    expect(encodeBase62(new Uint8Array(32), 43)).toBe('0'.repeat(43));
    expect(encodeBase62(new Uint8Array(32).fill(255), 43)).toBe(reference(new Uint8Array(32).fill(255), BASE62_ALPHABET, 43));
    expect(encodeBase62Uint(0, 6)).toBe('000000');
    expect(encodeBase62Uint(61, 2)).toBe('0z');
    expect(() => encodeBase62Uint(62 ** 2, 2)).toThrow(RangeError);
    expect(decodeBase62('z'.repeat(43), 32)).toBeNull(); // 62^43 - 1 > 2^256 - 1
    expect(decodeBase62('!'.repeat(43), 32)).toBeNull();
  });
});

describe('base conversion against BigInt', () => {
  it('encodes and decodes random and edge values exactly as arbitrary-precision arithmetic does', () => {
    const reference = (bytes: Uint8Array, alphabet: string, width: number) => {
      let n = BigInt(`0x${Buffer.from(bytes).toString('hex') || '0'}`);
      let s = '';
      for (let i = 0; i < width; i++) {
        s = alphabet[Number(n % BigInt(alphabet.length))] + s;
        n /= BigInt(alphabet.length);
      }
      return s;
    };
    const samples = [Buffer.alloc(32), Buffer.alloc(32, 0xff), Buffer.from([1, ...Buffer.alloc(31)]), ...Array.from({ length: 300 }, () => randomBytes(32))];
    for (const bytes of samples) {
      const text = encodeBase62(bytes, 43);
      expect(text).toBe(reference(bytes, BASE62_ALPHABET, 43));
      expect(decodeBase62(text, 32)).toEqual(Buffer.from(bytes));
    }
    for (const bytes of [Buffer.alloc(16), Buffer.alloc(16, 0xff), ...Array.from({ length: 100 }, () => randomBytes(16))]) {
      expect(encodeCrockford32(bytes, 26)).toBe(reference(bytes, CROCKFORD32_ALPHABET, 26));
    }
  });
});
