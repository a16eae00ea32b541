import { randomBytes } from 'node:crypto';
import { Inject } from '@nestjs/common';
import { Command, CommandBus, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { LedgerSecrets } from '@token-ledger/crypto';
import {
  DomainError,
  decideFamily,
  dpopRequirementError,
  decideSubject,
  describeFamilyStatus,
  formatFamilyId,
  formatRefreshToken,
  isSubset,
  type FamilyEvent,
  type FamilyState,
  type RequestContext,
  type SubjectEvent,
  type SubjectState,
} from '@token-ledger/domain';
import type { LedgerConfig } from '../../config/ledger-config';
import { AccessTokenMinter } from '../access-token-minter';
import type { AggregateRepository } from '../aggregate-repository';
import { ClientRegistry } from '../client-registry';
import type { CommandMetadata } from '@token-ledger/envelope';
import { LedgerError } from '../ledger-error';
import { familyStatusesOf } from '@token-ledger/projections';
import { FAMILY_REPOSITORY, LEDGER_CONFIG, READ_MODELS, SUBJECT_REPOSITORY, type ReadModels } from '../tokens';
import { RevokeFamilyCommand } from './revoke-family.command';
import { CLIENT_DISABLED_REASON } from './disable-client.command';

export interface IssuedTokens {
  familyId: string;
  /** Global position of TokenFamilyIssued, for read-your-writes (minPosition=). */
  position: number;
  /** Older families revoked because the subject hit the client's maxFamiliesPerSubject. */
  revokedForLimit: string[];
  accessToken: string;
  expiresIn: number;
  refreshToken: string;
  refreshTokenExpiresIn: number;
  scope: string[];
}

export class IssueTokenCommand extends Command<IssuedTokens> {
  constructor(
    readonly input: { subject: string; clientId: string; scope: string[]; audience?: string[]; context?: RequestContext; dpopJkt?: string },
    readonly meta: CommandMetadata,
  ) {
    super();
  }
}

/** A fresh family id lost a race with a pre-emptive revocation at most this many times in a row. */
const MAX_ISSUE_ATTEMPTS = 5;

/** A family linked but not issued for longer than this belongs to a login that died between the two. */
const IN_FLIGHT_LOGIN_MS = 30_000;

/**
 * IssueToken. The family is first linked on the subject's stream, then created on its own stream:
 * RevokeSubject serialises on the subject stream, so a family is either linked before the
 * revocation (and revoked by it, even pre-emptively if its stream does not exist yet) or after it.
 */
@CommandHandler(IssueTokenCommand)
export class IssueTokenHandler implements ICommandHandler<IssueTokenCommand, IssuedTokens> {
  constructor(
    @Inject(FAMILY_REPOSITORY) private readonly families: AggregateRepository<FamilyState, FamilyEvent>,
    @Inject(SUBJECT_REPOSITORY) private readonly subjects: AggregateRepository<SubjectState, SubjectEvent>,
    @Inject(LedgerSecrets) private readonly secrets: LedgerSecrets,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
    @Inject(READ_MODELS) private readonly readModels: ReadModels,
    private readonly clients: ClientRegistry,
    private readonly minter: AccessTokenMinter,
    private readonly commandBus: CommandBus,
  ) {}

  async execute({ input, meta }: IssueTokenCommand): Promise<IssuedTokens> {
    const client = await this.clients.get(input.clientId);
    if (!client) throw new LedgerError('invalid_request', `client ${input.clientId} is not registered`, { title: 'Unknown client' });
    if (client.disabled) throw disabledClient(client.clientId);
    if (!isSubset(input.scope, client.allowedScopes)) {
      throw new LedgerError('invalid_scope', 'scope exceeds the scopes allowed for this client', { title: 'Invalid scope', members: { error: 'invalid_scope' } });
    }
    const dpopRequired = dpopRequirementError(client, input.dpopJkt);
    if (dpopRequired) throw new LedgerError('invalid_request', dpopRequired, { title: 'DPoP binding required' });
    const audience = input.audience && input.audience.length > 0 ? input.audience : [this.config.issuer];

    for (let attempt = 1; ; attempt++) {
      const now = Date.now();
      const familyId = formatFamilyId(randomBytes(16));
      const initialSecret = randomBytes(32);
      const { state: subject } = await this.subjects.execute(input.subject, meta, (state) => ({
        ...decideSubject({ type: 'LinkFamily', subject: input.subject, familyId, clientId: client.clientId, now }, state),
        result: undefined,
      }));
      try {
        const { state, position } = await this.families.execute(familyId, meta, (state) => ({
          events: decideFamily(
            {
              type: 'IssueToken',
              familyId,
              subject: input.subject,
              clientId: client.clientId,
              scope: input.scope,
              audience,
              policy: client.policy,
              initialSecret,
              context: input.context,
              dpopJkt: input.dpopJkt,
              now,
            },
            state,
            this.secrets.tokenSecrets,
          ).events,
          result: undefined,
        }));
        // A disable committed before this append is seen by this read (positions follow commit
        // order), and its family sweep may have missed this family: revoke it here instead.
        if ((await this.clients.get(client.clientId))?.disabled !== false) {
          await this.commandBus.execute(new RevokeFamilyCommand(familyId, CLIENT_DISABLED_REASON, meta));
          throw disabledClient(client.clientId);
        }
        const minted = await this.minter.mint(state, state.scope, now, state.dpopJkt);
        const linkedBefore = subject.families.filter((f) => f.clientId === client.clientId && f.familyId !== familyId);
        const revokedForLimit = await this.enforceFamilyLimit(input.subject, client.clientId, linkedBefore, client.maxFamiliesPerSubject, meta);
        return {
          familyId,
          position: position ?? 0,
          revokedForLimit,
          accessToken: minted.accessToken,
          expiresIn: minted.expiresIn,
          refreshToken: formatRefreshToken({ familyId, generation: state.generation, secret: initialSecret }),
          refreshTokenExpiresIn: Math.ceil((Math.min(state.idleExpiresAt, state.absoluteExpiresAt) - now) / 1000),
          scope: state.scope,
        };
      } catch (error) {
        // The subject was revoked between our link and our append: this family id is burnt.
        if (error instanceof DomainError && error.code === 'family_exists' && attempt < MAX_ISSUE_ATTEMPTS) continue;
        throw error;
      }
    }
  }

  /**
   * maxFamiliesPerSubject (per subject and client): the oldest active families beyond the limit are
   * revoked with reason limit_exceeded. Which families count comes from the store: those linked on
   * the subject's stream before this one (`linkedBefore`, oldest first; the link was appended with
   * optimistic concurrency, so of concurrent logins each sees every one linked before it and the
   * last sees them all). Their status comes from the family view where it holds them — a status it
   * shows stale can only be "active" for a family revoked since, which over-counts, never under — and
   * from the family's own stream for the few it does not hold yet (issued within the projection lag,
   * or a login still under way, which counts as active: it is about to be — unless it was linked
   * more than IN_FLIGHT_LOGIN_MS ago: then the login died between its link and its issue, and the
   * family never will be). So once concurrent logins are answered at most `max` are active, without
   * waiting for the projection.
   */
  private async enforceFamilyLimit(subject: string, clientId: string, linkedBefore: SubjectState['families'], max: number, meta: CommandMetadata): Promise<string[]> {
    if (linkedBefore.length + 1 <= max) return [];
    const viewed = await familyStatusesOf(this.readModels.sql, subject, clientId);
    const now = Date.now();
    const active: string[] = [];
    for (const { familyId, linkedAt } of linkedBefore) {
      const status = viewed.get(familyId) ?? describeFamilyStatus((await this.families.load(familyId)).state, now);
      if (status === 'active' || (status === 'none' && now - linkedAt < IN_FLIGHT_LOGIN_MS)) active.push(familyId);
    }
    const revoked: string[] = [];
    for (const familyId of active.slice(0, Math.max(0, active.length + 1 - max))) {
      const outcome = await this.commandBus.execute(new RevokeFamilyCommand(familyId, 'limit_exceeded', meta));
      if (outcome.revoked) revoked.push(familyId);
    }
    return revoked;
  }
}

function disabledClient(clientId: string): LedgerError {
  return new LedgerError('invalid_request', `client ${clientId} is disabled`, { title: 'Client disabled' });
}
