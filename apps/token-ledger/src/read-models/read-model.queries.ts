import { Inject } from '@nestjs/common';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import {
  getFamily,
  listSubjectFamilies,
  overviewSeries,
  searchAnomalies,
  searchAudit,
  type AnomalyView,
  type AuditEvent,
  type AuditQuery,
  type FamilyView,
  type OverviewBucket,
  type OverviewPoint,
  type Page,
} from '@token-ledger/projections';
import { LedgerError } from '../ledger/ledger-error';
import { READ_MODELS, type ReadModels } from '../ledger/tokens';

/** Every read-model answer carries the projection position it reflects (X-Projection-Position). */
export interface Positioned<T> {
  value: T;
  position: number;
}

/** How long a read with minPosition= may wait for the projection to reach the caller's write. */
const MIN_POSITION_WAIT_MS = 2000;

export abstract class ReadModelHandler {
  constructor(@Inject(READ_MODELS) protected readonly readModels: ReadModels) {}

  protected async read<T>(minPosition: number | undefined, run: () => Promise<T>): Promise<Positioned<T>> {
    const runner = this.readModels.runner;
    if (minPosition !== undefined && !(await runner.waitFor(minPosition, MIN_POSITION_WAIT_MS))) {
      throw new LedgerError('unavailable', `read models have not reached position ${minPosition} yet`, {
        members: { position: runner.position },
      });
    }
    const position = runner.position;
    return { value: await run(), position };
  }
}

export class GetFamilyQuery extends Query<Positioned<FamilyView | undefined>> {
  constructor(readonly familyId: string, readonly minPosition?: number) {
    super();
  }
}

@QueryHandler(GetFamilyQuery)
export class GetFamilyHandler extends ReadModelHandler implements IQueryHandler<GetFamilyQuery> {
  execute(q: GetFamilyQuery) {
    return this.read(q.minPosition, () => getFamily(this.readModels.sql, q.familyId));
  }
}

export class ListSubjectFamiliesQuery extends Query<Positioned<Page<FamilyView>>> {
  constructor(
    readonly q: { subject: string; status?: string; cursor?: { createdAt: number; familyId: string }; limit: number },
    readonly minPosition?: number,
  ) {
    super();
  }
}

@QueryHandler(ListSubjectFamiliesQuery)
export class ListSubjectFamiliesHandler extends ReadModelHandler implements IQueryHandler<ListSubjectFamiliesQuery> {
  execute({ q, minPosition }: ListSubjectFamiliesQuery) {
    return this.read(minPosition, () => listSubjectFamilies(this.readModels.sql, q));
  }
}

export class SearchAuditQuery extends Query<Positioned<Page<AuditEvent>>> {
  constructor(readonly q: AuditQuery, readonly minPosition?: number) {
    super();
  }
}

@QueryHandler(SearchAuditQuery)
export class SearchAuditHandler extends ReadModelHandler implements IQueryHandler<SearchAuditQuery> {
  execute({ q, minPosition }: SearchAuditQuery) {
    return this.read(minPosition, () => searchAudit(this.readModels.sql, q));
  }
}

export class SearchAnomaliesQuery extends Query<Positioned<Page<AnomalyView>>> {
  constructor(
    readonly q: { subject?: string; familyId?: string; rule?: string; severity?: string; status?: string; cursor?: number; limit: number },
    readonly minPosition?: number,
  ) {
    super();
  }
}

@QueryHandler(SearchAnomaliesQuery)
export class SearchAnomaliesHandler extends ReadModelHandler implements IQueryHandler<SearchAnomaliesQuery> {
  execute({ q, minPosition }: SearchAnomaliesQuery) {
    return this.read(minPosition, () => searchAnomalies(this.readModels.sql, q));
  }
}

export interface Overview {
  from: string;
  to: string;
  bucket: OverviewBucket;
  series: OverviewPoint[];
}

/** Counts over time for the console's overview charts (GET /v1/stats/overview). */
export class OverviewQuery extends Query<Positioned<Overview>> {
  constructor(
    readonly q: { from: number; to: number; bucket: OverviewBucket },
    readonly minPosition?: number,
  ) {
    super();
  }
}

@QueryHandler(OverviewQuery)
export class OverviewHandler extends ReadModelHandler implements IQueryHandler<OverviewQuery> {
  execute({ q, minPosition }: OverviewQuery) {
    return this.read(minPosition, async () => ({
      from: new Date(q.from).toISOString(),
      to: new Date(q.to).toISOString(),
      bucket: q.bucket,
      series: await overviewSeries(this.readModels.sql, q),
    }));
  }
}
