/**
 * The public shape of an event (toPublicEvent), written from stored JSON text without parsing it:
 * the NDJSON export of the SQL stores.
 */
import { publicEventData } from '@token-ledger/domain';
import type { JsonTextEvent } from '@token-ledger/event-store';
import { eventTimeMs, toPublicEvent } from '@token-ledger/envelope';
import { isSpace, JsonbCopier } from './json-text';

/** An event whose data and metadata are the store's JSON text (SqlEventStore.readAllJsonText). */
export type { JsonTextEvent };

/**
 * Writes JSON.stringify(toPublicEvent(event)) — the same bytes, UTF-8, one line each — for events
 * read as JSON text, without parsing them: the header fields are cut out of the metadata text, and
 * data and metadata are copied through JsonbCopier (json-text.ts). Whatever that cannot copy exactly
 * (an array-index key, metadata that is not an object, data that is neither object nor array, a type
 * whose payload publicEventData rewrites, e.g. ClientRegistered's secretHash) goes through
 * JSON.parse and toPublicEvent itself. One instance per export: it keeps scratch buffers.
 */
export class PublicEventJson {
  private readonly copier = new JsonbCopier();
  /**
   * Lines written since the last take(), then scratch space: while a line is written, the metadata
   * text, the header values and the data text sit further on in this buffer, so that every copy is
   * a move within one buffer (copyWithin costs a fraction of a copy between two Buffers).
   */
  private out: Buffer = Buffer.allocUnsafe(256 * 1024);
  private length = 0;
  private lineStart = 0;
  /** Where the compacted other metadata members are (comma-separated), in `out`. */
  private restStart = 0;
  private restEnd = 0;
  /** Header values, compacted, in `out`: [starts[slot], ends[slot]); start −1 when absent. */
  private readonly starts = new Int32Array(HEADER_SLOTS);
  private readonly ends = new Int32Array(HEADER_SLOTS);
  private readonly typeJson = new Map<string, Buffer>();
  /** occurredAt of the last event written (undefined: not yet parsed from its text). */
  private occurredAtValue: { value: unknown } | undefined;
  /** Events written through JSON.parse + toPublicEvent rather than copied (for tests and the curious). */
  parsed = 0;

  /** Appends the event's public JSON and a newline to the pending output. */
  write(event: JsonTextEvent): void {
    const line = (this.lineStart = this.length);
    this.occurredAtValue = undefined;
    const first = event.data.charCodeAt(0);
    if ((first !== 0x7b && first !== 0x5b) || !dataIsPublicAsIs(event.type)) {
      this.viaParse(event);
      return;
    }
    const type = this.quotedType(event.type);
    // Layout: the line from `line`; the metadata text at `meta` (far enough on that the finished line
    // never reaches it before its rest has been moved); header values after it; the data text last.
    const dataMax = event.data.length * 3 + 1;
    const metaMax = event.metadata.length * 3 + 1;
    const meta = line + dataMax + metaMax + event.eventId.length + type.length + 256;
    const header = meta + metaMax + 8;
    const data = header + metaMax + 8;
    this.reserve(data + dataMax + 8 - line);
    if (!this.splitMetadata(event.metadata, meta, header)) {
      this.viaParse(event);
      return;
    }
    const out = this.out;
    let p = put(out, line, EVENT_ID);
    p = putPlain(out, p, event.eventId); // a UUID (the store's uuid column): nothing to escape…
    if (p < 0) {
      this.viaParse(event); // …or else
      return;
    }
    p = put(out, p, TYPE);
    p = put(out, p, type);
    for (let slot = FAMILY_ID; slot <= OCCURRED_AT; slot++) {
      if (this.starts[slot] < 0) continue;
      p = put(out, p, HEADER_KEYS[slot]);
      p = move(out, this.starts[slot], this.ends[slot], p);
    }
    p = put(out, p, POSITION);
    p = putInteger(out, p, event.position);
    p = put(out, p, DATA);
    const c = this.copier;
    const dataLength = c.load(event.data, out, data);
    const end = c.copyValue(data, p);
    if (!c.ok || end !== data + dataLength) {
      this.viaParse(event);
      return;
    }
    p = put(out, c.end, METADATA);
    p = move(out, this.restStart, this.restEnd, p);
    if (this.starts[SCHEMA_VERSION] >= 0) {
      if (this.restEnd > this.restStart) out[p++] = 0x2c;
      p = put(out, p, SCHEMA_VERSION_KEY);
      p = move(out, this.starts[SCHEMA_VERSION], this.ends[SCHEMA_VERSION], p);
    }
    out[p++] = 0x7d;
    out[p++] = 0x7d;
    out[p++] = 0x0a;
    this.length = p;
  }

  /** Takes back the line just written (an export leaving an event out after all). */
  dropLast(): void {
    this.length = this.lineStart;
  }

  /** The pending output (the lines written since the last take), handed over; the next lines go to a new buffer. */
  take(): Buffer {
    const chunk = this.out.subarray(0, this.length);
    this.out = Buffer.allocUnsafe(Math.max(256 * 1024, Math.ceil(this.length * 1.25)));
    this.length = this.lineStart = 0;
    return chunk;
  }

  /** One event's public JSON as a string (no newline). */
  json(event: JsonTextEvent): string {
    const pending = this.length;
    this.write(event);
    const text = this.out.toString('utf8', pending, this.length - 1);
    this.length = this.lineStart = pending;
    return text;
  }

  /** When the last event written happened (see eventTimeMs): for --from/--to on an export. */
  lastEventTimeMs(event: JsonTextEvent): number {
    if (!this.occurredAtValue) {
      const s = this.starts[OCCURRED_AT];
      // The header values sit beyond the line in `out`, untouched until the next write.
      this.occurredAtValue = { value: s < 0 ? undefined : JSON.parse(this.out.toString('utf8', s, this.ends[OCCURRED_AT])) };
    }
    return eventTimeMs(this.occurredAtValue.value, event.recordedAt);
  }

  /**
   * Loads the metadata text at `at` and splits its top-level members, compacted: the header fields'
   * values to `header` on, the others (key and value, in order, comma-separated) in place from `at`.
   * False: parse this event instead.
   */
  private splitMetadata(metadata: string, at: number, header: number): boolean {
    const c = this.copier;
    const s = this.out;
    const n = at + c.load(metadata, s, at);
    const starts = this.starts;
    starts[1] = starts[2] = starts[3] = starts[4] = starts[5] = -1;
    this.restStart = this.restEnd = at;
    let w = at; // end of the other members so far
    let h = header; // end of the header values so far
    if (s[at] !== 0x7b) return false;
    let i = at + 1;
    while (isSpace(s[i])) i++;
    if (s[i] === 0x7d) return i + 1 === n;
    for (;;) {
      if (s[i] !== 0x22) return false;
      // The key: header names need no escaping, so its raw bytes are its name.
      let k = i + 1;
      while (s[k] !== 0x22 && k < n) k += s[k] === 0x5c ? 2 : 1;
      let v = k + 1;
      while (isSpace(s[v])) v++;
      if (s[v] !== 0x3a) return false;
      v++;
      while (isSpace(s[v])) v++;
      const slot = headerSlot(s, i + 1, k);
      let end: number;
      if (slot === NOT_HEADER) {
        if (w > at) s[w++] = 0x2c;
        end = c.copyValue(i, w); // "key":value, moved back over what was read
        w = c.end;
      } else {
        end = c.copyValue(v, h);
        this.starts[slot] = h;
        this.ends[slot] = h = c.end;
      }
      if (!c.ok) return false;
      if (s[end] === 0x7d) {
        this.restEnd = w;
        return end + 1 === n;
      }
      if (s[end] !== 0x2c) return false;
      i = end + 1;
      while (isSpace(s[i])) i++;
    }
  }

  private viaParse(event: JsonTextEvent): void {
    this.parsed++;
    this.length = this.lineStart;
    const metadata = JSON.parse(event.metadata) as Record<string, unknown>;
    const json = JSON.stringify(toPublicEvent({ eventId: event.eventId, type: event.type, position: event.position, data: JSON.parse(event.data), metadata }));
    this.occurredAtValue = { value: (metadata as Record<string, unknown> | null)?.occurredAt };
    this.reserve(json.length * 3 + 1);
    this.length += this.out.write(json, this.length, 'utf8');
    this.out[this.length++] = 0x0a;
  }

  /** Room for `bytes` more in `out` after the pending lines. */
  private reserve(bytes: number): void {
    if (this.out.length - this.length >= bytes) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.length + bytes));
    this.out.copy(bigger, 0, 0, this.length);
    this.out = bigger;
  }

  private quotedType(type: string): Buffer {
    let quoted = this.typeJson.get(type);
    if (quoted === undefined) {
      quoted = Buffer.from(JSON.stringify(type));
      if (this.typeJson.size < 1000) this.typeJson.set(type, quoted);
    }
    return quoted;
  }
}

const NOT_HEADER = 0;
const FAMILY_ID = 1;
const OCCURRED_AT = 4;
const SCHEMA_VERSION = 5;
const HEADER_SLOTS = 6;
/** The metadata fields toPublicEvent lifts to the top, by slot in its order; schemaVersion goes last into metadata. */
const HEADER_NAMES = ['', 'familyId', 'subject', 'clientId', 'occurredAt', 'schemaVersion'].map((name) => Buffer.from(name));
const HEADER_KEYS = HEADER_NAMES.map((name) => Buffer.from(`,"${name.toString()}":`));
const EVENT_ID = Buffer.from('{"eventId":"');
const TYPE = Buffer.from('","type":');
const POSITION = Buffer.from(',"position":');
const DATA = Buffer.from(',"data":');
const METADATA = Buffer.from(',"metadata":{');
const SCHEMA_VERSION_KEY = Buffer.from('"schemaVersion":');

/** Which header field the key bytes s[from, end) name (a slot above), or NOT_HEADER. */
function headerSlot(s: Uint8Array, from: number, end: number): number {
  const length = end - from;
  for (let slot = FAMILY_ID; slot < HEADER_SLOTS; slot++) {
    const name = HEADER_NAMES[slot];
    if (name.length !== length) continue;
    let k = 0;
    while (k < length && s[from + k] === name[k]) k++;
    if (k === length) return slot;
  }
  return NOT_HEADER;
}

function put(out: Uint8Array, p: number, bytes: Uint8Array): number {
  for (let k = 0; k < bytes.length; k++) out[p++] = bytes[k];
  return p;
}

/** Moves out[start, end) to out[p…] (a loop for a few bytes, copyWithin for more); returns the new end. */
function move(out: Uint8Array, start: number, end: number, p: number): number {
  if (end - start > 16) {
    out.copyWithin(p, start, end);
    return p + end - start;
  }
  for (let k = start; k < end; k++) out[p++] = out[k];
  return p;
}

/** A position: a non-negative safe integer, in decimal, as JSON.stringify writes it. */
function putInteger(out: Uint8Array, p: number, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) return putAscii(out, p, JSON.stringify(value));
  let digits = 1;
  for (let x = value; x >= 10; x = Math.floor(x / 10)) digits++;
  for (let k = digits - 1, x = value; k >= 0; k--, x = Math.floor(x / 10)) out[p + k] = 0x30 + (x % 10);
  return p + digits;
}

/** Text that JSON.stringify writes as it is (printable ASCII but '"' and '\\'), between quotes already written; −1 otherwise. */
function putPlain(out: Uint8Array, p: number, text: string): number {
  for (let k = 0; k < text.length; k++) {
    const c = text.charCodeAt(k);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return -1;
    out[p++] = c;
  }
  return p;
}

function putAscii(out: Uint8Array, p: number, text: string): number {
  for (let k = 0; k < text.length; k++) out[p++] = text.charCodeAt(k);
  return p;
}

const publicAsIs = new Map<string, boolean>();

/**
 * Whether publicEventData hands this type's object and array payloads out unchanged. Decided by
 * asking publicEventData itself with probes that notice any look inside — never by a list kept
 * here — so a redaction added there (like ClientRegistered's secretHash) is honoured by the copy
 * path without anyone remembering to tell it.
 */
export function dataIsPublicAsIs(type: string): boolean {
  let asIs = publicAsIs.get(type);
  if (asIs === undefined) {
    asIs = [{}, []].every((target) => {
      let looked = false;
      const handler: ProxyHandler<object> = {};
      for (const trap of PROXY_TRAPS) {
        (handler as Record<string, unknown>)[trap] = (...args: unknown[]) => {
          looked = true;
          return (Reflect as unknown as Record<string, (...a: unknown[]) => unknown>)[trap](...args);
        };
      }
      const probe = new Proxy(target, handler);
      return publicEventData(type, probe) === probe && !looked;
    });
    if (publicAsIs.size < 1000) publicAsIs.set(type, asIs);
  }
  return asIs;
}

const PROXY_TRAPS = [
  'get',
  'set',
  'has',
  'ownKeys',
  'getOwnPropertyDescriptor',
  'defineProperty',
  'deleteProperty',
  'getPrototypeOf',
  'setPrototypeOf',
  'isExtensible',
  'preventExtensions',
] as const;
