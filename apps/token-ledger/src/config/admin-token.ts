/**
 * LEDGER_ADMIN_TOKEN is a bootstrap key with every scope, so start-up refuses a weak one (SPEC §9):
 * one that is (or has been) published in this repository, or one with under 128 bits by the
 * estimate below. The messages never repeat the value.
 */

/**
 * Every value this repository has published for LEDGER_ADMIN_TOKEN (README, docker-compose.yml,
 * docs, examples, test fixtures), now or in its history: all public, so none may guard a ledger.
 * admin-token.unit.spec.ts scans the tracked files and fails when a published value is missing here.
 */
export const PUBLISHED_ADMIN_TOKENS: readonly string[] = [
  'dev-admin-token-please-change',
  'dev-admin-token-not-for-production',
  'test-admin-token-0123456789',
];

export const MIN_ADMIN_TOKEN_BITS = 128;
/**
 * Fewer distinct characters than this is a repetitive value. Random 32-hex tokens have ~14; at 10 one
 * in ~10,000 `openssl rand -hex 16` values was refused, at 7 one in ~5·10^9.
 */
const MIN_DISTINCT_CHARACTERS = 7;

/**
 * Estimated entropy, in bits, of a token assumed to be drawn uniformly: length × log2(pool), where
 * the pool is the character classes the token uses (lower 26, upper 26, digits 10, other printable
 * ASCII 33, anything else 33), or 16 when it is all hexadecimal digits (`openssl rand -hex`). It is
 * an upper bound: it catches short tokens and small alphabets, but cannot tell a memorable phrase
 * from a random string — generate the token (`openssl rand -base64 32` gives 256 bits).
 */
export function estimateEntropyBits(token: string): number {
  const chars = [...token];
  if (chars.length === 0) return 0;
  let pool: number;
  if (/^[0-9a-f]+$/.test(token) || /^[0-9A-F]+$/.test(token)) pool = 16;
  else {
    pool = 0;
    if (/[a-z]/.test(token)) pool += 26;
    if (/[A-Z]/.test(token)) pool += 26;
    if (/[0-9]/.test(token)) pool += 10;
    if (/[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]/.test(token)) pool += 33;
    if (/[^\x21-\x7e]/.test(token)) pool += 33;
  }
  return chars.length * Math.log2(pool);
}

/** What is wrong with this admin token, one line each (empty when it may be used). */
export function adminTokenProblems(token: string): string[] {
  const problems: string[] = [];
  if (!/^[\x21-\x7e]+$/.test(token)) problems.push('must be printable ASCII without spaces (it is sent as a bearer token)');
  if (PUBLISHED_ADMIN_TOKENS.includes(token)) {
    problems.push('is a value published in the token-ledger repository (README, docker-compose.yml, docs or tests): anyone can read it; generate one, e.g. openssl rand -base64 32');
    return problems;
  }
  const bits = estimateEntropyBits(token);
  if (bits < MIN_ADMIN_TOKEN_BITS) {
    problems.push(`has about ${Math.floor(bits)} bits of entropy, at least ${MIN_ADMIN_TOKEN_BITS} are required: generate one, e.g. openssl rand -base64 32`);
  } else if (new Set(token).size < MIN_DISTINCT_CHARACTERS) {
    problems.push(`repeats too few characters (under ${MIN_DISTINCT_CHARACTERS} distinct) to be random: generate one, e.g. openssl rand -base64 32`);
  }
  return problems;
}
