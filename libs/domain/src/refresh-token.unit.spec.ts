import fc from 'fast-check';
import { crc32 } from './crc32';
import { BASE62_ALPHABET, CROCKFORD32_ALPHABET, encodeBase62Uint } from './encoding';
import { DomainError } from './errors';
import {
  FAMILY_ID_PATTERN,
  formatFamilyId,
  formatRefreshToken,
  isFamilyId,
  parseRefreshToken,
  REFRESH_TOKEN_MAX_LENGTH,
  REFRESH_TOKEN_MIN_LENGTH,
  REFRESH_TOKEN_PATTERN,
} from './refresh-token';

const FAMILY = formatFamilyId(Buffer.from('00112233445566778899aabbccddeeff', 'hex'));
const SECRET = Buffer.from('f'.repeat(16) + '0123456789abcdef'.repeat(3), 'hex');

/** Re-computes the checksum so structural checks can be tested on their own. */
function withChecksum(body: string): string {
  return `${body}_${encodeBase62Uint(crc32(body), 6)}`;
}

describe('crc32', () => {
  it('matches the standard check value', () => {
    expect(crc32('123456789')).toBe(0xcbf43926);
    expect(crc32('')).toBe(0);
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });
});

describe('family ids', () => {
  it('formats 16 bytes as fam_ + 26 Crockford base32 characters, deterministically', () => {
    expect(FAMILY).toMatch(FAMILY_ID_PATTERN);
    expect(FAMILY).toHaveLength(30);
    expect(formatFamilyId(Buffer.from('00112233445566778899aabbccddeeff', 'hex'))).toBe(FAMILY);
    expect(formatFamilyId(Buffer.alloc(16))).toBe('fam_' + '0'.repeat(26));
    expect(formatFamilyId(Buffer.alloc(16, 0xff))).toBe('fam_7' + 'z'.repeat(25));
  });

  it('rejects other byte lengths', () => {
    expect(() => formatFamilyId(Buffer.alloc(15))).toThrow(DomainError);
    expect(() => formatFamilyId(Buffer.alloc(17))).toThrow(DomainError);
  });

  it('isFamilyId accepts only the canonical shape', () => {
    expect(isFamilyId(FAMILY)).toBe(true);
    expect(isFamilyId('fam_' + 'z'.repeat(26))).toBe(true);
    for (const bad of ['i', 'l', 'o', 'u', 'A', '_', '-']) expect(isFamilyId('fam_' + bad + '0'.repeat(25))).toBe(false);
    expect(isFamilyId('fam_' + '0'.repeat(25))).toBe(false);
    expect(isFamilyId('fam_' + '0'.repeat(27))).toBe(false);
    expect(isFamilyId('FAM_' + '0'.repeat(26))).toBe(false);
    expect(isFamilyId(42)).toBe(false);
    expect(isFamilyId(undefined)).toBe(false);
  });

  it('the pattern spells out exactly the encoder alphabet', () => {
    for (const ch of 'abcdefghijklmnopqrstuvwxyz0123456789') {
      expect(isFamilyId('fam_' + ch.repeat(26))).toBe(CROCKFORD32_ALPHABET.includes(ch));
    }
  });
});

describe('refresh token wire format', () => {
  const token = formatRefreshToken({ familyId: FAMILY, generation: 42, secret: SECRET });

  it('has the documented layout', () => {
    expect(token.startsWith('tlr_')).toBe(true);
    expect(token).toMatch(/^[A-Za-z0-9_]+$/);
    const parts = token.split('_');
    expect(parts).toHaveLength(5);
    expect(parts[0]).toBe('tlr');
    expect(parts[1]).toBe(FAMILY.slice(4));
    expect(parts[2]).toBe((42).toString(36));
    expect(parts[3]).toHaveLength(43);
    expect(parts[4]).toHaveLength(6);
    expect(REFRESH_TOKEN_PATTERN.test(`leaked: ${token} oops`)).toBe(true);
  });

  it('round-trips', () => {
    expect(parseRefreshToken(token)).toEqual({ familyId: FAMILY, generation: 42, secret: SECRET });
  });

  it('round-trips extreme values within the length bounds', () => {
    for (const generation of [1, 35, 36, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
      for (const secret of [Buffer.alloc(32), Buffer.alloc(32, 0xff), SECRET]) {
        const t = formatRefreshToken({ familyId: FAMILY, generation, secret });
        expect(t.length).toBeGreaterThanOrEqual(REFRESH_TOKEN_MIN_LENGTH);
        expect(t.length).toBeLessThanOrEqual(REFRESH_TOKEN_MAX_LENGTH);
        const parsed = parseRefreshToken(t);
        expect(parsed).not.toBeNull();
        expect(parsed!.generation).toBe(generation);
        expect(parsed!.secret.equals(secret)).toBe(true);
      }
    }
    expect(formatRefreshToken({ familyId: FAMILY, generation: 1, secret: SECRET })).toHaveLength(REFRESH_TOKEN_MIN_LENGTH);
    expect(formatRefreshToken({ familyId: FAMILY, generation: Number.MAX_SAFE_INTEGER, secret: SECRET })).toHaveLength(
      REFRESH_TOKEN_MAX_LENGTH,
    );
  });

  it('round-trips arbitrary parts (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (fam, generation, sec) => {
          const familyId = formatFamilyId(Buffer.from(fam));
          const secret = Buffer.from(sec);
          expect(parseRefreshToken(formatRefreshToken({ familyId, generation, secret }))).toEqual({ familyId, generation, secret });
        },
      ),
    );
  });

  it('rejects every single-character substitution', () => {
    const alphabet = BASE62_ALPHABET + '_-.~+/= ';
    let tried = 0;
    for (let i = 0; i < token.length; i++) {
      for (const ch of alphabet) {
        if (ch === token[i]) continue;
        const mutated = token.slice(0, i) + ch + token.slice(i + 1);
        expect(parseRefreshToken(mutated)).toBeNull();
        tried++;
      }
    }
    expect(tried).toBeGreaterThan(5000);
  });

  it('rejects any single deleted or inserted character', () => {
    for (let i = 0; i < token.length; i++) {
      expect(parseRefreshToken(token.slice(0, i) + token.slice(i + 1))).toBeNull();
      expect(parseRefreshToken(token.slice(0, i) + 'a' + token.slice(i))).toBeNull();
    }
  });

  it('rejects a wrong prefix even with a valid checksum', () => {
    const body = token.slice(0, token.lastIndexOf('_'));
    for (const prefix of ['TLR_', 'tlx_', 'tl_', 'xtlr_', '']) {
      expect(parseRefreshToken(withChecksum(prefix + body.slice(4)))).toBeNull();
    }
    expect(parseRefreshToken(withChecksum(body))).not.toBeNull(); // the helper itself is right
  });

  it('rejects non-canonical or out-of-range fields even with a valid checksum', () => {
    const fam = FAMILY.slice(4);
    const sec = token.split('_')[3];
    const cases = [
      `tlr_${fam}_0_${sec}`, // generation 0
      `tlr_${fam}_01_${sec}`, // leading zero
      `tlr_${fam}_A_${sec}`, // upper-case base36
      `tlr_${fam}_zzzzzzzzzzz_${sec}`, // > MAX_SAFE_INTEGER
      `tlr_${fam}_zzzzzzzzzzzz_${sec}`, // too many digits
      `tlr_${fam}_1_${'z'.repeat(43)}`, // secret >= 2^256
      `tlr_${fam}_1_${sec.slice(1)}`, // 42-char secret
      `tlr_${fam.toUpperCase()}_1_${sec}`,
      `tlr_${fam.slice(1)}_1_${sec}`,
      `tlr_${'i'.repeat(26)}_1_${sec}`,
    ];
    for (const body of cases) expect(parseRefreshToken(withChecksum(body))).toBeNull();
  });

  it('rejects garbage, wrong types and oversized input without throwing', () => {
    for (const bad of [
      '',
      'tlr_',
      'Bearer ' + token,
      token + ' ',
      ' ' + token,
      token + '\n',
      token.toUpperCase(),
      token.repeat(2),
      'x'.repeat(201),
      'x'.repeat(10_000_000),
      null,
      undefined,
      42,
      {},
      Buffer.from(token),
    ]) {
      expect(parseRefreshToken(bad as string)).toBeNull();
    }
  });

  it('never throws on arbitrary strings (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 250 }), (s) => {
        expect(() => parseRefreshToken(s)).not.toThrow();
      }),
    );
    fc.assert(
      fc.property(fc.stringMatching(/^tlr_[0-9a-z]{26}_[0-9a-z]{1,3}_[0-9A-Za-z]{43}_[0-9A-Za-z]{6}$/), (s) => {
        expect(() => parseRefreshToken(s)).not.toThrow();
      }),
    );
  });

  it('refuses to format parts that could not be parsed back', () => {
    expect(() => formatRefreshToken({ familyId: FAMILY, generation: 1, secret: Buffer.alloc(31) })).toThrow(DomainError);
    expect(() => formatRefreshToken({ familyId: FAMILY, generation: 1, secret: Buffer.alloc(33) })).toThrow(DomainError);
    expect(() => formatRefreshToken({ familyId: FAMILY, generation: 0, secret: SECRET })).toThrow(DomainError);
    expect(() => formatRefreshToken({ familyId: FAMILY, generation: 1.5, secret: SECRET })).toThrow(DomainError);
    expect(() => formatRefreshToken({ familyId: 'fam_x', generation: 1, secret: SECRET })).toThrow(DomainError);
  });
});

describe('documented example', () => {
  it('parses the example in the format comment', () => {
    const parsed = parseRefreshToken('tlr_01j3sw38nk9herx7x0p71d7s7n_2s_bpNQOHxKv2ryNnlsG67oZ0FLM9EnjX2thik59zrzhv6_3YhbVm');
    expect(parsed).toEqual({
      familyId: 'fam_01j3sw38nk9herx7x0p71d7s7n',
      generation: 100,
      secret: Buffer.from('9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', 'hex'),
    });
  });
});
