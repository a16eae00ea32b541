import { randomBytes, randomUUID } from 'node:crypto';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  decodeProtectedHeader,
  decodeJwt,
  importJWK,
  jwtVerify,
  SignJWT,
  type JWK,
  type KeyLike,
} from 'jose';
import { KeyRing, KeySetIntegrityError, SIGNING_KEYS_KEY, supportedAlgs, type KeyRingOptions, type SigningAlg, type StoredKeySet } from './key-ring';
import { MemoryKeyValueStore, type KeyValueStore } from '@token-ledger/event-store';

const ISSUER = 'https://ledger.example';
const MAX_TTL = 600;
const T0 = Date.UTC(2025, 0, 1);
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

function clock(start = T0) {
  const c = { ms: start, now: () => c.ms, advance: (s: number) => (c.ms += s * 1000) };
  return c;
}

/** Holds version-slot claims until `parties` of them arrived, to force a rotation race. */
class BarrierKv extends MemoryKeyValueStore {
  armed = false;
  private waiting: (() => void)[] = [];
  constructor(private readonly parties: number) {
    super(0);
  }
  override async putIfAbsent<T>(key: string, value: T): Promise<T> {
    if (this.armed && key.includes('@')) {
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        if (this.waiting.length === this.parties) this.waiting.splice(0).forEach((r) => r());
      });
    }
    return super.putIfAbsent(key, value);
  }
}

const rings: KeyRing[] = [];
async function openRing(kv: KeyValueStore, opts: Partial<KeyRingOptions> = {}): Promise<KeyRing> {
  const ring = await KeyRing.open(kv, { alg: 'ES256', issuer: ISSUER, maxAccessTokenTtlSeconds: MAX_TTL, reloadIntervalMs: 0, ...opts });
  rings.push(ring);
  return ring;
}
afterEach(() => rings.splice(0).forEach((r) => r.close()));

function claimsAt(nowMs: number, ttl = 300) {
  const iat = Math.floor(nowMs / 1000);
  return { sub: 'user-1', client_id: 'app', scope: 'openid profile', aud: 'https://api.example', sid: 'fam_abc', jti: randomUUID(), iat, exp: iat + ttl };
}

async function storedSet(kv: MemoryKeyValueStore): Promise<StoredKeySet> {
  return (await kv.get<StoredKeySet>(SIGNING_KEYS_KEY))!;
}

/** The active private key, read straight from an unsealed store, to forge tokens in tests. */
async function activePrivateKey(kv: MemoryKeyValueStore, ring: KeyRing): Promise<KeyLike> {
  const set = await storedSet(kv);
  const entry = set.keys.find((k) => k.kid === ring.activeKid)!;
  return (await importJWK((entry.privateJwk as { plain: JWK }).plain, entry.alg)) as KeyLike;
}

describe('KeyRing', () => {
  describe.each(supportedAlgs)('%s', (alg: SigningAlg) => {
    it('signs RFC 9068 access tokens that verify, locally and through the JWKS', async () => {
      const c = clock();
      const kv = new MemoryKeyValueStore();
      const ring = await openRing(kv, { alg, now: c.now });
      const claims = claimsAt(c.ms);
      const token = await ring.signAccessToken(claims);

      expect(decodeProtectedHeader(token)).toEqual({ alg, kid: ring.activeKid, typ: 'at+jwt' });
      expect(decodeJwt(token)).toEqual({ iss: ISSUER, ...claims });

      const payload = await ring.verifyAccessToken(token);
      expect(payload).toMatchObject({ iss: ISSUER, sub: 'user-1', sid: 'fam_abc', jti: claims.jti });

      // A resource server that only has the published JWKS can verify it.
      const jwks = ring.jwks();
      const { payload: rs } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: ISSUER, typ: 'at+jwt', currentDate: new Date(c.ms) });
      expect(rs.jti).toBe(claims.jti);
    });

    it('uses the RFC 7638 thumbprint as kid and publishes only public members', async () => {
      const ring = await openRing(new MemoryKeyValueStore(), { alg });
      const { keys } = ring.jwks();
      expect(keys).toHaveLength(1);
      const [jwk] = keys;
      expect(jwk).toMatchObject({ kid: ring.activeKid, alg, use: 'sig' });
      expect(await calculateJwkThumbprint(jwk, 'sha256')).toBe(ring.activeKid);
      for (const m of PRIVATE_MEMBERS) expect(jwk).not.toHaveProperty(m);
      if (alg === 'ES256') expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256' });
      if (alg === 'EdDSA') expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
      if (alg === 'RS256') {
        expect(jwk.kty).toBe('RSA');
        expect(Buffer.from(jwk.n as string, 'base64url')).toHaveLength(256); // 2048-bit modulus
      }
    });
  });

  it('keeps a retired key verifying and published until retiredAt + max TTL, then drops it', async () => {
    const c = clock();
    const kv = new MemoryKeyValueStore();
    const ring = await openRing(kv, { now: c.now, retiredKeyGraceMs: 0 });
    const oldKid = ring.activeKid;
    const oldToken = await ring.signAccessToken(claimsAt(c.ms, MAX_TTL));

    c.advance(10);
    const { kid, retired } = await ring.rotate();
    expect(kid).not.toBe(oldKid);
    expect(ring.activeKid).toBe(kid);
    expect(retired).toEqual([oldKid]);
    expect(decodeProtectedHeader(await ring.signAccessToken(claimsAt(c.ms))).kid).toBe(kid);

    // Still valid and still published: its last token may live MAX_TTL after retirement.
    await expect(ring.verifyAccessToken(oldToken)).resolves.toMatchObject({ sub: 'user-1' });
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual([kid, oldKid]);
    c.advance(MAX_TTL - 11); // 1 s before the old token's exp
    await expect(ring.verifyAccessToken(oldToken)).resolves.toBeDefined();
    c.advance(10); // retiredAt + MAX_TTL - 1
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual([kid, oldKid]);
    c.advance(1); // now = retiredAt + MAX_TTL
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual([kid]);

    // The next rotation drops it from the stored set as well.
    const second = await ring.rotate();
    expect(second.retired).toEqual([kid]);
    const set = await storedSet(kv);
    expect(set.keys.map((k) => k.kid)).toEqual([second.kid, kid]);
    // Retired keys keep no private key at all.
    expect(set.keys.find((k) => k.kid === kid)).not.toHaveProperty('privateJwk');
  });

  it('by default publishes a retired key one reload interval longer (nodes that have not reloaded yet)', async () => {
    const c = clock();
    const ring = await openRing(new MemoryKeyValueStore(), { now: c.now, reloadIntervalMs: 30_000 });
    const oldKid = ring.activeKid;
    await ring.rotate();
    c.advance(MAX_TTL + 29);
    expect(ring.jwks().keys.map((k) => k.kid)).toContain(oldKid);
    c.advance(1);
    expect(ring.jwks().keys.map((k) => k.kid)).not.toContain(oldKid);
  });

  describe('rejects', () => {
    let c: ReturnType<typeof clock>;
    let kv: MemoryKeyValueStore;
    let ring: KeyRing;
    let token: string;
    beforeEach(async () => {
      c = clock();
      kv = new MemoryKeyValueStore();
      ring = await openRing(kv, { now: c.now });
      token = await ring.signAccessToken(claimsAt(c.ms, 300));
    });

    it('a tampered payload', async () => {
      const [h, p, s] = token.split('.');
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
      const forged = Buffer.from(JSON.stringify({ ...claims, sub: 'admin' })).toString('base64url');
      await expect(ring.verifyAccessToken(`${h}.${forged}.${s}`)).rejects.toThrow();
    });

    it('a tampered signature', async () => {
      const [h, p, s] = token.split('.');
      const sig = Buffer.from(s, 'base64url');
      sig[sig.length - 1] ^= 1;
      await expect(ring.verifyAccessToken(`${h}.${p}.${sig.toString('base64url')}`)).rejects.toThrow();
    });

    it('an expired token (clock tolerance 0: exp == now is expired)', async () => {
      const { exp } = decodeJwt(token);
      await expect(ring.verifyAccessToken(token, { now: exp! * 1000 - 1 })).resolves.toBeDefined();
      await expect(ring.verifyAccessToken(token, { now: exp! * 1000 })).rejects.toThrow(/exp/);
      c.advance(301);
      await expect(ring.verifyAccessToken(token)).rejects.toThrow(/exp/);
    });

    it('a token signed by an unknown key', async () => {
      const other = await openRing(new MemoryKeyValueStore(), { now: c.now });
      const foreign = await other.signAccessToken(claimsAt(c.ms));
      await expect(ring.verifyAccessToken(foreign)).rejects.toThrow(/unknown key/);
    });

    it('a token whose kid is ours but whose signature is from another key', async () => {
      const other = await openRing(new MemoryKeyValueStore(), { now: c.now });
      const foreign = await other.signAccessToken(claimsAt(c.ms));
      const [, p, s] = foreign.split('.');
      const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: ring.activeKid, typ: 'at+jwt' })).toString('base64url');
      await expect(ring.verifyAccessToken(`${header}.${p}.${s}`)).rejects.toThrow();
    });

    it('a wrong or missing typ', async () => {
      const key = await activePrivateKey(kv, ring);
      const claims = { iss: ISSUER, ...claimsAt(c.ms) };
      for (const typ of ['JWT', undefined]) {
        const jwt = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: ring.activeKid, ...(typ ? { typ } : {}) }).sign(key);
        await expect(ring.verifyAccessToken(jwt)).rejects.toThrow(/typ/);
      }
    });

    it('a wrong issuer, and missing required claims', async () => {
      const key = await activePrivateKey(kv, ring);
      const header = { alg: 'ES256', kid: ring.activeKid, typ: 'at+jwt' };
      const wrongIss = await new SignJWT({ ...claimsAt(c.ms), iss: 'https://evil.example' }).setProtectedHeader(header).sign(key);
      await expect(ring.verifyAccessToken(wrongIss)).rejects.toThrow(/iss/);
      const { exp: _exp, ...noExp } = claimsAt(c.ms);
      const withoutExp = await new SignJWT({ ...noExp, iss: ISSUER }).setProtectedHeader(header).sign(key);
      await expect(ring.verifyAccessToken(withoutExp)).rejects.toThrow(/exp/);
    });

    it('alg none, HS256 with the public key, and a header alg that differs from the key', async () => {
      const body = Buffer.from(JSON.stringify({ iss: ISSUER, ...claimsAt(c.ms) })).toString('base64url');
      const none = Buffer.from(JSON.stringify({ alg: 'none', kid: ring.activeKid, typ: 'at+jwt' })).toString('base64url');
      await expect(ring.verifyAccessToken(`${none}.${body}.`)).rejects.toThrow();
      const hs = await new SignJWT({ iss: ISSUER, ...claimsAt(c.ms) })
        .setProtectedHeader({ alg: 'HS256', kid: ring.activeKid, typ: 'at+jwt' })
        .sign(Buffer.from(JSON.stringify(ring.jwks().keys[0])));
      await expect(ring.verifyAccessToken(hs)).rejects.toThrow();
      const [, p, s] = token.split('.');
      const eddsa = Buffer.from(JSON.stringify({ alg: 'EdDSA', kid: ring.activeKid, typ: 'at+jwt' })).toString('base64url');
      await expect(ring.verifyAccessToken(`${eddsa}.${p}.${s}`)).rejects.toThrow(/alg/);
    });

    it('garbage', async () => {
      for (const bad of ['', 'a.b.c', 'not a jwt', `${token}x`, token.split('.').slice(0, 2).join('.')]) {
        await expect(ring.verifyAccessToken(bad)).rejects.toThrow();
      }
    });

    it('to sign a token that would outlive maxAccessTokenTtlSeconds', async () => {
      await expect(ring.signAccessToken(claimsAt(c.ms, MAX_TTL + 1))).rejects.toThrow(RangeError);
      await expect(ring.signAccessToken(claimsAt(c.ms, MAX_TTL))).resolves.toEqual(expect.any(String));
    });
  });

  describe('with a KEK', () => {
    const kek = randomBytes(32);

    it.each(supportedAlgs)('%s: the stored document holds no private key material in plain', async (alg) => {
      const kv = new MemoryKeyValueStore();
      const ring = await openRing(kv, { alg, kek });
      await ring.rotate(); // retired keys too
      const set = await storedSet(kv);
      const active = set.keys.find((k) => k.kid === ring.activeKid)!;
      expect(active.privateJwk).toMatchObject({ sealed: 'A256GCM' });
      // Recover the private members through the ring's own sealing, then look for them in a dump.
      const { openJson } = await import('./kek');
      const priv = openJson<JWK>(active.privateJwk!, kek, { purpose: 'signing keys', binding: active.kid });
      const secrets = PRIVATE_MEMBERS.map((m) => (priv as unknown as Record<string, unknown>)[m]).filter((v): v is string => typeof v === 'string');
      expect(secrets.length).toBeGreaterThan(0);
      const dump = kv.dump();
      for (const v of secrets) expect(dump).not.toContain(v);
      expect(dump).not.toMatch(/\\"d\\"/);
      // Still signs and verifies.
      await expect(ring.verifyAccessToken(await ring.signAccessToken(claimsAt(Date.now())))).resolves.toBeDefined();
    });

    it('reopens with the KEK; fails clearly without it or with a wrong one', async () => {
      const kv = new MemoryKeyValueStore();
      const first = await openRing(kv, { kek });
      await expect((await openRing(kv, { kek })).activeKid).toBe(first.activeKid);
      await expect(openRing(kv, {})).rejects.toThrow('LEDGER_KEK is required to open the signing keys');
      await expect(openRing(kv, { kek: randomBytes(32) })).rejects.toThrow(/does not match its MAC: .* or LEDGER_KEK is not the key it was sealed with/);
    });

    it('refuses a plain key set written before LEDGER_KEK; `keys seal` (sealStored) seals and MACs it: same kid', async () => {
      const kv = new MemoryKeyValueStore();
      const plain = await openRing(kv, {});
      await plain.rotate(); // a version slot too
      const d = ((await storedSet(kv)).keys[0].privateJwk as { plain: JWK }).plain.d as string;
      await expect(openRing(kv, { kek })).rejects.toThrow(KeySetIntegrityError);
      await expect(openRing(kv, { kek })).rejects.toThrow(/carries no MAC although LEDGER_KEK is set.*run `token-ledger keys seal`/);
      expect(await KeyRing.sealStored(kv, kek)).toEqual({ version: 2, kids: [plain.activeKid, expect.any(String)] });
      expect(await KeyRing.sealStored(kv, kek)).toMatchObject({ version: 2 }); // idempotent
      const sealed = await openRing(kv, { kek });
      expect(sealed.activeKid).toBe(plain.activeKid);
      expect(kv.dump()).not.toContain(d);
      expect((await storedSet(kv)).keys[0].privateJwk).toMatchObject({ sealed: 'A256GCM' });
    });
  });

  describe('the key set is MACed as a whole under a KEK', () => {
    const kek = randomBytes(32);

    it('a signing key injected into the stored set (public only, as a retired key) is refused at start-up', async () => {
      const kv = new MemoryKeyValueStore();
      const ring = await openRing(kv, { kek });
      const attackerKv = new MemoryKeyValueStore();
      await openRing(attackerKv, {}); // the attacker's own key
      const set = await storedSet(kv);
      const theirs = (await storedSet(attackerKv)).keys[0];
      const { privateJwk: _p, ...publicOnly } = theirs;
      await kv.put(SIGNING_KEYS_KEY, { ...set, keys: [...set.keys, { ...publicOnly, retiredAt: new Date().toISOString() }] });
      await expect(openRing(kv, { kek })).rejects.toThrow(/does not match its MAC: it was altered \(a key added or changed\)/);
      await expect(ring.reload()).rejects.toThrow(KeySetIntegrityError);
      expect(ring.jwks().keys.map((k) => k.kid)).toEqual([ring.activeKid]); // the running ring kept its keys
    });

    it('a whole plain key set put in its place, or the MAC stripped, is refused', async () => {
      const kv = new MemoryKeyValueStore();
      await openRing(kv, { kek });
      const original = await storedSet(kv);
      const foreign = new MemoryKeyValueStore();
      await openRing(foreign, {});
      await kv.put(SIGNING_KEYS_KEY, await storedSet(foreign));
      await expect(openRing(kv, { kek })).rejects.toThrow(/carries no MAC/);
      const { mac: _m, ...stripped } = original;
      await kv.put(SIGNING_KEYS_KEY, stripped);
      await expect(openRing(kv, { kek })).rejects.toThrow(/carries no MAC/);
      await kv.put(SIGNING_KEYS_KEY, original);
      await expect(openRing(kv, { kek })).resolves.toBeDefined();
    });

    it('concurrent opens and rotations under a KEK keep a valid MAC on every stored set', async () => {
      const kv = new MemoryKeyValueStore(6);
      const opened = await Promise.all(Array.from({ length: 6 }, () => openRing(kv, { kek })));
      expect(new Set(opened.map((r) => r.activeKid)).size).toBe(1);
      await Promise.all(opened.map((r) => r.rotate()));
      expect(typeof (await storedSet(kv)).mac).toBe('string');
      const reopened = await openRing(kv, { kek });
      await Promise.all(opened.map((r) => r.reload()));
      expect(new Set(opened.map((r) => r.activeKid))).toEqual(new Set([reopened.activeKid]));
    });
  });

  describe('several nodes on one store', () => {
    it('concurrent opens on an empty store end with one active kid', async () => {
      const kv = new MemoryKeyValueStore(6);
      const opened = await Promise.all(Array.from({ length: 6 }, () => openRing(kv)));
      expect(new Set(opened.map((r) => r.activeKid)).size).toBe(1);
      expect((await storedSet(kv)).keys).toHaveLength(1);
    });

    it('concurrent opens that change the alg end with one active key of the new alg', async () => {
      const kv = new MemoryKeyValueStore(6);
      const es = await openRing(kv, { alg: 'ES256' });
      const opened = await Promise.all(Array.from({ length: 5 }, () => openRing(kv, { alg: 'EdDSA' })));
      const kids = new Set(opened.map((r) => r.activeKid));
      expect(kids.size).toBe(1);
      expect(opened[0].activeAlg).toBe('EdDSA');
      await es.reload();
      expect(es.activeKid).toBe(opened[0].activeKid);
      // One rotation happened: the ES256 key is retired, still published.
      expect(es.jwks().keys.map((k) => k.alg)).toEqual(['EdDSA', 'ES256']);
    });

    it('concurrent rotations from the same version decide one winner (compare-and-set on the version slot)', async () => {
      const kv = new BarrierKv(2);
      const a = await openRing(kv);
      const b = await openRing(kv);
      const before = a.activeKid;
      kv.armed = true; // both rotations read version 1 before either claims version 2
      const [ra, rb] = await Promise.all([a.rotate(), b.rotate()]);
      expect(ra.kid).toBe(rb.kid);
      expect(ra.kid).not.toBe(before);
      expect(a.activeKid).toBe(b.activeKid);
      const set = await storedSet(kv);
      expect(set.version).toBe(2);
      expect(set.keys.map((k) => k.kid)).toEqual([ra.kid, before]);
    });

    it('racing rotations never leave a node signing with an unpublished key', async () => {
      const kv = new MemoryKeyValueStore(8);
      const nodes = await Promise.all(Array.from({ length: 4 }, () => openRing(kv)));
      const results = await Promise.all(nodes.flatMap((n) => [n.rotate(), n.rotate()]));
      await Promise.all(nodes.map((n) => n.reload()));
      expect(new Set(nodes.map((n) => n.activeKid)).size).toBe(1);
      const published = new Set(nodes[0].jwks().keys.map((k) => k.kid));
      for (const r of results) expect(published.has(r.kid)).toBe(true);
      for (const n of nodes) {
        const token = await n.signAccessToken(claimsAt(Date.now()));
        for (const m of nodes) await expect(m.verifyAccessToken(token)).resolves.toBeDefined();
      }
    });

    it('verifies a token from a key another node rotated in (reload on unknown kid), and reload() picks it up', async () => {
      const kv = new MemoryKeyValueStore();
      const a = await openRing(kv);
      const b = await openRing(kv);
      await b.rotate();
      const token = await b.signAccessToken(claimsAt(Date.now()));
      await expect(a.verifyAccessToken(token)).resolves.toMatchObject({ sub: 'user-1' });
      expect(a.activeKid).toBe(b.activeKid);

      await b.rotate();
      await a.reload();
      expect(a.activeKid).toBe(b.activeKid);
    });

    it('rate-limits reloads caused by unknown kids', async () => {
      const kv = new MemoryKeyValueStore();
      const a = await openRing(kv, { unknownKidReloadIntervalMs: 200 });
      const other = await openRing(new MemoryKeyValueStore());
      const foreign = await other.signAccessToken(claimsAt(Date.now()));
      const reads = () => kv.calls.filter((c) => c.op === 'get' && c.key === SIGNING_KEYS_KEY).length;
      const before = reads();
      await Promise.all(Array.from({ length: 20 }, () => expect(a.verifyAccessToken(foreign)).rejects.toThrow(/unknown key/)));
      expect(reads() - before).toBeLessThanOrEqual(1);
      // A kid that cannot be a thumbprint never triggers a read.
      const [, p, s] = foreign.split('.');
      const odd = Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'x', typ: 'at+jwt' })).toString('base64url');
      const mid = reads();
      await expect(a.verifyAccessToken(`${odd}.${p}.${s}`)).rejects.toThrow(/unknown key/);
      expect(reads()).toBe(mid);
    });

    it('reloads on a timer', async () => {
      const kv = new MemoryKeyValueStore();
      const a = await openRing(kv, { reloadIntervalMs: 20 });
      const b = await openRing(kv);
      await b.rotate();
      const deadline = Date.now() + 2000;
      while (a.activeKid !== b.activeKid && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(a.activeKid).toBe(b.activeKid);
    });

    it('finds the newest set even when a slow writer left an older main document', async () => {
      const kv = new MemoryKeyValueStore();
      const ring = await openRing(kv);
      const v1 = await storedSet(kv);
      await ring.rotate();
      const { kid } = await ring.rotate();
      await kv.put(SIGNING_KEYS_KEY, v1); // a stale put landing late
      const late = await openRing(kv);
      expect(late.activeKid).toBe(kid);
      // Superseded version slots hold no key material.
      expect(await kv.get(`${SIGNING_KEYS_KEY}@2`)).toEqual({ format: 'token-ledger.signing-keys/superseded', version: 2 });
    });
  });

  it('validates its options', async () => {
    const kv = new MemoryKeyValueStore();
    await expect(openRing(kv, { alg: 'HS256' as SigningAlg })).rejects.toThrow(/unsupported signing algorithm/);
    await expect(openRing(kv, { issuer: '' })).rejects.toThrow(/issuer/);
    await expect(openRing(kv, { maxAccessTokenTtlSeconds: 0 })).rejects.toThrow(/maxAccessTokenTtlSeconds/);
  });
});

describe('KeyRing.signJws (signed feeds)', () => {
  it('signs a JSON payload with the active key, header {alg, kid, typ}; it verifies against the JWKS and never as an access token', async () => {
    const ring = await openRing(new MemoryKeyValueStore());
    const jws = await ring.signJws('revocation+jwt', { familyId: 'fam_1', accessTokensValidUntil: '2030-01-01T00:00:00.000Z' });
    expect(decodeProtectedHeader(jws)).toEqual({ alg: 'ES256', kid: ring.activeKid, typ: 'revocation+jwt' });
    const { payload } = await jwtVerify(jws, createLocalJWKSet(ring.jwks()), { typ: 'revocation+jwt' });
    expect(payload).toEqual({ familyId: 'fam_1', accessTokensValidUntil: '2030-01-01T00:00:00.000Z' });
    await expect(ring.verifyAccessToken(jws)).rejects.toThrow();
  });
});
