import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { LedgerSecrets } from '@token-ledger/crypto';
import {
  decideFamily,
  formatRefreshToken,
  type FamilyEvent,
  type FamilyState,
  type RequestContext,
  type RotationOutcome,
  type UnrecordedRejection,
} from '@token-ledger/domain';
import { AccessTokenMinter, type MintedAccessToken } from '../access-token-minter';
import type { AggregateRepository, Loaded } from '../aggregate-repository';
import type { CommandMetadata } from '@token-ledger/envelope';
import { LedgerError } from '../ledger-error';
import { RejectionRecorder } from '../rejection-recorder';
import { FAMILY_REPOSITORY } from '../tokens';

export interface RotatedTokens {
  accessToken: string;
  expiresIn: number;
  refreshToken: string;
  refreshTokenExpiresIn: number;
  scope: string[];
  familyId: string;
  replayed: boolean;
  /** The DPoP key the access token is bound to (cnf.jkt): token_type DPoP; none = Bearer. */
  dpopJkt?: string;
}

export class RotateTokenCommand extends Command<RotatedTokens> {
  constructor(
    readonly presented: { familyId: string; generation: number; secret: Buffer },
    readonly clientId: string,
    readonly scope: string[] | undefined,
    readonly context: RequestContext | undefined,
    readonly meta: CommandMetadata,
    /** Thumbprint of the request's verified DPoP proof key, if it carried one. */
    readonly dpopJkt?: string,
    /**
     * The family's load, started while the client was being authenticated (FamilyPrefetch): the
     * first decision uses it instead of loading again, saving a sequential round trip.
     */
    readonly prefetched?: Promise<Loaded<FamilyState>>,
  ) {
    super();
  }
}

/** RotateToken (SPEC §2 rules 1–7): one load, one decision, one append, one signature. */
@CommandHandler(RotateTokenCommand)
export class RotateTokenHandler implements ICommandHandler<RotateTokenCommand, RotatedTokens> {
  constructor(
    @Inject(FAMILY_REPOSITORY) private readonly families: AggregateRepository<FamilyState, FamilyEvent>,
    @Inject(LedgerSecrets) private readonly secrets: LedgerSecrets,
    private readonly minter: AccessTokenMinter,
    private readonly rejections: RejectionRecorder,
  ) {}

  async execute(cmd: RotateTokenCommand): Promise<RotatedTokens> {
    const now = Date.now();
    let unrecorded: UnrecordedRejection | undefined; // as decided by the attempt that counted
    let minting: Promise<MintedAccessToken> | undefined; // the access token of the attempt that counted
    const { result: outcome, state } = await this.families.execute<RotationOutcome>(cmd.presented.familyId, cmd.meta, (current) => {
      const decision = decideFamily(
        {
          type: 'RotateToken',
          familyId: cmd.presented.familyId,
          generation: cmd.presented.generation,
          secret: cmd.presented.secret,
          clientId: cmd.clientId,
          scope: cmd.scope,
          context: cmd.context,
          dpopJkt: cmd.dpopJkt,
          now,
        },
        current,
        this.secrets.tokenSecrets,
      );
      unrecorded = decision.unrecorded;
      // The access token is signed while the append is on its way (after it was sent: setImmediate),
      // not after it returned. It depends only on what a rotation leaves unchanged (subject, client,
      // audience, policy) and on the outcome; a lost race re-decides and signs again.
      const rotation = decision.rotation!;
      minting = rotation.kind === 'rejected' ? undefined : this.mintSoon(current, rotation.scope, now, rotation.accessTokenJkt);
      // A rejection only records what happened: appended at an exact revision (so it is chained like
      // every event), re-decided on a conflict, and never able to make a real rotation fail. Within
      // the interval of the family's last recorded refusal it appends nothing and is tallied instead.
      const recordOnly = decision.events.every((e) => e.type === 'RefreshRejected');
      return { events: decision.events, result: decision.rotation!, recordOnly };
    }, cmd.prefetched);
    if (unrecorded) this.rejections.note(cmd.presented.familyId, unrecorded);
    if (outcome.kind === 'rejected') throw new LedgerError(outcome.error, outcome.description);
    const minted = await (minting ?? this.minter.sign(state, outcome.scope, now, outcome.accessTokenJkt));
    this.minter.issued();
    return {
      accessToken: minted.accessToken,
      expiresIn: minted.expiresIn,
      refreshToken: formatRefreshToken({ familyId: state.familyId, generation: outcome.generation, secret: outcome.secret }),
      refreshTokenExpiresIn: outcome.refreshExpiresIn,
      scope: outcome.scope,
      familyId: state.familyId,
      replayed: outcome.kind === 'replayed',
      ...(outcome.accessTokenJkt === undefined ? {} : { dpopJkt: outcome.accessTokenJkt }),
    };
  }

  private mintSoon(family: FamilyState, scope: string[], now: number, dpopJkt: string | undefined): Promise<MintedAccessToken> {
    const minted = new Promise<MintedAccessToken>((resolve, reject) =>
      setImmediate(() => this.minter.sign(family, scope, now, dpopJkt).then(resolve, reject)),
    );
    minted.catch(() => undefined); // awaited only if its attempt counted; an abandoned one must not be unhandled
    return minted;
  }
}
