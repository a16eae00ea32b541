import { formatScope, isScopeToken, isSubset, normaliseScope, parseScope } from './scope';

describe('scope', () => {
  it('parses space-delimited scope tokens, deduplicated in first-seen order', () => {
    expect(parseScope('openid profile email')).toEqual(['openid', 'profile', 'email']);
    expect(parseScope('b a b a')).toEqual(['b', 'a']);
    expect(parseScope('  read   write ')).toEqual(['read', 'write']);
    expect(parseScope('')).toEqual([]);
    expect(parseScope('   ')).toEqual([]);
  });

  it('accepts exactly the RFC 6749 §3.3 scope-token characters', () => {
    expect(parseScope('! # [ ] ~ api:read https://x.example/a?b=c')).toEqual([
      '!',
      '#',
      '[',
      ']',
      '~',
      'api:read',
      'https://x.example/a?b=c',
    ]);
    for (const bad of ['a"b', 'a\\b', 'a\tb', 'a\nb', 'café', 'a\x7fb', 'a\x00b', 'a\u00a0b']) {
      expect(parseScope(bad)).toBeNull();
    }
    expect(parseScope(undefined)).toBeNull();
    expect(parseScope(['a'])).toBeNull();
    expect(isScopeToken('')).toBe(false);
    expect(isScopeToken('read')).toBe(true);
  });

  it('normalises token lists', () => {
    expect(normaliseScope(['a', 'b', 'a'])).toEqual(['a', 'b']);
    expect(normaliseScope([])).toEqual([]);
    expect(normaliseScope(['a b'])).toBeNull();
    expect(normaliseScope(['a', 1])).toBeNull();
    expect(normaliseScope('a' as unknown as string[])).toBeNull();
  });

  it('isSubset allows narrowing, never widening', () => {
    expect(isSubset(['a'], ['a', 'b'])).toBe(true);
    expect(isSubset(['b', 'a'], ['a', 'b'])).toBe(true);
    expect(isSubset([], ['a'])).toBe(true);
    expect(isSubset([], [])).toBe(true);
    expect(isSubset(['c'], ['a', 'b'])).toBe(false);
    expect(isSubset(['a', 'c'], ['a', 'b'])).toBe(false);
    expect(isSubset(['a'], [])).toBe(false);
  });

  it('formats with single spaces', () => {
    expect(formatScope(['a', 'b', 'a'])).toBe('a b');
    expect(formatScope([])).toBe('');
    expect(parseScope(formatScope(['x', 'y']))).toEqual(['x', 'y']);
  });
});
