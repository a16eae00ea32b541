import { Inject, Logger } from '@nestjs/common';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import type { GeoLocator } from '@token-ledger/anomaly';
import type { PublicEvent } from '@token-ledger/envelope';
import type { EventStore } from '@token-ledger/event-store';
import { familyTimeline, type FamilyTimeline } from '@token-ledger/forensics';
import { sharedGeoLocator } from '../anomaly/shared-geo-locator';
import type { LedgerConfig } from '../config/ledger-config';
import { EVENT_STORE, LEDGER_CONFIG } from '../ledger/tokens';
import { GEO_ATTRIBUTION, placeOf, type Place } from './event-place';

/** A timeline as the API answers it: each event with the place of its address, and the database's credit. */
export interface PlacedTimeline extends Omit<FamilyTimeline, 'events'> {
  events: (PublicEvent & { place: Place | null })[];
  attribution: typeof GEO_ATTRIBUTION;
}

/** A family's events and its state as of `at`, replayed from the event store (never a read model). */
export class FamilyTimelineQuery extends Query<PlacedTimeline | null> {
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
export class FamilyTimelineHandler implements IQueryHandler<FamilyTimelineQuery, PlacedTimeline | null> {
  private readonly logger = new Logger('forensics');

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
  ) {}

  async execute({ familyId, at, cursor, limit }: FamilyTimelineQuery): Promise<PlacedTimeline | null> {
    const timeline = await familyTimeline(this.store, familyId, { at: at ?? Date.now(), cursor, limit });
    if (!timeline) return null;
    const geo = await this.geo();
    return { ...timeline, events: timeline.events.map((e) => ({ ...e, place: placeOf(e, geo) })), attribution: GEO_ATTRIBUTION };
  }

  /** Without the database (not installed, unreadable) the timeline is still answered, without places. */
  private async geo(): Promise<GeoLocator | undefined> {
    try {
      return await sharedGeoLocator(this.config.anomaly.geoDbPath);
    } catch (error) {
      this.logger.warn(`IP geolocation unavailable, timelines are answered without places: ${(error as Error).message}`);
      return undefined;
    }
  }
}
