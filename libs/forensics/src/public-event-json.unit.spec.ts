import { toPublicEvent } from '@token-ledger/envelope';
import { dataIsPublicAsIs, PublicEventJson, type JsonTextEvent } from './public-event-json';

/** jsonb's text form (keys by length, then bytes; ", " and ": "): what readAllJsonText hands over. */
function jsonb(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(jsonb).join(', ')}]`;
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).sort((a, b) => Buffer.byteLength(a) - Buffer.byteLength(b) || Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return `{${keys.map((k) => `${JSON.stringify(k)}: ${jsonb((value as Record<string, unknown>)[k])}`).join(', ')}}`;
  }
  return JSON.stringify(value);
}

function event(data: unknown, metadata: unknown, extra: Partial<JsonTextEvent> = {}): JsonTextEvent {
  return { position: 42, eventId: '0b6f4f5e-8d2a-4b53-9d7e-6c1f0a2b3c4d', type: 'TokenRotated', data: jsonb(data), metadata: jsonb(metadata), ...extra };
}

/** The parsing path's line for the same event. */
const expected = (e: JsonTextEvent) => JSON.stringify(toPublicEvent({ ...e, data: JSON.parse(e.data), metadata: JSON.parse(e.metadata) }));

const META = { familyId: 'fam_1', subject: 'alice', clientId: 'web', occurredAt: '2025-01-01T12:00:00.000Z', schemaVersion: 1, actor: 'admin', correlationId: 'c-1', context: { ip: '203.0.113.7', userAgent: 'Mozilla/5.0 (KHTML, like Gecko)' }, prevHash: null, hash: 'ab'.repeat(32) };

describe('PublicEventJson (the NDJSON copy path), without a database', () => {
  it('writes the parsing path’s bytes, copying (not parsing) ordinary events', () => {
    const w = new PublicEventJson();
    const events = [
      event({ fromGeneration: 1, generation: 2, scope: ['api:read'], context: { ip: '::1' } }, META),
      event({ a: 1 }, { schemaVersion: 1 }),
      event({ a: 1 }, {}),
      event([1, 2], { ...META, familyId: 7, subject: null, clientId: { id: 'web' } }),
      event({ text: 'Zoë 😀 "quoted" \\ back\nslash' }, META, { type: 'Custom "type"\u0001', position: 9007199254740991 }),
    ];
    for (const e of events) expect(w.json(e)).toBe(expected(e));
    expect(w.parsed).toBe(0);
  });

  it('hands to the parser what it cannot copy exactly, with the same result', () => {
    const w = new PublicEventJson();
    const events = [
      event({ byHour: { '0': 1, '13': 2 } }, META), // array-index keys: JS lists them first
      event({ a: 1 }, { ...META, '7': 'x' }),
      event('a string', META), // not an object or array
      event(null, META),
      event({ a: 1 }, META, { eventId: 'not-a-"uuid"' }),
      event({ type: 'confidential', secretHash: 'scrypt$secret', allowedScopes: [] }, { ...META, familyId: '', subject: '' }, { type: 'ClientRegistered' }),
    ];
    for (const e of events) expect(w.json(e)).toBe(expected(e));
    expect(w.parsed).toBe(events.length);
    expect(w.json(events[events.length - 1])).not.toContain('secretHash');
  });

  it('asks publicEventData which payloads go out as they are', () => {
    expect(dataIsPublicAsIs('ClientRegistered')).toBe(false);
    for (const type of ['TokenFamilyIssued', 'TokenRotated', 'FamilyLinkedToSubject', 'AnomalyDetected', 'Anything.Else']) expect(dataIsPublicAsIs(type)).toBe(true);
  });

  it('write/take/dropLast: lines accumulate until taken; the last can be taken back', () => {
    const w = new PublicEventJson();
    const a = event({ n: 1 }, META);
    const b = event({ n: 2 }, META, { position: 43 });
    w.write(a);
    w.write(b);
    w.dropLast();
    w.write(b);
    expect(w.take().toString()).toBe(`${expected(a)}\n${expected(b)}\n`);
    expect(w.take().length).toBe(0);
  });

  it('lastEventTimeMs: occurredAt, else the commit time (as occurredAtMs)', () => {
    const w = new PublicEventJson();
    const recordedAt = new Date(Date.UTC(2030, 0, 1));
    const withTime = event({ a: 1 }, META, { recordedAt });
    w.write(withTime);
    expect(w.lastEventTimeMs(withTime)).toBe(Date.UTC(2025, 0, 1, 12));
    const without = event({ a: 1 }, { schemaVersion: 1 }, { recordedAt });
    w.write(without);
    expect(w.lastEventTimeMs(without)).toBe(recordedAt.getTime());
    const parsed = event({ '0': 1 }, { ...META, occurredAt: 'not a date' }, { recordedAt });
    w.write(parsed);
    expect(w.lastEventTimeMs(parsed)).toBe(recordedAt.getTime());
  });

  it('keeps large events and many lines apart (buffers grow; nothing is overwritten)', () => {
    const w = new PublicEventJson();
    const big = event({ blob: 'x'.repeat(300_000), list: Array.from({ length: 2000 }, (_, i) => ({ i, s: `v${i}` })) }, META);
    let all = '';
    for (let i = 0; i < 50; i++) {
      const e = i % 10 === 0 ? big : event({ i, s: 'é'.repeat(i) }, META, { position: i });
      w.write(e);
      all += `${expected(e)}\n`;
    }
    expect(w.take().toString()).toBe(all);
  });
});
