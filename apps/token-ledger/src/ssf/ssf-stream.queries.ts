import { Inject } from '@nestjs/common';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { isSsfStreamId, type SsfStreamEvent, type SsfStreamState } from '@token-ledger/domain';
import { ssfStreamIdsCreated } from '@token-ledger/projections';
import type { AggregateRepository } from '../ledger/aggregate-repository';
import { LedgerError } from '../ledger/ledger-error';
import { READ_MODELS, SSF_STREAM_REPOSITORY, type ReadModels } from '../ledger/tokens';

/** At most this many streams are listed (a transmitter has a handful of receivers). */
export const SSF_LIST_LIMIT = 1000;

/** One live stream, read from its own event stream (strongly consistent); 404 otherwise. */
export class GetSsfStreamQuery extends Query<SsfStreamState> {
  constructor(readonly streamId: string) {
    super();
  }
}

@QueryHandler(GetSsfStreamQuery)
export class GetSsfStreamHandler implements IQueryHandler<GetSsfStreamQuery, SsfStreamState> {
  constructor(@Inject(SSF_STREAM_REPOSITORY) private readonly repo: AggregateRepository<SsfStreamState, SsfStreamEvent>) {}

  async execute({ streamId }: GetSsfStreamQuery): Promise<SsfStreamState> {
    if (!isSsfStreamId(streamId)) throw new LedgerError('not_found', `no SSF stream ${streamId}`);
    const { state } = await this.repo.load(streamId);
    if (state.lifecycle !== 'live') throw new LedgerError('not_found', `no SSF stream ${streamId}`);
    return state;
  }
}

/**
 * Every live stream: the ids from the audit view (ssfStreamIdsCreated), each stream then read from
 * its own event stream, so a deleted or updated stream is never shown as it was.
 */
export class ListSsfStreamsQuery extends Query<SsfStreamState[]> {}

@QueryHandler(ListSsfStreamsQuery)
export class ListSsfStreamsHandler implements IQueryHandler<ListSsfStreamsQuery, SsfStreamState[]> {
  constructor(
    @Inject(SSF_STREAM_REPOSITORY) private readonly repo: AggregateRepository<SsfStreamState, SsfStreamEvent>,
    @Inject(READ_MODELS) private readonly readModels: ReadModels,
  ) {}

  async execute(): Promise<SsfStreamState[]> {
    const ids = (await ssfStreamIdsCreated(this.readModels.sql, SSF_LIST_LIMIT)).filter(isSsfStreamId);
    const states = await Promise.all(ids.map(async (id) => (await this.repo.load(id)).state));
    return states.filter((s) => s.lifecycle === 'live');
  }
}
