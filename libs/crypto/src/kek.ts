import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Envelope for a JSON value kept in the key/value store. Without a key-encryption key (KEK) the
 * value is stored as-is under `plain`; with one it is AES-256-GCM sealed.
 */
export type SealedJson<T = unknown> = { plain: T } | SealedEnvelope;

export interface SealedEnvelope {
  sealed: 'A256GCM';
  /** 12-byte IV, base64url. */
  iv: string;
  /** Ciphertext of the UTF-8 JSON, base64url. */
  ct: string;
  /** 16-byte GCM tag, base64url. */
  tag: string;
}

/**
 * What a sealed value is for. `purpose` names it in error messages and, with `binding`, forms the
 * AAD, so a ciphertext cannot be moved to another purpose or entry (e.g. one key's private JWK
 * swapped for another's) without failing to open.
 */
export interface SealContext {
  /** Human-readable, e.g. 'signing keys'. */
  purpose: string;
  /** Optional entry identity bound into the AAD, e.g. a kid. */
  binding?: string;
}

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const DEFAULT_CONTEXT: SealContext = { purpose: 'sealed value' };

/**
 * Parses LEDGER_KEK: exactly 32 bytes as hex (64 digits), base64 or base64url (padding optional).
 * Error messages never echo the value: it is a secret.
 */
export function parseKek(value: string, name = 'LEDGER_KEK'): Buffer {
  const text = value.trim(); // env files often carry a trailing newline
  if (text === '') throw new Error(`${name} is empty; expected 32 bytes as base64, base64url or hex`);
  let key: Buffer | undefined;
  // Hex first: 64 hex digits are also valid base64 (decoding to 48 bytes), so order matters.
  if (/^[0-9a-fA-F]{64}$/.test(text)) key = Buffer.from(text, 'hex');
  else if (/^[A-Za-z0-9+/]+={0,2}$/.test(text) || /^[A-Za-z0-9_-]+$/.test(text)) {
    // Node decodes both alphabets with 'base64'; the regexes above reject mixed or stray characters.
    key = Buffer.from(text, 'base64');
  }
  if (!key || key.length !== KEY_BYTES) {
    throw new Error(
      `${name} must be exactly ${KEY_BYTES} bytes encoded as base64, base64url or hex ` +
        `(e.g. \`openssl rand -base64 32\`); got ${text.length} characters` +
        (key ? ` decoding to ${key.length} bytes` : ' that are not base64/base64url/hex'),
    );
  }
  return key;
}

function aad(ctx: SealContext): Buffer {
  return Buffer.from(`token-ledger/v1:${ctx.purpose}${ctx.binding === undefined ? '' : `:${ctx.binding}`}`, 'utf8');
}

export function isSealed(value: SealedJson<unknown>): value is SealedEnvelope {
  return typeof value === 'object' && value !== null && 'sealed' in value;
}

export function sealJson<T>(value: T, kek?: Buffer, ctx: SealContext = DEFAULT_CONTEXT): SealedJson<T> {
  if (!kek) return { plain: value };
  assertKek(kek);
  const iv = randomBytes(IV_BYTES); // random 96-bit IVs: fine for the handful of values sealed per KEK
  const cipher = createCipheriv('aes-256-gcm', kek, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(ctx));
  const ct = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return { sealed: 'A256GCM', iv: iv.toString('base64url'), ct: ct.toString('base64url'), tag: cipher.getAuthTag().toString('base64url') };
}

export function openJson<T>(stored: SealedJson<T>, kek?: Buffer, ctx: SealContext = DEFAULT_CONTEXT): T {
  if (typeof stored !== 'object' || stored === null) throw new Error(`stored ${ctx.purpose} are malformed`);
  // A plain value still opens when a KEK is configured: that is how an existing deployment migrates.
  if ('plain' in stored) return stored.plain;
  if (!isSealed(stored) || stored.sealed !== 'A256GCM') throw new Error(`stored ${ctx.purpose} use an unknown envelope`);
  if (!kek) throw new Error(`LEDGER_KEK is required to open the ${ctx.purpose}: they were sealed with a key-encryption key`);
  assertKek(kek);
  const iv = Buffer.from(stored.iv, 'base64url');
  const tag = Buffer.from(stored.tag, 'base64url');
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new Error(`stored ${ctx.purpose} are malformed`);
  let json: string;
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(ctx));
    decipher.setAuthTag(tag);
    json = Buffer.concat([decipher.update(Buffer.from(stored.ct, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    // GCM cannot tell a wrong key from altered data; name the likely cause first.
    throw new Error(`cannot open the ${ctx.purpose}: LEDGER_KEK is not the key they were sealed with, or the stored value was altered`);
  }
  return JSON.parse(json) as T;
}

function assertKek(kek: Buffer): void {
  if (kek.length !== KEY_BYTES) throw new Error(`a key-encryption key must be ${KEY_BYTES} bytes, got ${kek.length}`);
}
