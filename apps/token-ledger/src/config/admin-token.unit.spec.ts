import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { adminTokenProblems, estimateEntropyBits, PUBLISHED_ADMIN_TOKENS } from './admin-token';
import { ConfigError, loadConfig } from './ledger-config';

const REPO = path.resolve(__dirname, '../../../..');

/**
 * Literal values assigned to an admin token anywhere in the tracked files: `LEDGER_ADMIN_TOKEN=v`,
 * `LEDGER_ADMIN_TOKEN: v`, `ADMIN_TOKEN = 'v'`, and shell defaults `${LEDGER_ADMIN_TOKEN:-v}`.
 * References (`$X`, `${X}`, `process.env.X`, `…`) are not values.
 */
function publishedValues(): Map<string, string> {
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: REPO, encoding: 'utf8' }).split('\0').filter(Boolean);
  const found = new Map<string, string>();
  const assignment = /\b[A-Z_]*ADMIN_TOKEN\b["']?\s*[:=]\s*["'`]?([^\s"'`$,;?)}…]+)/g;
  const shellDefault = /\$\{[A-Z_]*ADMIN_TOKEN:?-([^}]+)\}/g;
  for (const file of files) {
    if (/\.(png|jpe?g|gif|mmdb|gz|zip|ico|woff2?)$/.test(file) || file.startsWith('node_modules/')) continue;
    let text: string;
    try {
      text = readFileSync(path.join(REPO, file), 'utf8');
    } catch {
      continue; // listed but absent (a deleted file not yet committed)
    }
    for (const re of [assignment, shellDefault]) {
      for (const m of text.matchAll(re)) {
        const value = m[1].trim();
        // Identifiers that stand for a value (adminToken, ADMIN_TOKEN) are code, not published tokens.
        if (/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*!?$/.test(value) && !value.includes('-')) continue;
        found.set(value, file);
      }
    }
  }
  return found;
}

describe('LEDGER_ADMIN_TOKEN at start-up', () => {
  it('every admin-token value published in the repository is refused, and the strong-looking ones are listed', () => {
    const found = publishedValues();
    expect(found.size).toBeGreaterThan(0); // the scan sees something (docker-compose.yml, README)
    for (const [value, file] of found) {
      expect({ value, file, problems: adminTokenProblems(value).length > 0 }).toEqual({ value, file, problems: true });
    }
    for (const value of PUBLISHED_ADMIN_TOKENS) expect(adminTokenProblems(value).join()).toMatch(/published/);
  });

  it('estimates entropy from length and the character classes used', () => {
    expect(estimateEntropyBits('')).toBe(0);
    expect(estimateEntropyBits('0123456789abcdef'.repeat(2))).toBe(128); // 32 hex digits
    expect(estimateEntropyBits('z'.repeat(10))).toBeCloseTo(10 * Math.log2(26));
    expect(estimateEntropyBits('a'.repeat(10))).toBe(40); // all hex digits
    expect(estimateEntropyBits('aA0!')).toBeCloseTo(4 * Math.log2(95));
  });

  it('accepts generated tokens (base64 of 32 bytes, hex of 16 and 32 bytes)', () => {
    for (let i = 0; i < 50; i++) {
      for (const token of [randomBytes(32).toString('base64'), randomBytes(32).toString('base64url'), randomBytes(16).toString('hex'), randomBytes(32).toString('hex')]) {
        expect(adminTokenProblems(token)).toEqual([]);
      }
    }
  });

  it('refuses short, small-alphabet, repetitive and published tokens, never echoing the value', () => {
    const weak = ['short', 'test-admin-token-0123456789', 'correcthorsebatterystaple', randomBytes(15).toString('hex'), 'ab'.repeat(40), 'with space '.repeat(5)];
    for (const token of weak) {
      const problems = adminTokenProblems(token);
      expect(problems.length).toBeGreaterThan(0);
      for (const p of problems) expect(p).not.toContain(token);
    }
    try {
      loadConfig({ LEDGER_ADMIN_TOKEN: 'dev-admin-token-please-change', PORT: 'x' });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as ConfigError).message;
      expect(message).toMatch(/LEDGER_ADMIN_TOKEN: is a value published/);
      expect(message).toMatch(/PORT/); // reported together with every other problem
      expect(message).not.toContain('dev-admin-token-please-change');
    }
    const strong = randomBytes(32).toString('base64url');
    expect(loadConfig({ LEDGER_ADMIN_TOKEN: strong }).adminToken).toBe(strong);
  });
});
