/**
 * Tamper evidence: every event is chained to the previous event of its stream by a SHA-256 hash
 * computed in JavaScript, so it works the same on every store adapter (PGlite, PostgreSQL,
 * EventStoreDB).
 *
 *   metadata.prevHash = hash of the previous event in the stream (null for revision 0)
 *   metadata.hash     = hex(SHA-256(UTF-8(canonicalJson({
 *                         streamId, revision, eventId (lower-case), type, data,
 *                         metadata without `hash` (so including prevHash) }))))
 *
 * Canonical JSON: JSON.stringify semantics for values (toJSON, undefined members dropped,
 * non-finite numbers → null), object keys sorted by UTF-16 code units at every depth, no
 * whitespace. Stores do not keep bytes (jsonb reorders keys and drops whitespace), so the hash is
 * always taken over this canonical form of the parsed event, never over stored bytes.
 *
 * Pure: no I/O. The global position is not hashed (it is assigned at commit); verify checks
 * position order separately.
 *
 * The plain chain is publicly verifiable but not secret: someone who can write the database can
 * rewrite a whole stream and recompute every hash. So when LEDGER_KEK is set, each event also carries
 *
 *   metadata.headMac  = hex(HMAC-SHA256(K, canonicalJson([streamId, revision, hash])))
 *   K                 = HKDF-SHA256(LEDGER_KEK, salt = none, info = 'token-ledger/chain-mac/v1', 32 bytes)
 *
 * a MAC over the stream's head at that event, keyed with a secret the database does not hold.
 * Like `hash`, `headMac` is not part of the hash input, so chains written before it still verify.
 */
import { createHmac, hash, hkdfSync, timingSafeEqual } from 'node:crypto';
import { canonicalJson } from '@token-ledger/domain';
import type { NewEvent, RecordedEvent } from '@token-ledger/event-store';

export const HASH_ALGORITHM = 'sha256';

/** Canonical JSON (libs/domain/src/canonical-json.ts): also what the signing key set's MAC covers. */
export { canonicalJson };

/** The fields a hash covers. */
export interface HashableEvent {
  streamId: string;
  revision: number;
  eventId: string;
  type: string;
  data: unknown;
  metadata: Record<string, unknown> | null | undefined;
}

/** The exact string that is hashed for an event (exposed for documentation and tests). */
export function hashInput(event: HashableEvent): string {
  const { hash: _ignored, headMac: _mac, ...metadata } = (event.metadata ?? {}) as Record<string, unknown>;
  return canonicalJson({
    streamId: event.streamId,
    revision: event.revision,
    // Stores normalise UUIDs to lower case (PostgreSQL's uuid type), so the hash does too.
    eventId: String(event.eventId).toLowerCase(),
    type: event.type,
    // Adapters store a missing payload as null.
    data: event.data === undefined ? null : event.data,
    metadata,
  });
}

/** SHA-256 (hex) of an event's canonical form; `metadata.hash` and `metadata.headMac` are never part of it. */
export function computeEventHash(event: HashableEvent): string {
  return hash(HASH_ALGORITHM, hashInput(event), 'hex');
}

/** The hash stored with an event, or undefined for events written before the chain existed. */
export function storedHash(event: Pick<RecordedEvent, 'metadata'>): string | undefined {
  const h = (event.metadata as Record<string, unknown> | null | undefined)?.hash;
  return typeof h === 'string' ? h : undefined;
}

/** The stored `prevHash` (null at revision 0; undefined when absent). */
export function storedPrevHash(event: Pick<RecordedEvent, 'metadata'>): string | null | undefined {
  const m = event.metadata as Record<string, unknown> | null | undefined;
  if (!m || !('prevHash' in m)) return undefined;
  const p = m.prevHash;
  return p === null ? null : typeof p === 'string' ? p : undefined;
}

/**
 * The hash the next event of the stream links to: the stored hash, or — for an event written
 * before the chain existed — its computed hash, so new events can still chain onto old streams.
 */
export function chainHashOf(event: RecordedEvent): string {
  return storedHash(event) ?? computeEventHash(event);
}

export const CHAIN_MAC_INFO = 'token-ledger/chain-mac/v1';

/** The chain MAC key K, derived from LEDGER_KEK (see the file comment); never the KEK itself. */
export function deriveChainMacKey(kek: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', kek, Buffer.alloc(0), CHAIN_MAC_INFO, 32));
}

/** The MAC over a stream's head at `revision` whose event hash is `hash`. */
export function computeHeadMac(key: Uint8Array, streamId: string, revision: number, hash: string): string {
  return createHmac('sha256', key).update(canonicalJson([streamId, revision, hash]), 'utf8').digest('hex');
}

/** The stored head MAC, or undefined for events written without LEDGER_KEK (or before the MAC existed). */
export function storedHeadMac(event: Pick<RecordedEvent, 'metadata'>): string | undefined {
  const m = (event.metadata as Record<string, unknown> | null | undefined)?.headMac;
  return typeof m === 'string' ? m : undefined;
}

/** Whether `stored` is the right head MAC for the event (constant time). */
export function headMacMatches(key: Uint8Array, event: Pick<RecordedEvent, 'streamId' | 'revision' | 'metadata'>, stored: string): boolean {
  const hash = storedHash(event);
  if (hash === undefined) return false;
  const expected = Buffer.from(computeHeadMac(key, event.streamId, event.revision, hash), 'utf8');
  const actual = Buffer.from(stored, 'utf8');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

export interface SealOptions {
  /** The chain MAC key (deriveChainMacKey(LEDGER_KEK)); without it events carry no headMac. */
  macKey?: Uint8Array;
}

/**
 * Adds prevHash and hash (and headMac, given a MAC key) to events about to be appended at
 * `firstRevision`, `firstRevision + 1`, … of `streamId`, chained from `prevHash` (the stream's last
 * event hash; null for a new stream). Returns new objects; the inputs are not modified.
 */
export function sealEvents(
  streamId: string,
  firstRevision: number,
  prevHash: string | null,
  events: readonly NewEvent[],
  options: SealOptions = {},
): { events: NewEvent[]; lastHash: string | null } {
  let previous = prevHash;
  const sealed = events.map((event, i) => {
    const { hash: _h, prevHash: _p, headMac: _m, ...rest } = event.metadata ?? {};
    const metadata: Record<string, unknown> = { ...rest, prevHash: previous };
    const revision = firstRevision + i;
    const hash = computeEventHash({ streamId, revision, eventId: event.eventId, type: event.type, data: event.data, metadata });
    previous = hash;
    const mac = options.macKey ? { headMac: computeHeadMac(options.macKey, streamId, revision, hash) } : {};
    return { ...event, metadata: { ...metadata, hash, ...mac } };
  });
  return { events: sealed, lastHash: previous };
}
