import { randomBytes } from 'node:crypto';
import { LedgerSecrets, MASTER_SECRET_KEY } from './ledger-secrets';
import { MemoryKeyValueStore } from '@token-ledger/event-store';

describe('LedgerSecrets', () => {
  const secret = randomBytes(32);

  it('gives the same subkeys on every open of one store (deterministic successors)', async () => {
    const kv = new MemoryKeyValueStore();
    const a = await LedgerSecrets.open(kv, {});
    const b = await LedgerSecrets.open(kv, {});
    expect(b.tokenSecrets.hash(secret)).toBe(a.tokenSecrets.hash(secret));
    expect(b.tokenSecrets.successor(secret, 'fam_1', 2).equals(a.tokenSecrets.successor(secret, 'fam_1', 2))).toBe(true);
    expect(b.verifyClientSecret('s3cret', a.hashClientSecret('s3cret'))).toBe(true);
  });

  it('agrees on one master secret when nodes start at once', async () => {
    const kv = new MemoryKeyValueStore(5);
    const opened = await Promise.all(Array.from({ length: 8 }, () => LedgerSecrets.open(kv, {})));
    const hashes = new Set(opened.map((s) => s.tokenSecrets.hash(secret)));
    expect(hashes.size).toBe(1);
  });

  it('gives different keys for a different store', async () => {
    const a = await LedgerSecrets.open(new MemoryKeyValueStore(), {});
    const b = await LedgerSecrets.open(new MemoryKeyValueStore(), {});
    expect(a.tokenSecrets.hash(secret)).not.toBe(b.tokenSecrets.hash(secret));
  });

  it('hash: keyed, base64url of 32 bytes, different per secret', async () => {
    const s = await LedgerSecrets.open(new MemoryKeyValueStore(), {});
    const h = s.tokenSecrets.hash(secret);
    expect(h).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s.tokenSecrets.hash(randomBytes(32))).not.toBe(h);
    expect(s.tokenSecrets.hash(secret)).toBe(h);
  });

  it('successor: 32 bytes, depends on previous, family and generation; uses a key separate from hash', async () => {
    const s = await LedgerSecrets.open(new MemoryKeyValueStore(), {});
    const next = s.tokenSecrets.successor(secret, 'fam_1', 2);
    expect(next).toHaveLength(32);
    const others = [
      s.tokenSecrets.successor(randomBytes(32), 'fam_1', 2),
      s.tokenSecrets.successor(secret, 'fam_2', 2),
      s.tokenSecrets.successor(secret, 'fam_1', 3),
      // length-prefixed family id: moving bytes between fields must not collide
      s.tokenSecrets.successor(Buffer.concat([Buffer.from('1'), secret]), 'fam_', 2),
    ];
    for (const other of others) expect(other.equals(next)).toBe(false);
    expect(next.toString('base64url')).not.toBe(s.tokenSecrets.hash(secret));
    expect(() => s.tokenSecrets.successor(secret, 'fam_1', -1)).toThrow(RangeError);
  });

  it('client secrets: peppered hash verifies, wrong ones do not', async () => {
    const s = await LedgerSecrets.open(new MemoryKeyValueStore(), {});
    const stored = s.hashClientSecret('correct horse');
    expect(stored).not.toContain('correct');
    expect(s.verifyClientSecret('correct horse', stored)).toBe(true);
    expect(s.verifyClientSecret('correct horse!', stored)).toBe(false);
    expect(s.verifyClientSecret('', stored)).toBe(false);
    expect(s.verifyClientSecret('correct horse', stored.slice(1))).toBe(false); // length mismatch
    expect(s.verifyClientSecret('correct horse', '')).toBe(false);
    const other = await LedgerSecrets.open(new MemoryKeyValueStore(), {});
    expect(other.verifyClientSecret('correct horse', stored)).toBe(false); // pepper differs per deployment
  });

  it('randomSecret returns fresh random bytes of the asked length', async () => {
    const s = await LedgerSecrets.open(new MemoryKeyValueStore(), {});
    expect(s.randomSecret()).toHaveLength(32);
    expect(s.randomSecret(48)).toHaveLength(48);
    expect(s.randomSecret().equals(s.randomSecret())).toBe(false);
  });

  describe('with a KEK', () => {
    const kek = randomBytes(32);

    it('stores the master secret sealed and reopens it', async () => {
      const kv = new MemoryKeyValueStore();
      const a = await LedgerSecrets.open(kv, { kek });
      const stored = await kv.get<{ secret: Record<string, unknown> }>(MASTER_SECRET_KEY);
      expect(stored?.secret).toMatchObject({ sealed: 'A256GCM' });
      expect(stored?.secret).not.toHaveProperty('plain');
      const b = await LedgerSecrets.open(kv, { kek });
      expect(b.tokenSecrets.hash(secret)).toBe(a.tokenSecrets.hash(secret));
    });

    it('fails clearly without the KEK or with a wrong one', async () => {
      const kv = new MemoryKeyValueStore();
      await LedgerSecrets.open(kv, { kek });
      await expect(LedgerSecrets.open(kv, {})).rejects.toThrow('LEDGER_KEK is required to open the master secret');
      await expect(LedgerSecrets.open(kv, { kek: randomBytes(32) })).rejects.toThrow(/cannot open the master secret/);
    });

    it('migrates a plain master secret: same keys, sealed afterwards', async () => {
      const kv = new MemoryKeyValueStore();
      const plain = await LedgerSecrets.open(kv, {});
      const { secret: before } = (await kv.get<{ secret: { plain: string } }>(MASTER_SECRET_KEY))!;
      const sealed = await LedgerSecrets.open(kv, { kek });
      expect(sealed.tokenSecrets.hash(secret)).toBe(plain.tokenSecrets.hash(secret));
      expect(kv.dump()).not.toContain(before.plain);
      expect((await LedgerSecrets.open(kv, { kek })).tokenSecrets.hash(secret)).toBe(plain.tokenSecrets.hash(secret));
    });
  });

  it('API-key hashes: keyed with their own subkey, bound to the key id, verified in constant time', async () => {
    const a = await LedgerSecrets.open(new MemoryKeyValueStore(), {});
    const b = await LedgerSecrets.open(new MemoryKeyValueStore(), {});
    const h = a.hashApiKeySecret('key_1', secret);
    expect(h).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(h).not.toBe(a.tokenSecrets.hash(secret)); // not the refresh-token hash key
    expect(h).not.toBe(a.hashApiKeySecret('key_2', secret)); // a hash copied to another key does not match
    expect(h).not.toBe(b.hashApiKeySecret('key_1', secret)); // another store, another key
    expect(a.verifyApiKeySecret('key_1', secret, h)).toBe(true);
    expect(a.verifyApiKeySecret('key_2', secret, h)).toBe(false);
    expect(a.verifyApiKeySecret('key_1', randomBytes(32), h)).toBe(false);
    expect(a.verifyApiKeySecret('key_1', secret, h.slice(1))).toBe(false);
    expect(a.verifyApiKeySecret('key_1', secret, undefined as unknown as string)).toBe(false);
  });
});

describe('LedgerSecrets.subjectHash', () => {
  it('is keyed (per store), stable across opens, distinct per subject, and not the token hash', async () => {
    const kv = new MemoryKeyValueStore();
    const a = await LedgerSecrets.open(kv, {});
    const b = await LedgerSecrets.open(kv, {});
    const other = await LedgerSecrets.open(new MemoryKeyValueStore(), {});
    expect(a.subjectHash('alice')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(b.subjectHash('alice')).toBe(a.subjectHash('alice'));
    expect(a.subjectHash('bob')).not.toBe(a.subjectHash('alice'));
    expect(other.subjectHash('alice')).not.toBe(a.subjectHash('alice'));
    expect(a.subjectHash('alice')).not.toBe(a.tokenSecrets.hash(Buffer.from('alice')));
  });

  it('seals a field so that only the same purpose on the same master secret opens it', async () => {
    const kv = new MemoryKeyValueStore();
    const secrets = await LedgerSecrets.open(kv, {});
    const sealed = secrets.sealField('Bearer rp-secret', 'ssf:push-authorization');
    expect(sealed).not.toContain('rp-secret');
    expect(secrets.sealField('Bearer rp-secret', 'ssf:push-authorization')).not.toBe(sealed); // fresh IV
    expect(secrets.openField(sealed, 'ssf:push-authorization')).toBe('Bearer rp-secret');
    expect((await LedgerSecrets.open(kv, {})).openField(sealed, 'ssf:push-authorization')).toBe('Bearer rp-secret');
    expect(() => secrets.openField(sealed, 'another purpose')).toThrow();
    const flipped = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'B' : 'A') + sealed.slice(-1);
    expect(() => secrets.openField(flipped, 'ssf:push-authorization')).toThrow();
    const other = await LedgerSecrets.open(new MemoryKeyValueStore(), {});
    expect(() => other.openField(sealed, 'ssf:push-authorization')).toThrow(); // another master secret
  });
});
