import { Inject, Injectable } from '@nestjs/common';
import type { FamilyEvent, FamilyState } from '@token-ledger/domain';
import type { AggregateRepository, Loaded } from './aggregate-repository';
import { FAMILY_REPOSITORY } from './tokens';

/**
 * Starts a family's load before the command that needs it (RotateTokenCommand.prefetched), so it
 * runs beside the client's authentication instead of after it. The load decides nothing: the
 * command still decides only once the client authenticated, and a load whose request fails
 * authentication is dropped (the answer is the same, so it tells nobody anything).
 */
@Injectable()
export class FamilyPrefetch {
  constructor(@Inject(FAMILY_REPOSITORY) private readonly families: AggregateRepository<FamilyState, FamilyEvent>) {}

  start(familyId: string): Promise<Loaded<FamilyState>> {
    const load = this.families.load(familyId);
    // A dropped load's failure (the store is down: authentication then fails the same way) is not unhandled.
    load.catch(() => undefined);
    return load;
  }
}
