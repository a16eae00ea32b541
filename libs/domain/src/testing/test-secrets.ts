import { createHmac } from 'node:crypto';
import type { TokenSecrets } from '../token-secrets';

/**
 * HMAC-SHA-256 TokenSecrets for unit tests only (not exported from index). Counts calls so tests
 * can assert how much work an authentication did.
 */
export function testSecrets(key = 'unit-test-key'): TokenSecrets & { calls: { hash: number; successor: number } } {
  const calls = { hash: 0, successor: 0 };
  return {
    calls,
    hash(secret: Buffer): string {
      calls.hash++;
      return createHmac('sha256', `${key}:hash`).update(secret).digest('base64url');
    },
    successor(previous: Buffer, familyId: string, generation: number): Buffer {
      calls.successor++;
      return createHmac('sha256', `${key}:successor`).update(`${familyId}\0${generation}\0`).update(previous).digest();
    },
  };
}
