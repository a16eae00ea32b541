/**
 * The state of a family as of an instant, rebuilt with the domain's own evolveFamily — the very
 * function the live decider folds with — so a replay and the live ledger can never disagree.
 */
import { evolveFamily, initialFamilyState, toFamilyView, type FamilyEvent, type FamilyState, type FamilyView } from '@token-ledger/domain';
import { occurredAtMs, toDomainEvent } from '@token-ledger/envelope';
import type { RecordedEvent } from '@token-ledger/event-store';

/**
 * Folds a family stream's events (in revision order) that happened at or before `at`. Feed it every
 * event; it skips the later ones itself.
 */
export class FamilyStateAt {
  private current: FamilyState = initialFamilyState();
  private folded = 0;

  constructor(readonly at: number) {}

  /** True when the event counted (occurredAt <= at). */
  apply(recorded: RecordedEvent): boolean {
    if (occurredAtMs(recorded) > this.at) return false;
    this.current = evolveFamily(this.current, toDomainEvent<FamilyEvent>(recorded));
    this.folded++;
    return true;
  }

  get state(): FamilyState {
    return this.current;
  }

  /** How many events the state reflects. */
  get eventCount(): number {
    return this.folded;
  }

  view(): FamilyView | null {
    return toFamilyView(this.current, this.at);
  }
}
