import { isArrayIndex, JsonbCopier } from './json-text';

/**
 * jsonb's text form of a JS value, as PostgreSQL prints it: object keys ordered by length, then
 * bytes; ", " and ": " between items; numbers as given (`numbers` lets a test write the numeric
 * text PostgreSQL would print). The real output is checked against PGlite and PostgreSQL in
 * public-event-json.int.spec.ts; this is for many cases quickly.
 */
function jsonb(value: unknown, numbers: (n: number) => string = String): string {
  if (Array.isArray(value)) return `[${value.map((v) => jsonb(v, numbers)).join(', ')}]`;
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).sort((a, b) => Buffer.byteLength(a) - Buffer.byteLength(b) || Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return `{${keys.map((k) => `${JSON.stringify(k)}: ${jsonb((value as Record<string, unknown>)[k], numbers)}`).join(', ')}}`;
  }
  if (typeof value === 'number') return numbers(value);
  return JSON.stringify(value);
}

const roundTrip = (text: string) => JSON.stringify(JSON.parse(text));

describe('JsonbCopier: jsonb text → exactly what JSON.stringify(JSON.parse(text)) gives', () => {
  const c = new JsonbCopier();

  it.each([
    ['flat object', '{"ip": "203.0.113.7", "actor": "admin", "schemaVersion": 1}'],
    ['nested', '{"scope": ["api:read", "api:write"], "policy": {"accessTokenTtl": 300, "reuseGraceSeconds": 0}, "context": {"ip": "::1"}}'],
    ['empty containers', '{"a": {}, "b": [], "c": [{}, []], "d": [[[]]]}'],
    ['literals', '{"t": true, "f": false, "n": null, "arr": [true, false, null]}'],
    ['separators inside strings', '{"ua": "Mozilla/5.0 (KHTML, like Gecko)", "s": ", ", "k": ": ", "q": "\\": \\", "}'],
    ['escapes', '{"e": "quote \\" backslash \\\\ nl \\n tab \\t cr \\r bs \\b ff \\f ctl \\u0001 \\u001f"}'],
    ['strings ending in backslashes', '{"a": "x\\\\", "b": "\\\\\\\\", "c": ["\\\\", "\\""]}'],
    ['non-ASCII', '{"name": "Zoë — 東京 😀", "rtl": "مرحبا", "sep": "\u2028\u2029"}'],
    ['top-level scalars and arrays', '"just a string"'],
    ['array', '[1, "two", {"three": 3}]'],
    ['numbers that print the same', '{"a": 0, "b": -7, "c": 123456789012345, "d": -12345678901234, "e": 0.1, "f": 1.5, "g": -2.25}'],
    ['numbers that do not: trailing zeros, exponent forms, too many digits', '{"a": 1.50, "b": 1000000000000000000000, "c": 0.0000001, "d": 12345678901234567890, "e": 1.0, "f": -0.000000012}'],
    ['a number too large for a double', `{"huge": 1${'0'.repeat(400)}}`],
    ['keys that look numeric but are not array indexes', '{"01": 1, "-1": 2, "1.5": 3, "4294967295": 4, "1e3": 5}'],
  ])('%s', (_name, text) => {
    expect(c.compact(text)).toBe(roundTrip(text));
  });

  it('reports an object with an array-index key (JS would list it first), at any depth', () => {
    expect(c.compact('{"a": 1, "7": 2}')).toBeUndefined();
    expect(c.compact('{"x": {"0": true}}')).toBeUndefined();
    expect(c.compact('[{"4294967294": 1}]')).toBeUndefined();
    expect(c.compact('{"a": "7"}')).toBe('{"a":"7"}'); // a value, not a key
    expect(c.compact('["0", "1"]')).toBe('["0","1"]');
  });

  it('accepts JSON whitespace anywhere, not only jsonb spacing', () => {
    const text = ' {\n  "a" : [ 1 ,\t2 ] ,\r\n "b":{"c" :"d e"} } ';
    expect(c.compact(text.trim())).toBe(roundTrip(text));
  });

  it('gives up (never loops, never guesses) on text that is not JSON', () => {
    for (const bad of ['', '{', '{"a": ', '{"a": 1', '[1, 2', '"open', '{"a": x}', 'undefined', '{"a": 1}}', '{"a": tru}', '"raw \n newline"']) expect(c.compact(bad)).toBeUndefined();
  });

  it('agrees with JSON.parse + JSON.stringify on random documents in jsonb form', () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
    const strings = ['', 'a', 'ip', 'hash', 'fam_0123', ', ', ': ', '"', '\\', '\n', '\u0007', 'é', '😀', 'KHTML, like Gecko', '{"x": 1}', '12', '0'];
    const numbers = [0, 1, -1, 42, 300, 1.5, 0.1, -3.75, 1e21, 1e-7, 123456789012345680000, 2 ** 53 + 2, 5e-324, 1.7976931348623157e308];
    const gen = (depth: number): unknown => {
      const r = rnd();
      if (depth > 3 || r < 0.3) return pick<unknown>([...strings, ...numbers, true, false, null]);
      if (r < 0.6) return Array.from({ length: Math.floor(rnd() * 4) }, () => gen(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(rnd() * 6); i > 0; i--) o[pick(strings.filter((s) => !/^(0|[1-9]\d*)$/.test(s)))] = gen(depth + 1);
      return o;
    };
    // PostgreSQL's numeric prints plain decimals (no exponent) where JS may print an exponent.
    const pgNumber = (n: number): string => {
      const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(String(n));
      if (!m) return String(n);
      const [, sign, digit, fraction = '', e] = m;
      const exp = Number(e);
      return exp >= 0 ? `${sign}${digit}${fraction}${'0'.repeat(exp - fraction.length)}` : `${sign}0.${'0'.repeat(-exp - 1)}${digit}${fraction}`;
    };
    expect([1e21, 1.5e-7, -5e-324].map(pgNumber)).toEqual(['1000000000000000000000', '0.00000015', `-0.${'0'.repeat(323)}5`]);
    for (let i = 0; i < 2000; i++) {
      const text = jsonb(gen(0), pgNumber);
      expect({ text, out: c.compact(text) }).toEqual({ text, out: roundTrip(text) });
    }
  });
});

describe('json-text helpers', () => {
  const c = new JsonbCopier();

  it('moves a value back over its own text, or to a free spot further on, and reports where each ends', () => {
    const b = Buffer.alloc(64, 0x2e);
    expect(c.load('{"a": [1, 2], "long": "more than sixteen bytes"} rest', b, 4)).toBe(53);
    expect(c.copyValue(4, 1)).toBe(53); // in place, starting before the text; returns where "rest" starts
    expect(b.toString('latin1', 0, c.end)).toBe('.{"a":[1,2],"long":"more than sixteen bytes"}');
    const far = Buffer.alloc(64, 0x2e);
    c.load('["x", 1.50]', far, 0);
    expect(c.copyValue(0, 20)).toBe(11); // after the text: nothing overlaps
    expect(far.toString('latin1', 20, c.end)).toBe('["x",1.5]');
  });

  it('isArrayIndex: canonical integers from 0 to 2^32 − 2', () => {
    const is = (k: string) => isArrayIndex(Buffer.from(k), 0, Buffer.byteLength(k));
    expect(['0', '7', '10', '4294967294'].map(is)).toEqual([true, true, true, true]);
    expect(['', '01', '-1', '1.0', '4294967295', '1e3', 'a1', '99999999999'].map(is)).toEqual([false, false, false, false, false, false, false, false]);
  });
});
