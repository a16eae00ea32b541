import { Inject } from '@nestjs/common';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import type { EventStore } from '@token-ledger/event-store';
import { verifyChain, type ChainProblemKind } from '@token-ledger/forensics';
import { CHAIN_MAC_KEY, EVENT_STORE } from '../ledger/tokens';

/** Problems named in one answer; all are counted in problemCount. */
const MAX_PROBLEMS = 100;

export interface FamilyVerification {
  familyId: string;
  /**
   * ok: every event's hash, link and (with LEDGER_KEK) head MAC check out. unkeyed: the chain is
   * intact but only self-consistent — no LEDGER_KEK, or events written before it — so a rewrite with
   * recomputed hashes would not show. broken: at least one problem.
   */
  status: 'ok' | 'broken' | 'unkeyed';
  checkedEvents: number;
  problemCount: number;
  problems: { kind: ChainProblemKind; revision: number; position: number | null; detail: string }[];
}

/** The hash-chain check of one family's stream (`verify --family`), as the API answers it. */
export class FamilyVerificationQuery extends Query<FamilyVerification | null> {
  constructor(readonly familyId: string) {
    super();
  }
}

@QueryHandler(FamilyVerificationQuery)
export class FamilyVerificationHandler implements IQueryHandler<FamilyVerificationQuery, FamilyVerification | null> {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(CHAIN_MAC_KEY) private readonly macKey: Buffer | null,
  ) {}

  async execute({ familyId }: FamilyVerificationQuery): Promise<FamilyVerification | null> {
    // Events written before LEDGER_KEK was set carry no MAC: counted (status unkeyed), not a break.
    const report = await verifyChain(this.store, { familyId }, { macKey: this.macKey ?? undefined, allowUnkeyed: true, maxProblems: MAX_PROBLEMS });
    if (!report) return null;
    const status = report.problemCount > 0 ? 'broken' : !report.keyed || report.unkeyed > 0 ? 'unkeyed' : 'ok';
    return {
      familyId,
      status,
      checkedEvents: report.events,
      problemCount: report.problemCount,
      problems: report.problems.map(({ kind, revision, position, detail }) => ({ kind, revision, position, detail })),
    };
  }
}
