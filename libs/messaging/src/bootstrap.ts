import type { EventStore } from '@token-ledger/event-store';

/**
 * The position to start a revocation feed from so that it sees every revocation that can still
 * matter: the last position recorded before `now - windowMs` (window = the maximum access-token
 * TTL plus a margin). A record older than that has accessTokensValidUntil in the past. Binary search
 * over readAll({after, maxCount: 1}) — about log2(head) one-row reads — relying on recordedAt
 * following position order (commit order; clock steps are absorbed by the margin).
 */
export async function positionBefore(store: EventStore, cutoff: Date): Promise<number> {
  const head = await store.headPosition();
  let lo = 0;
  let hi = head;
  // Invariant: the first event after `hi` (if any) is recorded at or after cutoff.
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const [first] = await store.readAll({ after: mid, maxCount: 1 });
    if (!first || first.recordedAt >= cutoff) hi = mid;
    else lo = first.position; // everything up to first.position is older than cutoff
  }
  return lo;
}
