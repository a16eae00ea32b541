import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { decideAnomalyTriage, DomainError, isAnomalyId, toIso, type AnomalyEvent, type AnomalyState } from '@token-ledger/domain';
import type { CommandMetadata } from '@token-ledger/envelope';
import type { AggregateRepository } from '../aggregate-repository';
import { LedgerError } from '../ledger-error';
import { ANOMALY_REPOSITORY } from '../tokens';

export interface TriagedAnomaly {
  anomalyId: string;
  status: 'acknowledged' | 'dismissed';
  by: string;
  at: string;
  position?: number;
}

/** An analyst acknowledges or dismisses an anomaly; meta.actor is the acting principal. */
export class TriageAnomalyCommand extends Command<TriagedAnomaly> {
  constructor(
    readonly anomalyId: string,
    readonly action: 'acknowledge' | 'dismiss',
    readonly note: string | undefined,
    readonly meta: CommandMetadata & { actor: string },
  ) {
    super();
  }
}

/**
 * Decided on the anomaly's own stream with optimistic concurrency: of many concurrent requests,
 * exactly the transitions the decider allows are appended (one event each); the others are told
 * the anomaly's status now (409 conflict) or that there is no such anomaly (404).
 */
@CommandHandler(TriageAnomalyCommand)
export class TriageAnomalyHandler implements ICommandHandler<TriageAnomalyCommand, TriagedAnomaly> {
  constructor(@Inject(ANOMALY_REPOSITORY) private readonly repo: AggregateRepository<AnomalyState, AnomalyEvent>) {}

  async execute({ anomalyId, action, note, meta }: TriageAnomalyCommand): Promise<TriagedAnomaly> {
    if (!isAnomalyId(anomalyId)) throw new LedgerError('not_found', `no anomaly ${anomalyId}`);
    const type = action === 'acknowledge' ? 'AcknowledgeAnomaly' : 'DismissAnomaly';
    const { state, position } = await this.repo.execute(anomalyId, meta, (current) => {
      try {
        return { events: decideAnomalyTriage({ type, anomalyId, actor: meta.actor, note, now: Date.now() }, current), result: undefined };
      } catch (error) {
        if (error instanceof DomainError && error.code === 'anomaly_triage_conflict') {
          throw new LedgerError('conflict', error.message, { members: { currentStatus: current.status, statusBy: current.statusBy, statusAt: current.statusAt === null ? null : toIso(current.statusAt) } });
        }
        throw error;
      }
    });
    return { anomalyId, status: state.status as TriagedAnomaly['status'], by: state.statusBy!, at: toIso(state.statusAt!), position };
  }
}
