import { Inject, Injectable, Logger } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { familiesDueForExpiry } from '@token-ledger/projections';
import type { LedgerConfig } from '../config/ledger-config';
import { ExpireIdleCommand } from '../ledger/commands/expire-idle.command';
import { LEDGER_CONFIG, READ_MODELS, type ReadModels } from '../ledger/tokens';

/** Families expired per sweep at most; the next sweep takes the rest. */
const SWEEP_LIMIT = 500;

/**
 * ExpireIdle on a timer: finds families past idle or absolute expiry in the family view and records
 * TokenFamilyExpired through the command side. Idempotent (the decider appends nothing for an ended
 * family and optimistic concurrency lets only one of two sweeping nodes append). Correctness never
 * depends on it: the refresh path checks expiry itself.
 */
@Injectable()
export class ExpirySweeper {
  private readonly logger = new Logger('expiry-sweeper');
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;

  constructor(
    private readonly commandBus: CommandBus,
    @Inject(READ_MODELS) private readonly readModels: ReadModels,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sweepOnce().catch((e) => this.logger.error(String(e))), this.config.sweepIntervalSeconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One pass; returns how many families it expired. */
  sweepOnce(): Promise<number> {
    this.running ??= (async () => {
      try {
        let expired = 0;
        for (const familyId of await familiesDueForExpiry(this.readModels.sql, SWEEP_LIMIT)) {
          if (await this.commandBus.execute(new ExpireIdleCommand(familyId, { actor: 'expiry-sweeper' }))) expired++;
        }
        return expired;
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }
}
