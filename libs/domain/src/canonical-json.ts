/**
 * Canonical JSON: JSON.stringify semantics for values (toJSON, undefined members dropped,
 * non-finite numbers → null), object keys sorted by UTF-16 code units at every depth, no
 * whitespace. Stores do not keep bytes (jsonb reorders keys), so hashes and MACs are taken over this
 * form of the parsed value (the hash chain, the signing key set's MAC). Pure.
 */
/** Canonical JSON of a JSON-compatible value (see the file comment). Throws on bigint and cycles. */
export function canonicalJson(value: unknown): string {
  const out = serialize(value, '', 0);
  if (out === undefined) throw new TypeError('canonicalJson: value has no JSON representation');
  return out;
}

const MAX_DEPTH = 200;

function serialize(input: unknown, key: string, depth: number): string | undefined {
  let value = input;
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON(key: string): unknown }).toJSON(key);
  }
  // Boxed primitives serialise like their primitive (as JSON.stringify does).
  if (value instanceof Number || value instanceof String || value instanceof Boolean) value = value.valueOf();
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'bigint':
      throw new TypeError('canonicalJson: bigint has no JSON representation');
    default:
      break;
  }
  if (value === null) return 'null';
  if (depth >= MAX_DEPTH) throw new RangeError('canonicalJson: nesting too deep (cycle?)');
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += serialize(value[i], String(i), depth + 1) ?? 'null';
    }
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = sortKeys(Object.keys(obj));
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = serialize(obj[k], k, depth + 1);
    if (v === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += `${quote(k)}:${v}`;
  }
  return `${out}}`;
}

/** Characters JSON.stringify escapes (control characters, quote, backslash, lone surrogates). */
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

/** JSON.stringify of a string, without the call for the usual string that needs no escape. */
function quote(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/**
 * `keys` sorted in place by UTF-16 code units (what `sort()` does): insertion sort for the few keys
 * of the objects the hash chain sorts on every append (Array.prototype.sort copies them into a work
 * array first); `sort()` itself above that, where insertion sort's n² would start to show.
 */
function sortKeys(keys: string[]): string[] {
  if (keys.length > 16) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i];
    let j = i - 1;
    for (; j >= 0 && keys[j] > k; j--) keys[j + 1] = keys[j];
    keys[j + 1] = k;
  }
  return keys;
}
