import { Inject } from '@nestjs/common';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import type { EventStore } from '@token-ledger/event-store';
import { familyTimeline, type FamilyTimeline } from '@token-ledger/forensics';
import { EVENT_STORE } from '../ledger/tokens';

/** A family's events and its state as of `at`, replayed from the event store (never a read model). */
export class FamilyTimelineQuery extends Query<FamilyTimeline | null> {
  constructor(
    readonly familyId: string,
    /** Epoch ms; undefined = now. */
    readonly at: number | undefined,
    /** Stream revision to continue from (a previous answer's nextCursor). */
    readonly cursor: number | undefined,
    readonly limit: number,
  ) {
    super();
  }
}

@QueryHandler(FamilyTimelineQuery)
export class FamilyTimelineHandler implements IQueryHandler<FamilyTimelineQuery, FamilyTimeline | null> {
  constructor(@Inject(EVENT_STORE) private readonly store: EventStore) {}

  execute({ familyId, at, cursor, limit }: FamilyTimelineQuery): Promise<FamilyTimeline | null> {
    return familyTimeline(this.store, familyId, { at: at ?? Date.now(), cursor, limit });
  }
}
