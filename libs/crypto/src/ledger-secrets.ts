import { createCipheriv, createDecipheriv, createHmac, createSecretKey, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { TokenSecrets } from '@token-ledger/domain';
import type { KeyValueStore } from '@token-ledger/event-store';
import { isSealed, openJson, sealJson, type SealContext, type SealedJson } from './kek';

/** kv key of the master secret document. */
export const MASTER_SECRET_KEY = 'crypto/master-secret';

/** Stored under MASTER_SECRET_KEY. */
export interface StoredMasterSecret {
  format: 'token-ledger.master-secret/1';
  createdAt: string;
  /** 32 random bytes, base64url, sealed when a KEK is configured. */
  secret: SealedJson<string>;
}

export interface LedgerSecretsOptions {
  kek?: Buffer;
}

const MASTER_BYTES = 32;
const SEAL: SealContext = { purpose: 'master secret' };
// Distinct HKDF info strings give independent subkeys; the version suffix allows a future re-derivation.
const INFO_TOKEN_HASH = 'token-ledger/refresh-token-hash/v1';
const INFO_TOKEN_DERIVE = 'token-ledger/refresh-token-successor/v1';
const INFO_CLIENT_PEPPER = 'token-ledger/client-secret-pepper/v1';
const INFO_API_KEY_HASH = 'token-ledger/api-key-hash/v1';
const INFO_SUBJECT_HASH = 'token-ledger/revocation-subject-hash/v1';
const INFO_FIELD_SEAL = 'token-ledger/field-seal/v1';
const INFO_DPOP_NONCE = 'token-ledger/dpop-nonce/v1';
const FIELD_SEAL_PREFIX = 'tlseal1.';
const HKDF_SALT = Buffer.from('token-ledger', 'utf8');
const SUCCESSOR_LABEL = Buffer.from('successor', 'utf8');
const ZERO = Buffer.alloc(1);

/**
 * Server-side symmetric secrets, all derived from one master secret that lives (sealed) in the
 * key/value store beside the events, so every node and every restart derives the same keys.
 */
export class LedgerSecrets {
  readonly tokenSecrets: TokenSecrets;

  // The HMAC keys as KeyObjects: createHmac sets up a Buffer key anew on every call, a quarter of
  // its cost for the short inputs here (several HMACs a refresh).
  private constructor(
    private readonly hashKey: KeyObject,
    private readonly deriveKey: KeyObject,
    private readonly pepper: KeyObject,
    private readonly apiKeyKey: KeyObject,
    private readonly subjectKey: KeyObject,
    private readonly fieldSealKey: Buffer,
    /** HMAC key for stateless DPoP server nonces (RFC 9449 §8): the same on every node. */
    readonly dpopNonceKey: Buffer,
  ) {
    this.tokenSecrets = {
      hash: (secret) => createHmac('sha256', this.hashKey).update(secret).digest('base64url'),
      successor: (previous, familyId, generation) => this.successor(previous, familyId, generation),
    };
  }

  static async open(kv: KeyValueStore, opts: LedgerSecretsOptions = {}): Promise<LedgerSecrets> {
    let stored = await kv.get<StoredMasterSecret>(MASTER_SECRET_KEY);
    if (!stored) {
      const candidate: StoredMasterSecret = {
        format: 'token-ledger.master-secret/1',
        createdAt: new Date().toISOString(),
        secret: sealJson(randomBytes(MASTER_BYTES).toString('base64url'), opts.kek, SEAL),
      };
      // Two nodes starting at once: both adopt whichever value the store kept.
      stored = await kv.putIfAbsent(MASTER_SECRET_KEY, candidate);
    }
    if (stored?.format !== 'token-ledger.master-secret/1') throw new Error(`${MASTER_SECRET_KEY} in the key/value store is not a master secret document`);
    const master = Buffer.from(openJson(stored.secret, opts.kek, SEAL), 'base64url');
    if (master.length !== MASTER_BYTES) throw new Error(`${MASTER_SECRET_KEY} holds ${master.length} bytes, expected ${MASTER_BYTES}`);
    if (opts.kek && !isSealed(stored.secret)) {
      // KEK newly configured: re-seal the same secret. Racing nodes write the same value, so plain put is safe.
      await kv.put<StoredMasterSecret>(MASTER_SECRET_KEY, { ...stored, secret: sealJson(master.toString('base64url'), opts.kek, SEAL) });
    }
    const sub = (info: string) => Buffer.from(hkdfSync('sha256', master, HKDF_SALT, info, 32));
    const hmacKey = (info: string) => createSecretKey(sub(info));
    return new LedgerSecrets(
      hmacKey(INFO_TOKEN_HASH),
      hmacKey(INFO_TOKEN_DERIVE),
      hmacKey(INFO_CLIENT_PEPPER),
      hmacKey(INFO_API_KEY_HASH),
      hmacKey(INFO_SUBJECT_HASH),
      sub(INFO_FIELD_SEAL),
      sub(INFO_DPOP_NONCE),
    );
  }

  /** Peppered hash of a client secret; only this is stored. */
  hashClientSecret(secret: string): string {
    return createHmac('sha256', this.pepper).update(secret, 'utf8').digest('base64url');
  }

  /** Constant time in the secret and the stored hash (no early return, even on a length mismatch). */
  verifyClientSecret(secret: string, storedHash: string): boolean {
    const expected = Buffer.from(this.hashClientSecret(secret), 'utf8');
    const stored = Buffer.from(typeof storedHash === 'string' ? storedHash : '', 'utf8');
    const sameLength = expected.length === stored.length;
    // Always run the comparison; with a length mismatch compare expected against itself and discard.
    const equal = timingSafeEqual(expected, sameLength ? stored : expected);
    return sameLength && equal;
  }

  /**
   * HMAC-SHA-256(apiKeyKey, keyId || 0x00 || secret), base64url: what an API key's stream stores. The
   * key id is bound in, so a hash copied onto another key's stream does not authenticate there.
   */
  hashApiKeySecret(keyId: string, secret: Buffer): string {
    return createHmac('sha256', this.apiKeyKey).update(keyId, 'utf8').update(ZERO).update(secret).digest('base64url');
  }

  /** Constant time in the secret and the stored hash, like verifyClientSecret. */
  verifyApiKeySecret(keyId: string, secret: Buffer, storedHash: string): boolean {
    const expected = Buffer.from(this.hashApiKeySecret(keyId, secret), 'utf8');
    const stored = Buffer.from(typeof storedHash === 'string' ? storedHash : '', 'utf8');
    const sameLength = expected.length === stored.length;
    const equal = timingSafeEqual(expected, sameLength ? stored : expected);
    return sameLength && equal;
  }

  /**
   * Keyed hash of a subject for published records (the revocation feed, SPEC §4): stable across
   * nodes and restarts, so consumers can correlate records of one subject, but the subject itself
   * is never on the topic, and without the ledger's secret a guessed subject cannot be confirmed.
   */
  subjectHash(subject: string): string {
    return createHmac('sha256', this.subjectKey).update(subject, 'utf8').digest('base64url');
  }

  /**
   * A secret the ledger must send back later (an SSF receiver's Authorization header), kept in an
   * event: AES-256-GCM under a key derived from the master secret, the purpose bound in as
   * associated data so a sealed value cannot be moved to another field. Never a plaintext in the store.
   */
  sealField(plaintext: string, purpose: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.fieldSealKey, iv);
    cipher.setAAD(Buffer.from(purpose, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return FIELD_SEAL_PREFIX + Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
  }

  /** The plaintext of sealField's output; throws when it was altered or sealed for another purpose. */
  openField(sealed: string, purpose: string): string {
    if (!sealed.startsWith(FIELD_SEAL_PREFIX)) throw new Error('not a sealed field');
    const raw = Buffer.from(sealed.slice(FIELD_SEAL_PREFIX.length), 'base64url');
    if (raw.length < 28) throw new Error('sealed field too short');
    const decipher = createDecipheriv('aes-256-gcm', this.fieldSealKey, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(purpose, 'utf8'));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
  }

  randomSecret(bytes = 32): Buffer {
    return randomBytes(bytes);
  }

  /**
   * HMAC-SHA-256(deriveKey, 'successor' || len(familyId) || familyId || generation || previous).
   * Length-prefixing the family id and fixing the generation's width keep the encoding injective.
   */
  private successor(previous: Buffer, familyId: string, generation: number): Buffer {
    if (!Number.isSafeInteger(generation) || generation < 0) throw new RangeError(`generation must be a non-negative integer, got ${generation}`);
    const fam = Buffer.from(familyId, 'utf8');
    const head = Buffer.alloc(4 + fam.length + 8);
    head.writeUInt32BE(fam.length, 0);
    fam.copy(head, 4);
    head.writeBigUInt64BE(BigInt(generation), 4 + fam.length);
    return createHmac('sha256', this.deriveKey).update(SUCCESSOR_LABEL).update(head).update(previous).digest();
  }
}
