/**
 * PostgreSQL's jsonb text → the exact bytes of JSON.stringify(JSON.parse(text)) in UTF-8, without
 * building the object: the NDJSON export copies stored JSON through (public-event-json.ts, PublicEventJson).
 *
 * Why a copy can be exact: jsonb output and JSON.stringify escape strings the same way (\" \\ \b \f
 * \n \r \t, other control characters as lowercase \u00xx, everything else as it is — PostgreSQL text
 * holds no lone surrogates), and jsonb output has no whitespace outside strings but one space after
 * each ':' and ','. Three things still differ, and are handled:
 * - the spaces, which are dropped;
 * - numbers: jsonb prints the stored numeric (no exponent, trailing zeros kept), JS the shortest
 *   round-trip form; a number that is not a short integer is rewritten as String(Number(token))
 *   ('null' when it overflows), which is what parse + stringify does;
 * - key order: jsonb orders keys by length, then bytes, and JSON.parse keeps that order, except that
 *   JS puts array-index keys ("0", "17", …) first. An object with such a key cannot be copied in
 *   order: the copy reports it (`ok` false) and the caller takes the parse + stringify path.
 *
 * It works on UTF-8 bytes (every structural character is ASCII, and no byte of a multi-byte UTF-8
 * sequence is): the text is encoded once, natively, into the output buffer itself, and compacted in
 * place — the copy trails what it reads, byte by byte for structure and short strings, copyWithin
 * for long ones — so the result is bytes ready to write. This runs once per event of an export and
 * was the cheapest of the ways measured (JSON.parse + JSON.stringify, string slicing and
 * concatenation, regular expressions, copying between two buffers).
 */
export class JsonbCopier {
  /** The buffer the text was loaded into; its UTF-8 ends at `limit`, where a 0 byte stops any scan. */
  private b: Buffer = Buffer.alloc(1);
  /** End (exclusive) of the loaded text in its buffer. */
  limit = 0;
  /** False once something was seen that only parse + stringify gets right (see above), or bad input. */
  ok = true;
  /** End (exclusive) of the last copyValue's output. */
  end = 0;
  /** Whether the text has a backslash (an escape) anywhere; without one, every '"' ends a string. */
  private escapes = false;

  /**
   * Loads `text` as UTF-8 into `b` at `at` and makes it the source; returns its length in bytes. `b`
   * needs room for 3 bytes per UTF-16 unit of the text, plus one.
   */
  load(text: string, b: Buffer, at: number): number {
    const length = utf8Write(b, text, at);
    this.b = b;
    this.limit = at + length;
    b[this.limit] = 0;
    this.escapes = text.includes('\\');
    this.ok = true;
    return length;
  }

  /**
   * Copies the JSON value that starts at b[i] (the loaded text) to b[w…], compacted; returns the
   * index after the value, with the end of the copy in `end`. The copy may overlap the text as long
   * as it starts at or before it (w ≤ i): it only ever shrinks, so it never overtakes what it reads.
   */
  copyValue(i: number, w: number): number {
    const s = this.b;
    let p = w;
    let depth = 0;
    for (;;) {
      const b = s[i];
      if (b === QUOTE) {
        s[p++] = QUOTE;
        const copied = p; // the string's copy starts here (its text may be overwritten by then)
        i++;
        // Short strings byte by byte; past SHORT_STRING bytes, a string without escapes is found
        // and moved natively (jsonb text never holds a raw control character: they are escaped).
        const shortEnd = this.escapes ? this.limit : i + SHORT_STRING;
        for (;;) {
          const c = s[i++];
          s[p++] = c;
          if (c <= BACKSLASH) {
            if (c === QUOTE) break;
            if (c === BACKSLASH) s[p++] = s[i++];
            else if (c < 0x20) return this.fail(p);
          }
          if (i === shortEnd) {
            const close = s.indexOf(QUOTE, i);
            if (close < 0 || close >= this.limit) return this.fail(p);
            s.copyWithin(p, i, close + 1);
            p += close + 1 - i;
            i = close + 1;
            break;
          }
        }
        let j = i;
        while (isSpace(s[j])) j++;
        if (s[j] === COLON) {
          // A key: JS orders array-index keys first, so such an object cannot be copied in order.
          const first = s[copied];
          if (first >= DIGIT_0 && first <= DIGIT_9 && isArrayIndex(s, copied, p - 1)) this.ok = false;
          s[p++] = COLON;
          i = j + 1;
          while (isSpace(s[i])) i++;
          continue;
        }
      } else if (b === COMMA) {
        s[p++] = COMMA;
        i++;
        while (isSpace(s[i])) i++;
        continue;
      } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
        s[p++] = b;
        depth++;
        i++;
        while (isSpace(s[i])) i++;
        continue;
      } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        s[p++] = b;
        depth--;
        i++;
      } else if (b === LOWER_T || b === LOWER_N || b === LOWER_F) {
        const word = b === LOWER_T ? TRUE : b === LOWER_N ? NULL : FALSE;
        for (let k = 0; k < word.length; k++) {
          if (s[i + k] !== word[k]) return this.fail(p);
          s[p++] = word[k];
        }
        i += word.length;
      } else if (b === MINUS || (b >= DIGIT_0 && b <= DIGIT_9)) {
        const start = i;
        const p0 = p;
        let plain = true; // an integer
        s[p++] = b;
        i++;
        for (;;) {
          const c = s[i];
          if (c >= DIGIT_0 && c <= DIGIT_9) s[p++] = c;
          else if (c === DOT || c === LOWER_E || c === UPPER_E || c === PLUS || c === MINUS) {
            plain = false;
            s[p++] = c;
          } else break;
          i++;
        }
        // At most 15 characters, an integer is exact in a double and prints the same.
        if (!plain || i - start > 15) {
          const token = s.toString('latin1', p0, p); // the copy: the text may be overwritten by now
          const js = jsNumber(token);
          // Never longer than the token (jsonb prints plain decimals): the copy stays behind the text.
          if (js.length > token.length) return this.fail(p);
          if (js !== token) p = p0 + s.write(js, p0, 'latin1');
        }
      } else if (isSpace(b)) {
        i++;
        continue;
      } else {
        return this.fail(p); // not JSON (or the end of the text): let the parser decide
      }
      if (depth === 0) {
        this.end = p;
        while (isSpace(s[i])) i++;
        return i;
      }
    }
  }

  /** The compact text of a whole jsonb text, or undefined when it must be parsed instead (tests, tools). */
  compact(text: string): string | undefined {
    const b = Buffer.allocUnsafe(text.length * 3 + 1);
    const length = this.load(text, b, 0);
    let i = 0;
    while (isSpace(b[i])) i++;
    const end = this.copyValue(i, 0);
    return this.ok && end === length ? b.toString('utf8', 0, this.end) : undefined;
  }

  private fail(p: number): number {
    this.ok = false;
    this.end = p;
    return this.limit + 1;
  }
}

/** Longer strings are copied natively (one call costs about as much as this many bytes in a loop). */
const SHORT_STRING = 16;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const DOT = 0x2e;
const PLUS = 0x2b;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const LOWER_T = 0x74;
const LOWER_N = 0x6e;
const LOWER_F = 0x66;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const TRUE = Buffer.from('true');
const NULL = Buffer.from('null');
const FALSE = Buffer.from('false');

/**
 * buf.write(text, at, 'utf8') without the argument checks of the public wrapper (a measurable part of
 * the export's time): Buffer's own utf8Write where Node has it, the public call otherwise.
 */
type Utf8Writable = Buffer & { utf8Write(text: string, offset: number): number };
const hasUtf8Write = typeof (Buffer.prototype as Partial<Utf8Writable>).utf8Write === 'function';
function utf8Write(b: Buffer, text: string, at: number): number {
  return hasUtf8Write ? (b as Utf8Writable).utf8Write(text, at) : b.write(text, at, 'utf8');
}

/** JSON whitespace. */
export const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** What JSON.stringify(JSON.parse(token)) prints for a number token. */
function jsNumber(token: string): string {
  const x = Number(token);
  return Number.isFinite(x) ? String(x) : 'null';
}

/** Whether the key bytes s[from, end) are an array index ("0", "42", … up to 2^32 − 2), which JS orders first. */
export function isArrayIndex(s: Uint8Array, from: number, end: number): boolean {
  const first = s[from];
  if (!(first >= DIGIT_0 && first <= DIGIT_9) || end <= from) return false;
  if (first === DIGIT_0) return end - from === 1;
  let value = 0;
  for (let k = from; k < end; k++) {
    const d = s[k];
    if (d < DIGIT_0 || d > DIGIT_9) return false;
    value = value * 10 + (d - DIGIT_0);
  }
  return end - from <= 10 && value <= 4294967294;
}
