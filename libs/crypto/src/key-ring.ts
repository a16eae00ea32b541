import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  type JWK,
  type JWTHeaderParameters,
  type JWTPayload,
  type KeyLike,
} from 'jose';
import { canonicalJson } from '@token-ledger/domain';
import type { KeyValueStore } from '@token-ledger/event-store';
import { signCompactJws } from './compact-jws';
import { isSealed, openJson, sealJson, type SealContext, type SealedJson } from './kek';

export const supportedAlgs = ['ES256', 'RS256', 'EdDSA'] as const;
export type SigningAlg = (typeof supportedAlgs)[number];

export function isSupportedAlg(value: unknown): value is SigningAlg {
  return typeof value === 'string' && (supportedAlgs as readonly string[]).includes(value);
}

/**
 * kv key of the signing key set. Rotations are decided through version slots
 * `crypto/signing-keys@<version>` (see readLatest/claim): the port has putIfAbsent but no
 * compare-and-set, and a putIfAbsent on the next version number is exactly a compare-and-set.
 */
export const SIGNING_KEYS_KEY = 'crypto/signing-keys';
const versionKey = (version: number) => `${SIGNING_KEYS_KEY}@${version}`;

export interface StoredSigningKey {
  /** RFC 7638 thumbprint (SHA-256) of the public JWK. */
  kid: string;
  alg: SigningAlg;
  createdAt: string;
  /** Set when a newer key took over; the key then only verifies and stays published for a while. */
  retiredAt?: string;
  /** Public members only. */
  publicJwk: JWK;
  /** Present on the active key only (dropped at retirement: a retired key never signs again). */
  privateJwk?: SealedJson<JWK>;
}

export interface StoredKeySet {
  format: 'token-ledger.signing-keys/1';
  /** 1 for the first set; +1 per rotation. */
  version: number;
  updatedAt: string;
  /** Active key first, then retired keys newest first. */
  keys: StoredSigningKey[];
  /**
   * With LEDGER_KEK: HMAC-SHA256 (hex) over the canonical JSON of the whole set without `mac`, keyed
   * with HKDF(KEK, 'token-ledger/signing-keys-mac/v1'). The private keys are sealed one by one, but
   * the list and the public keys are not secret: without a MAC someone with database access could
   * add a key of their own and have it published and trusted.
   */
  mac?: string;
}

export const KEY_SET_MAC_INFO = 'token-ledger/signing-keys-mac/v1';

/** The signing key set has no MAC (or a wrong one) while LEDGER_KEK is set: refused at start-up. */
export class KeySetIntegrityError extends Error {}

function keySetMac(kek: Buffer, set: StoredKeySet): string {
  const { mac: _mac, ...rest } = set;
  const key = Buffer.from(hkdfSync('sha256', kek, Buffer.alloc(0), KEY_SET_MAC_INFO, 32));
  return createHmac('sha256', key).update(canonicalJson(rest), 'utf8').digest('hex');
}

/** The set as stored: MACed when there is a KEK. */
function withMac(set: StoredKeySet, kek: Buffer | undefined): StoredKeySet {
  const { mac: _mac, ...rest } = set;
  return kek ? { ...rest, mac: keySetMac(kek, rest) } : rest;
}

/** With a KEK, a set without a valid MAC is refused: it was written without the KEK, or injected. */
function assertMac(set: StoredKeySet, kek: Buffer | undefined, where: string): void {
  if (!kek) return;
  if (typeof set.mac !== 'string') {
    throw new KeySetIntegrityError(
      `the signing key set (${where} in the key/value store) carries no MAC although LEDGER_KEK is set: it was written before ` +
        'LEDGER_KEK was configured, or injected by someone with database access. Check its keys (kids), then run ' +
        '`token-ledger keys seal` with LEDGER_KEK set to seal and MAC it',
    );
  }
  const expected = Buffer.from(keySetMac(kek, set), 'utf8');
  const actual = Buffer.from(set.mac, 'utf8');
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
    throw new KeySetIntegrityError(
      `the signing key set (${where} in the key/value store) does not match its MAC: it was altered (a key added or changed), ` +
        'or LEDGER_KEK is not the key it was sealed with',
    );
  }
}

/** Left in a version slot once the next version exists, so the slot holds no key material. */
interface SupersededSlot {
  format: 'token-ledger.signing-keys/superseded';
  version: number;
}

export interface KeyRingOptions {
  /** Algorithm of newly generated keys; all nodes should agree (see open). */
  alg: SigningAlg;
  kek?: Buffer;
  issuer: string;
  /** Upper bound on access token lifetimes; signAccessToken refuses longer ones. */
  maxAccessTokenTtlSeconds: number;
  /** Clock in epoch milliseconds; default Date.now. */
  now?: () => number;
  /** Periodic reload from kv; default 30 000. 0 disables the timer. */
  reloadIntervalMs?: number;
  /**
   * Extra time a retired key stays published after retiredAt + maxAccessTokenTtl, covering nodes
   * that still sign with it until their next reload. Default: reloadIntervalMs.
   */
  retiredKeyGraceMs?: number;
  /** Minimum gap between reloads triggered by tokens with an unknown kid; default 1000. */
  unknownKidReloadIntervalMs?: number;
  /** Called when a timer reload fails (the previous key set stays in use). */
  onReloadError?: (error: unknown) => void;
}

/** RFC 9068 access token claims the caller supplies; iss comes from the ring. Times in epoch seconds. */
export interface AccessTokenClaims {
  sub: string;
  client_id: string;
  scope: string;
  aud: string | string[];
  sid: string;
  jti: string;
  iat: number;
  exp: number;
  /** RFC 9449 §6.1: the DPoP key a sender-constrained token is bound to. */
  cnf?: { jkt: string };
}

export interface PublicJwk extends JWK {
  kid: string;
  alg: SigningAlg;
  use: 'sig';
}

interface LoadedKey {
  entry: StoredSigningKey;
  publicKey: KeyLike;
  privateKey?: KeyLike;
  jwk: PublicJwk;
}

interface RingState {
  version: number;
  active: LoadedKey & { privateKey: KeyLike };
  byKid: Map<string, LoadedKey>;
}

const FORMAT = 'token-ledger.signing-keys/1';
const SUPERSEDED = 'token-ledger.signing-keys/superseded';
const PUBLIC_MEMBERS: Record<string, readonly string[]> = { EC: ['kty', 'crv', 'x', 'y'], RSA: ['kty', 'n', 'e'], OKP: ['kty', 'crv', 'x'] };
const KID_PATTERN = /^[A-Za-z0-9_-]{43}$/; // base64url SHA-256: anything else cannot be one of ours
const MAX_OPEN_ATTEMPTS = 8;
const sealContext = (kid: string): SealContext => ({ purpose: 'signing keys', binding: kid });

/** Whitelist copy: a private member (d, p, q, dp, dq, qi, …) can never slip through. */
function publicMembers(jwk: JWK): JWK {
  const members = jwk.kty ? PUBLIC_MEMBERS[jwk.kty] : undefined;
  if (!members) throw new Error(`unsupported signing key type ${String(jwk.kty)}`);
  const out: Record<string, unknown> = {};
  for (const m of members) {
    const v = (jwk as unknown as Record<string, unknown>)[m];
    if (typeof v !== 'string') throw new Error(`signing key is missing its "${m}" member`);
    out[m] = v;
  }
  return out as unknown as JWK;
}

function isKeySet(value: unknown): value is StoredKeySet {
  return typeof value === 'object' && value !== null && (value as StoredKeySet).format === FORMAT && Array.isArray((value as StoredKeySet).keys);
}

function activeEntry(set: StoredKeySet): StoredSigningKey | undefined {
  return set.keys.find((k) => k.retiredAt === undefined);
}

/**
 * The asymmetric keys that sign access tokens (RFC 9068) and the JWKS that publishes them.
 * The key set is one JSON document in the key/value store shared by all nodes.
 */
export class KeyRing {
  private state!: RingState;
  private readonly now: () => number;
  private readonly reloadIntervalMs: number;
  private readonly retiredKeyGraceMs: number;
  private readonly unknownKidReloadIntervalMs: number;
  private timer?: NodeJS.Timeout;
  private reloading?: Promise<void>;
  private scheduledReload?: Promise<void>;
  private lastReloadAt = -Infinity; // performance.now(): the rate limit must not follow a test clock
  private rotating: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly kv: KeyValueStore,
    private readonly opts: KeyRingOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.reloadIntervalMs = opts.reloadIntervalMs ?? 30_000;
    this.retiredKeyGraceMs = opts.retiredKeyGraceMs ?? this.reloadIntervalMs;
    this.unknownKidReloadIntervalMs = opts.unknownKidReloadIntervalMs ?? 1_000;
  }

  /**
   * The way out for a key set written before LEDGER_KEK was set (which open() refuses): seals any
   * plain private key and MACs the whole set with `kek`, in place (same keys, same version). Run by
   * `token-ledger keys seal` after the operator has checked the set's kids; idempotent.
   */
  static async sealStored(kv: KeyValueStore, kek: Buffer): Promise<{ version: number; kids: string[] } | undefined> {
    if (kek.length !== 32) throw new Error('the key-encryption key must be 32 bytes');
    const main = await kv.get<StoredKeySet>(SIGNING_KEYS_KEY);
    if (main === undefined) return undefined;
    if (!isKeySet(main)) throw new Error(`${SIGNING_KEYS_KEY} in the key/value store is not a signing key set`);
    const seal = (set: StoredKeySet): StoredKeySet =>
      withMac(
        {
          ...set,
          keys: set.keys.map((k) =>
            k.privateJwk && !isSealed(k.privateJwk) ? { ...k, privateJwk: sealJson(openJson(k.privateJwk, kek, sealContext(k.kid)), kek, sealContext(k.kid)) } : k,
          ),
        },
        kek,
      );
    let latest = main;
    await kv.put(SIGNING_KEYS_KEY, seal(main));
    for (let version = main.version + 1; ; version++) {
      const slot = await kv.get<StoredKeySet | SupersededSlot>(versionKey(version));
      if (slot === undefined) break;
      if (isKeySet(slot)) {
        latest = slot;
        await kv.put(versionKey(version), seal(slot));
      }
    }
    if (latest.version >= 2 && latest === main) {
      const slot = await kv.get<StoredKeySet | SupersededSlot>(versionKey(latest.version));
      if (slot !== undefined && isKeySet(slot)) await kv.put(versionKey(latest.version), seal(slot));
    }
    return { version: latest.version, kids: latest.keys.map((k) => k.kid) };
  }

  /**
   * Loads the key set, creating it (or rotating to the configured alg) when needed. Concurrent
   * opens on an empty store, or concurrent alg changes, converge on one active key.
   */
  static async open(kv: KeyValueStore, opts: KeyRingOptions): Promise<KeyRing> {
    if (!isSupportedAlg(opts.alg)) throw new Error(`unsupported signing algorithm ${String(opts.alg)}; use one of ${supportedAlgs.join(', ')}`);
    if (typeof opts.issuer !== 'string' || opts.issuer === '') throw new Error('KeyRing needs an issuer');
    if (!Number.isSafeInteger(opts.maxAccessTokenTtlSeconds) || opts.maxAccessTokenTtlSeconds < 1) {
      throw new Error(`maxAccessTokenTtlSeconds must be a positive integer, got ${opts.maxAccessTokenTtlSeconds}`);
    }
    if (opts.kek && opts.kek.length !== 32) throw new Error('the key-encryption key must be 32 bytes');
    const ring = new KeyRing(kv, opts);
    await ring.ensureActive();
    if (ring.reloadIntervalMs > 0) {
      ring.timer = setInterval(() => {
        ring.reload().catch((error) => ring.opts.onReloadError?.(error));
      }, ring.reloadIntervalMs);
      ring.timer.unref(); // a background refresh must not keep the process alive
    }
    return ring;
  }

  get activeKid(): string {
    return this.state.active.entry.kid;
  }

  get activeAlg(): SigningAlg {
    return this.state.active.entry.alg;
  }

  async signAccessToken(claims: AccessTokenClaims): Promise<string> {
    const { active } = this.state;
    // A token outliving maxAccessTokenTtl would outlive its key's publication after a rotation.
    const nowSec = Math.floor(this.now() / 1000);
    if (!Number.isSafeInteger(claims.exp) || !Number.isSafeInteger(claims.iat)) throw new RangeError('iat and exp must be integer epoch seconds');
    if (claims.exp - nowSec > this.opts.maxAccessTokenTtlSeconds) {
      throw new RangeError(`access token lifetime exceeds maxAccessTokenTtlSeconds (${this.opts.maxAccessTokenTtlSeconds})`);
    }
    const payload: JWTPayload = {
      iss: this.opts.issuer,
      sub: claims.sub,
      aud: claims.aud,
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
      client_id: claims.client_id,
      scope: claims.scope,
      sid: claims.sid,
      ...(claims.cnf === undefined ? {} : { cnf: { jkt: claims.cnf.jkt } }),
    };
    return signCompactJws(active.entry.alg, active.privateKey, { kid: active.entry.kid, typ: 'at+jwt' }, JSON.stringify(payload));
  }

  /**
   * A JWS compact serialization of `payload` (JSON) with the active key, header `{alg, kid, typ}`:
   * signed feeds (the revocation records and heartbeats of SPEC §4) that resource servers verify
   * against the same JWKS as access tokens. `typ` names what the payload is, so a record can never
   * pass for an access token (typ at+jwt) or the reverse.
   */
  async signJws(typ: string, payload: object): Promise<string> {
    const { active } = this.state;
    return signCompactJws(active.entry.alg, active.privateKey, { kid: active.entry.kid, typ }, JSON.stringify(payload));
  }

  /** Throws on anything invalid. `now` in epoch milliseconds. */
  async verifyAccessToken(token: string, opts: { now?: number } = {}): Promise<JWTPayload> {
    const { payload } = await jwtVerify(token, (header) => this.verificationKey(header), {
      issuer: this.opts.issuer,
      typ: 'at+jwt',
      algorithms: [...supportedAlgs],
      clockTolerance: 0,
      currentDate: new Date(opts.now ?? this.now()),
      requiredClaims: ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti'],
    });
    return payload;
  }

  /** Public keys a resource server may need: the active key and retired keys whose tokens may live. */
  jwks(): { keys: PublicJwk[] } {
    const now = this.now();
    const keys: PublicJwk[] = [];
    for (const k of this.state.byKid.values()) {
      if (k.entry.retiredAt === undefined || this.publishedUntil(k.entry) > now) keys.push({ ...k.jwk });
    }
    return { keys };
  }

  /**
   * Makes a new active key; the previous one is retired (published until its tokens expired).
   * Retired keys past that point are dropped from the stored set. If another node rotated at the
   * same moment, its key wins and is returned. `retired`: retired kids still in the set.
   */
  rotate(): Promise<{ kid: string; retired: string[] }> {
    const run = this.rotating.then(async () => {
      const latest = await this.readLatest();
      if (!latest) throw new Error(`${SIGNING_KEYS_KEY} is missing from the key/value store`);
      await this.claim(await this.rotated(latest, this.opts.alg));
      await this.reload();
      const set = this.storedSetSnapshot();
      return { kid: this.activeKid, retired: set.filter((k) => k.retiredAt !== undefined).map((k) => k.kid) };
    });
    this.rotating = run.catch(() => undefined);
    return run;
  }

  /** Re-reads the key set (another node may have rotated). Concurrent calls share one read. */
  reload(): Promise<void> {
    this.reloading ??= (async () => {
      try {
        const latest = await this.readLatest();
        if (!latest) throw new Error(`${SIGNING_KEYS_KEY} is missing from the key/value store`);
        await this.install(latest);
      } finally {
        this.lastReloadAt = performance.now();
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  // ---------------------------------------------------------------------------------------------

  private storedSetSnapshot(): StoredSigningKey[] {
    return [...this.state.byKid.values()].map((k) => k.entry);
  }

  private publishedUntil(entry: StoredSigningKey): number {
    if (entry.retiredAt === undefined) return Infinity;
    return Date.parse(entry.retiredAt) + this.opts.maxAccessTokenTtlSeconds * 1000 + this.retiredKeyGraceMs;
  }

  private async ensureActive(): Promise<void> {
    for (let attempt = 0; attempt < MAX_OPEN_ATTEMPTS; attempt++) {
      const latest = await this.readLatest();
      if (!latest) {
        const first = withMac({ format: FORMAT, version: 1, updatedAt: new Date(this.now()).toISOString(), keys: [await this.generate(this.opts.alg)] }, this.opts.kek);
        await this.kv.putIfAbsent(SIGNING_KEYS_KEY, first); // the loser adopts the winner on the next read
        continue;
      }
      const active = activeEntry(latest);
      if (active && active.alg === this.opts.alg) {
        await this.install(latest);
        this.lastReloadAt = performance.now();
        return;
      }
      // No active key, or the configured alg changed: rotate (the old key stays published).
      await this.claim(await this.rotated(latest, this.opts.alg));
    }
    throw new Error(`could not settle the signing key set after ${MAX_OPEN_ATTEMPTS} attempts (nodes configured with different algorithms?)`);
  }

  /** Newest set: start at the main document (a hint) and follow version slots while they exist. */
  private async readLatest(): Promise<StoredKeySet | undefined> {
    const main = await this.kv.get<StoredKeySet>(SIGNING_KEYS_KEY);
    if (main === undefined) return undefined;
    if (!isKeySet(main)) throw new Error(`${SIGNING_KEYS_KEY} in the key/value store is not a signing key set`);
    let latest = main;
    let where = SIGNING_KEYS_KEY;
    for (let version = main.version + 1; ; version++) {
      const slot = await this.kv.get<StoredKeySet | SupersededSlot>(versionKey(version));
      if (slot === undefined) break;
      if (isKeySet(slot)) {
        latest = slot;
        where = versionKey(version);
      } else if ((slot as SupersededSlot).format !== SUPERSEDED) throw new Error(`${versionKey(version)} in the key/value store is malformed`);
    }
    assertMac(latest, this.opts.kek, where);
    return latest;
  }

  /**
   * Compare-and-set on the version: whoever inserts slot `version` first decides that rotation.
   * The winner then updates the main document (a read hint) and clears the previous slot.
   */
  private async claim(next: StoredKeySet): Promise<boolean> {
    const stored = await this.kv.putIfAbsent<StoredKeySet | SupersededSlot>(versionKey(next.version), next);
    const won = isKeySet(stored) && activeEntry(stored)?.kid === activeEntry(next)?.kid;
    if (!won) return false;
    await this.kv.put(SIGNING_KEYS_KEY, next);
    if (next.version - 1 >= 2) await this.kv.put<SupersededSlot>(versionKey(next.version - 1), { format: SUPERSEDED, version: next.version - 1 });
    return true;
  }

  private async rotated(latest: StoredKeySet, alg: SigningAlg): Promise<StoredKeySet> {
    const now = this.now();
    const retiredAt = new Date(now).toISOString();
    const kept: StoredSigningKey[] = [];
    for (const k of latest.keys) {
      if (k.retiredAt === undefined) {
        const { privateJwk: _dropped, ...rest } = k; // a retired key only verifies
        kept.push({ ...rest, retiredAt });
      } else if (this.publishedUntil(k) > now) {
        kept.push(k);
      }
    }
    kept.sort((a, b) => Date.parse(b.retiredAt ?? '') - Date.parse(a.retiredAt ?? ''));
    return withMac({ format: FORMAT, version: latest.version + 1, updatedAt: retiredAt, keys: [await this.generate(alg), ...kept] }, this.opts.kek);
  }

  private async generate(alg: SigningAlg): Promise<StoredSigningKey> {
    const { publicKey, privateKey } = await generateKeyPair(alg, {
      extractable: true,
      ...(alg === 'RS256' ? { modulusLength: 2048 } : {}),
      ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
    });
    const publicJwk = publicMembers(await exportJWK(publicKey));
    const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
    return {
      kid,
      alg,
      createdAt: new Date(this.now()).toISOString(),
      publicJwk,
      privateJwk: sealJson(await exportJWK(privateKey), this.opts.kek, sealContext(kid)),
    };
  }

  /** Builds the in-memory ring; KeyLikes of kids already loaded are reused, not re-imported. */
  private async install(set: StoredKeySet): Promise<void> {
    if (this.state && set.version < this.state.version) return; // a slower read finished late
    const active = activeEntry(set);
    if (!active) throw new Error(`${SIGNING_KEYS_KEY} has no active signing key`);
    const byKid = new Map<string, LoadedKey>();
    for (const entry of [active, ...set.keys.filter((k) => k !== active)]) {
      const cached = this.state?.byKid.get(entry.kid);
      let loaded: LoadedKey;
      if (cached && cached.entry.alg === entry.alg) {
        loaded = { ...cached, entry };
      } else {
        const publicJwk = publicMembers(entry.publicJwk);
        if ((await calculateJwkThumbprint(publicJwk, 'sha256')) !== entry.kid) throw new Error(`signing key ${entry.kid}: kid does not match its public key`);
        loaded = {
          entry,
          publicKey: (await importJWK(publicJwk, entry.alg)) as KeyLike,
          jwk: { ...publicJwk, kid: entry.kid, alg: entry.alg, use: 'sig' },
        };
      }
      if (entry === active && !loaded.privateKey) loaded.privateKey = await this.importPrivate(entry);
      if (entry !== active) loaded.privateKey = undefined;
      byKid.set(entry.kid, loaded);
    }
    this.state = { version: set.version, active: byKid.get(active.kid) as RingState['active'], byKid };
  }

  private async importPrivate(entry: StoredSigningKey): Promise<KeyLike> {
    if (!entry.privateJwk) throw new Error(`active signing key ${entry.kid} has no private key`);
    const jwk = openJson(entry.privateJwk, this.opts.kek, sealContext(entry.kid));
    // The private JWK must belong to the published public key, or every token would fail to verify.
    if ((await calculateJwkThumbprint(publicMembers(jwk), 'sha256')) !== entry.kid) {
      throw new Error(`active signing key ${entry.kid}: private key does not match its kid`);
    }
    return (await importJWK(jwk, entry.alg)) as KeyLike;
  }

  private async verificationKey(header: JWTHeaderParameters): Promise<KeyLike> {
    const kid = header.kid;
    if (typeof kid !== 'string') throw new Error('access token has no kid');
    let key = this.state.byKid.get(kid);
    if (!key && KID_PATTERN.test(kid)) {
      await this.reloadForUnknownKid();
      key = this.state.byKid.get(kid);
    }
    if (!key) throw new Error('access token signed by an unknown key');
    // Pin the alg to the key's: the header cannot pick a different algorithm for a known key.
    if (header.alg !== key.entry.alg) throw new Error('access token alg does not match its key');
    return key.publicKey;
  }

  /**
   * A token from a key another node just rotated in: reload, at most once per interval. Callers
   * inside the interval wait for the next scheduled reload rather than being rejected, so a flood
   * of bogus kids costs one kv read per interval and cannot starve genuine new-kid tokens.
   */
  private async reloadForUnknownKid(): Promise<void> {
    const wait = this.lastReloadAt + this.unknownKidReloadIntervalMs - performance.now();
    let pending: Promise<void>;
    if (this.reloading) pending = this.reloading;
    else if (wait <= 0) pending = this.reload();
    else {
      this.scheduledReload ??= new Promise<void>((resolve) => setTimeout(resolve, wait)).then(() => {
        this.scheduledReload = undefined;
        return this.reload();
      });
      pending = this.scheduledReload;
    }
    await pending.catch(() => undefined); // keep the old set; verification then fails as unknown kid
  }
}
