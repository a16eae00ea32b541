/**
 * Bounded "seen" set for deduplicating at-least-once deliveries by eventId. Keeps the `capacity`
 * most recently seen ids (Map iteration order = insertion order; a hit re-inserts). Redeliveries
 * come from a relay restart (at most one unacknowledged batch, ≤ the relay's batch size) or a
 * consumer rebalance (at most the uncommitted tail of a partition), so a capacity of 100k ids
 * (~10 MB) covers them with a wide margin. A duplicate older than that is processed again, which is
 * harmless for every consumer here: revocation records are idempotent (same key, same value).
 */
export class LruSet {
  private readonly map = new Map<string, true>();

  constructor(readonly capacity = 100_000) {}

  /** true when `id` was not in the set (and now is); false for a duplicate. */
  add(id: string): boolean {
    if (this.map.has(id)) {
      this.map.delete(id);
      this.map.set(id, true);
      return false;
    }
    this.map.set(id, true);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as string);
    return true;
  }

  has(id: string): boolean {
    return this.map.has(id);
  }

  clear(): void {
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}
