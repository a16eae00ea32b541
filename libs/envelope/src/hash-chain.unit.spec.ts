import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { canonicalJson, chainHashOf, computeEventHash, hashInput, sealEvents, storedHash } from './hash-chain';

const EVENT = {
  streamId: 'family-fam_x',
  revision: 1,
  eventId: '0B6E2C1A-4F5D-4C3B-9A8E-7D6C5B4A3F21',
  type: 'TokenRotated',
  data: { generation: 2, fromGeneration: 1, scope: ['b', 'a'], context: { userAgent: 'ua', ip: '203.0.113.7' } },
  metadata: { subject: 'alice', familyId: 'fam_x', prevHash: 'ab'.repeat(32), schemaVersion: 1, hash: 'ignored' },
};

describe('canonicalJson', () => {
  it('sorts keys at every depth, keeps array order, and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}');
  });

  it('follows JSON.stringify for values: undefined members dropped, undefined in arrays and non-finite numbers become null, toJSON applies', () => {
    expect(canonicalJson({ a: undefined, b: [undefined, NaN, Infinity, -0], c: new Date(0), f: () => 1 })).toBe(
      '{"b":[null,null,null,0],"c":"1970-01-01T00:00:00.000Z"}',
    );
    expect(canonicalJson('é\u2028"\\\n')).toBe(JSON.stringify('é\u2028"\\\n'));
    expect(canonicalJson(null)).toBe('null');
    expect(canonicalJson([])).toBe('[]');
    expect(canonicalJson({})).toBe('{}');
  });

  it('writes every string, key or value, as JSON.stringify does: escapes, lone surrogates, any code unit (property)', () => {
    const text = fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }), fc.string());
    fc.assert(
      fc.property(text, text, (k, v) => {
        expect(canonicalJson(v)).toBe(JSON.stringify(v));
        expect(canonicalJson({ [k]: v })).toBe(`{${JSON.stringify(k)}:${JSON.stringify(v)}}`);
      }),
      { numRuns: 500 },
    );
    // Each character that needs escaping, alone in plain text (one is enough to need JSON.stringify).
    for (const c of ['\ud83d\ude00', '\ud800', '\udfff', '\u0000', '\u0008', '\u001f', '"', '\\', '\u2028', '\u007f', 'é']) {
      expect(canonicalJson(`a${c}b`)).toBe(JSON.stringify(`a${c}b`));
    }
  });

  it('sorts keys by UTF-16 code units, numeric-looking keys included', () => {
    expect(canonicalJson({ b: 1, 10: 1, 2: 1, A: 1, é: 1, _: 1 })).toBe('{"10":1,"2":1,"A":1,"_":1,"b":1,"é":1}');
  });

  it.each([
    ['a few keys', ['z', 'a', 'aa', 'a\u0000', 'Z', '\u{1F600}', '\uFFFF', '\u00e9', '10', '9']],
    ['many keys', ['z', 'a', 'aa', 'a\u0000', 'Z', '\u{1F600}', '\uFFFF', '\u00e9', '10', '9', ...Array.from({ length: 40 }, (_, i) => `k${(i * 7919) % 97}`)]],
  ])('orders keys exactly as Array.prototype.sort does, surrogate pairs included (%s)', (_, keys) => {
    const obj = Object.fromEntries(keys.map((k, i) => [k, i]));
    const expected = `{${Object.keys(obj)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${obj[k]}`)
      .join(',')}}`;
    expect(canonicalJson(obj)).toBe(expected);
  });

  it('refuses what JSON cannot carry', () => {
    expect(() => canonicalJson(1n)).toThrow(TypeError);
    expect(() => canonicalJson(undefined)).toThrow(TypeError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(RangeError);
  });

  it('is the same before and after a JSON round trip and whatever the key order (property)', () => {
    const shuffle = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(shuffle);
      if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, shuffle(x)]));
      return v;
    };
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const c = canonicalJson(value);
        expect(canonicalJson(JSON.parse(JSON.stringify(value)))).toBe(c);
        expect(canonicalJson(shuffle(value))).toBe(c);
        expect(canonicalJson(JSON.parse(c))).toBe(c);
      }),
      { numRuns: 300 },
    );
  });
});

describe('event hash', () => {
  it('hashes the canonical JSON of streamId, revision, lower-cased eventId, type, data and metadata without hash', () => {
    const expected =
      '{"data":{"context":{"ip":"203.0.113.7","userAgent":"ua"},"fromGeneration":1,"generation":2,"scope":["b","a"]},' +
      '"eventId":"0b6e2c1a-4f5d-4c3b-9a8e-7d6c5b4a3f21",' +
      `"metadata":{"familyId":"fam_x","prevHash":"${'ab'.repeat(32)}","schemaVersion":1,"subject":"alice"},` +
      '"revision":1,"streamId":"family-fam_x","type":"TokenRotated"}';
    expect(hashInput(EVENT)).toBe(expected);
    expect(computeEventHash(EVENT)).toBe(createHash('sha256').update(expected, 'utf8').digest('hex'));
    // Pinned: changing the definition breaks every stored chain, so it must be deliberate.
    expect(computeEventHash(EVENT)).toBe('45cc0a8dd9f74f2754bee30955ab097132edb530d8b04c3b2beca5f72a9e7c99');
  });

  it('does not depend on key order or the stored hash, but on every other field', () => {
    const base = computeEventHash(EVENT);
    const reordered = { ...EVENT, metadata: Object.fromEntries(Object.entries(EVENT.metadata).reverse()), data: JSON.parse(JSON.stringify(EVENT.data)) };
    expect(computeEventHash(reordered)).toBe(base);
    expect(computeEventHash({ ...EVENT, metadata: { ...EVENT.metadata, hash: 'other' } })).toBe(base);
    expect(computeEventHash({ ...EVENT, eventId: EVENT.eventId.toLowerCase() })).toBe(base);
    for (const changed of [
      { ...EVENT, streamId: 'family-fam_y' },
      { ...EVENT, revision: 2 },
      { ...EVENT, eventId: '1b6e2c1a-4f5d-4c3b-9a8e-7d6c5b4a3f21' },
      { ...EVENT, type: 'TokenRotationReplayed' },
      { ...EVENT, data: { ...EVENT.data, generation: 3 } },
      { ...EVENT, metadata: { ...EVENT.metadata, prevHash: null } },
      { ...EVENT, metadata: { ...EVENT.metadata, context: { ip: '198.51.100.1' } } },
    ]) {
      expect(computeEventHash(changed)).not.toBe(base);
    }
  });

  it('treats a missing payload as null, as the stores do', () => {
    expect(computeEventHash({ ...EVENT, data: undefined })).toBe(computeEventHash({ ...EVENT, data: null }));
  });
});

describe('sealEvents', () => {
  it('chains events from the previous hash and leaves the inputs alone', () => {
    const inputs = [
      { eventId: 'a0000000-0000-4000-8000-000000000001', type: 'X', data: { n: 1 }, metadata: { k: 'v' } },
      { eventId: 'a0000000-0000-4000-8000-000000000002', type: 'Y', data: { n: 2 }, metadata: { k: 'w', hash: 'stale', prevHash: 'stale' } },
    ];
    const copy = structuredClone(inputs);
    const { events, lastHash } = sealEvents('s-1', 5, 'f'.repeat(64), inputs);
    expect(inputs).toEqual(copy);
    expect(events[0].metadata.prevHash).toBe('f'.repeat(64));
    expect(events[1].metadata.prevHash).toBe(events[0].metadata.hash);
    expect(lastHash).toBe(events[1].metadata.hash);
    events.forEach((e, i) => {
      const recorded = { ...e, streamId: 's-1', revision: 5 + i, position: 10 + i, recordedAt: new Date() };
      expect(storedHash(recorded)).toBe(computeEventHash(recorded));
      expect(chainHashOf(recorded)).toBe(e.metadata.hash);
    });
    expect(sealEvents('s-1', 0, null, []).lastHash).toBeNull();
  });

  it('links an unhashed (pre-chain) event by its computed hash', () => {
    const legacy = { ...EVENT, metadata: { subject: 'alice' }, position: 1, recordedAt: new Date() };
    expect(chainHashOf(legacy)).toBe(computeEventHash(legacy));
  });
});
