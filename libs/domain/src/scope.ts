/**
 * OAuth scopes (RFC 6749 §3.3):
 *   scope       = scope-token *( SP scope-token )
 *   scope-token = 1*( %x21 / %x23-5B / %x5D-7E )     ; printable ASCII except SP, " and \
 * Scope lists are kept deduplicated in first-seen order; order carries no meaning.
 */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

export function isScopeToken(s: unknown): s is string {
  return typeof s === 'string' && SCOPE_TOKEN.test(s);
}

/**
 * Parses a space-delimited scope string. Runs of spaces and leading/trailing spaces are tolerated
 * (only %x20: tabs, newlines and any other character outside scope-token make it invalid).
 * An empty or all-space string yields []. Returns null when malformed. Never throws.
 */
export function parseScope(input: unknown): string[] | null {
  if (typeof input !== 'string') return null;
  const tokens = input.split(' ').filter((t) => t !== '');
  return normaliseScope(tokens);
}

/** Validates each token and removes duplicates (first occurrence wins). Null if any is invalid. */
export function normaliseScope(tokens: readonly unknown[]): string[] | null {
  if (!Array.isArray(tokens)) return null;
  const seen = new Set<string>();
  for (const t of tokens) {
    if (!isScopeToken(t)) return null;
    seen.add(t);
  }
  return [...seen];
}

/** True when every requested scope is in granted. The empty set is a subset of anything. */
export function isSubset(requested: readonly string[], granted: readonly string[]): boolean {
  const g = new Set(granted);
  return requested.every((s) => g.has(s));
}

/** The wire form: tokens joined by single spaces (deduplicated). */
export function formatScope(tokens: readonly string[]): string {
  return [...new Set(tokens)].join(' ');
}
