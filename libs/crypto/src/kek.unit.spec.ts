import { randomBytes } from 'node:crypto';
import { isSealed, openJson, parseKek, sealJson } from './kek';

describe('parseKek', () => {
  const key = randomBytes(32);

  it.each([
    ['hex', key.toString('hex')],
    ['upper-case hex', key.toString('hex').toUpperCase()],
    ['base64', key.toString('base64')],
    ['base64 without padding', key.toString('base64').replace(/=+$/, '')],
    ['base64url', key.toString('base64url')],
    ['value with surrounding whitespace', `  ${key.toString('base64')}\n`],
  ])('accepts %s', (_name, value) => {
    expect(parseKek(value).equals(key)).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['blank', '   '],
    ['31 bytes', randomBytes(31).toString('base64')],
    ['33 bytes', randomBytes(33).toString('base64')],
    ['63 hex digits', key.toString('hex').slice(1)],
    ['16 bytes hex', randomBytes(16).toString('hex')],
    ['non-encoding characters', '!'.repeat(44)],
    ['mixed base64 and base64url alphabets', `${'+'.repeat(21)}${'_'.repeat(22)}`],
    ['inner whitespace', `${key.toString('base64').slice(0, 20)} ${key.toString('base64').slice(20)}`],
  ])('rejects %s with a clear message that does not echo the value', (_name, value) => {
    let message = '';
    try {
      parseKek(value);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/LEDGER_KEK/);
    expect(message).toMatch(/32 bytes/);
    if (value.trim().length > 4) expect(message).not.toContain(value.trim());
  });
});

describe('sealJson / openJson', () => {
  const kek = randomBytes(32);
  const ctx = { purpose: 'signing keys', binding: 'kid-1' };
  const value = { d: 'very-secret', n: 42, nested: [1, 'two'] };

  it('stores plain when no KEK is configured', () => {
    const stored = sealJson(value, undefined, ctx);
    expect(stored).toEqual({ plain: value });
    expect(isSealed(stored)).toBe(false);
    expect(openJson(stored, undefined, ctx)).toEqual(value);
  });

  it('seals with AES-256-GCM and a fresh IV each time', () => {
    const a = sealJson(value, kek, ctx);
    const b = sealJson(value, kek, ctx);
    expect(isSealed(a)).toBe(true);
    expect(JSON.stringify(a)).not.toContain('very-secret');
    expect(a).toMatchObject({ sealed: 'A256GCM' });
    expect(a).not.toEqual(b);
    if (!isSealed(a)) throw new Error('unreachable');
    expect(Buffer.from(a.iv, 'base64url')).toHaveLength(12);
    expect(openJson(a, kek, ctx)).toEqual(value);
    expect(openJson(b, kek, ctx)).toEqual(value);
  });

  it('opens a plain value when a KEK is configured (migration)', () => {
    expect(openJson({ plain: value }, kek, ctx)).toEqual(value);
  });

  it('refuses to open a sealed value without the KEK, naming the variable', () => {
    const sealed = sealJson(value, kek, ctx);
    expect(() => openJson(sealed, undefined, ctx)).toThrow('LEDGER_KEK is required to open the signing keys');
  });

  it('fails clearly with a wrong KEK', () => {
    const sealed = sealJson(value, kek, ctx);
    expect(() => openJson(sealed, randomBytes(32), ctx)).toThrow(/cannot open the signing keys: LEDGER_KEK is not the key/);
  });

  it('binds the purpose and entry (AAD): a ciphertext cannot be moved', () => {
    const sealed = sealJson(value, kek, ctx);
    expect(() => openJson(sealed, kek, { purpose: 'signing keys', binding: 'kid-2' })).toThrow(/cannot open/);
    expect(() => openJson(sealed, kek, { purpose: 'master secret', binding: 'kid-1' })).toThrow(/cannot open/);
  });

  it('detects tampering with the ciphertext', () => {
    const sealed = sealJson(value, kek, ctx);
    if (!isSealed(sealed)) throw new Error('unreachable');
    const ct = Buffer.from(sealed.ct, 'base64url');
    ct[0] ^= 1;
    expect(() => openJson({ ...sealed, ct: ct.toString('base64url') }, kek, ctx)).toThrow(/cannot open/);
  });

  it('rejects a KEK of the wrong size', () => {
    expect(() => sealJson(value, randomBytes(16), ctx)).toThrow(/32 bytes/);
  });
});
