import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { LedgerSecrets } from '@token-ledger/crypto';
import {
  decideSsfStream,
  formatSsfStreamId,
  SSF_AUTHORIZATION_PURPOSE,
  SSF_STREAM_ID_RANDOM_BYTES,
  ssfAuthorizationHeaderProblems,
  SsfVerificationTooSoon,
  type SsfConfigInput,
  type SsfStreamCommand,
  type SsfStreamEvent,
  type SsfStreamState,
} from '@token-ledger/domain';
import type { CommandMetadata } from '@token-ledger/envelope';
import type { LedgerConfig } from '../../config/ledger-config';
import type { AggregateRepository } from '../aggregate-repository';
import { LedgerError } from '../ledger-error';
import { ssfPolicy } from '../ssf-stream-policy';
import { LEDGER_CONFIG, SSF_STREAM_REPOSITORY } from '../tokens';

/**
 * A stream configuration as the management API receives it (SSF 1.0 §8.1.1, already camelCase).
 * `authorizationHeader` is the push receiver's plaintext header value: sealed here, at the edge of
 * the command side, and never stored, logged or returned as it is (null = none).
 */
export interface SsfConfigRequest {
  aud?: unknown;
  eventsRequested?: unknown;
  delivery?: { method?: unknown; endpointUrl?: unknown; authorizationHeader?: unknown };
  description?: unknown;
}

export interface SsfStreamResult {
  state: SsfStreamState;
  /** Global position of the appended event; undefined when the command changed nothing. */
  position?: number;
}

/** Every SSF stream command: a stream-management request that the stream aggregate decides. */
export type SsfStreamChange =
  | { type: 'create'; input: SsfConfigRequest }
  | { type: 'update'; streamId: string; mode: 'patch' | 'replace'; input: SsfConfigRequest }
  | { type: 'status'; streamId: string; status: unknown; reason?: unknown }
  | { type: 'add-subject'; streamId: string; subject: unknown; verified?: unknown }
  | { type: 'remove-subject'; streamId: string; subject: unknown }
  | { type: 'verify'; streamId: string; state?: unknown }
  | { type: 'delete'; streamId: string };

export class SsfStreamCommandMessage extends Command<SsfStreamResult> {
  constructor(
    readonly change: SsfStreamChange,
    readonly meta: CommandMetadata,
  ) {
    super();
  }
}

/** Create: the stream id is drawn here (random), so the decider stays pure. */
export class CreateSsfStreamCommand extends SsfStreamCommandMessage {
  constructor(input: SsfConfigRequest, meta: CommandMetadata) {
    super({ type: 'create', input }, meta);
  }
}
export class UpdateSsfStreamCommand extends SsfStreamCommandMessage {
  constructor(streamId: string, mode: 'patch' | 'replace', input: SsfConfigRequest, meta: CommandMetadata) {
    super({ type: 'update', streamId, mode, input }, meta);
  }
}
export class ChangeSsfStreamStatusCommand extends SsfStreamCommandMessage {
  constructor(streamId: string, status: unknown, reason: unknown, meta: CommandMetadata) {
    super({ type: 'status', streamId, status, reason }, meta);
  }
}
export class AddSsfSubjectCommand extends SsfStreamCommandMessage {
  constructor(streamId: string, subject: unknown, verified: unknown, meta: CommandMetadata) {
    super({ type: 'add-subject', streamId, subject, verified }, meta);
  }
}
export class RemoveSsfSubjectCommand extends SsfStreamCommandMessage {
  constructor(streamId: string, subject: unknown, meta: CommandMetadata) {
    super({ type: 'remove-subject', streamId, subject }, meta);
  }
}
export class RequestSsfVerificationCommand extends SsfStreamCommandMessage {
  constructor(streamId: string, state: unknown, meta: CommandMetadata) {
    super({ type: 'verify', streamId, state }, meta);
  }
}
export class DeleteSsfStreamCommand extends SsfStreamCommandMessage {
  constructor(streamId: string, meta: CommandMetadata) {
    super({ type: 'delete', streamId }, meta);
  }
}

/**
 * Every change is decided on the stream's own event stream with optimistic concurrency
 * (AggregateRepository.execute): concurrent PATCHes, subject adds, status changes and deletes
 * serialise there, each decided on the state the others left, so none is lost and none applied
 * twice. The clock is read once per command; a re-decision after a lost race reuses it.
 */
abstract class SsfStreamHandlerBase {
  constructor(
    @Inject(SSF_STREAM_REPOSITORY) protected readonly repo: AggregateRepository<SsfStreamState, SsfStreamEvent>,
    @Inject(LedgerSecrets) protected readonly secrets: LedgerSecrets,
    @Inject(LEDGER_CONFIG) protected readonly config: LedgerConfig,
  ) {}

  async execute({ change, meta }: SsfStreamCommandMessage): Promise<SsfStreamResult> {
    const now = Date.now();
    const policy = ssfPolicy(this.config);
    let command: SsfStreamCommand;
    switch (change.type) {
      case 'create':
        command = { type: 'CreateSsfStream', streamId: formatSsfStreamId(this.secrets.randomSecret(SSF_STREAM_ID_RANDOM_BYTES)), input: this.sealed(change.input), policy, now };
        break;
      case 'update':
        command = { type: 'UpdateSsfStream', streamId: change.streamId, mode: change.mode, input: this.sealed(change.input), policy, now };
        break;
      case 'status':
        command = { type: 'ChangeSsfStreamStatus', streamId: change.streamId, status: change.status, reason: change.reason, now };
        break;
      case 'add-subject':
        command = { type: 'AddSsfSubject', streamId: change.streamId, subject: change.subject, verified: change.verified, policy, now };
        break;
      case 'remove-subject':
        command = { type: 'RemoveSsfSubject', streamId: change.streamId, subject: change.subject, policy, now };
        break;
      case 'verify':
        command = { type: 'RequestSsfVerification', streamId: change.streamId, state: change.state, policy, now };
        break;
      case 'delete':
        command = { type: 'DeleteSsfStream', streamId: change.streamId, now };
        break;
    }
    try {
      const { state, position } = await this.repo.execute(command.streamId, meta, (current) => ({ events: decideSsfStream(command, current), result: undefined }));
      return { state, position };
    } catch (error) {
      if (error instanceof SsfVerificationTooSoon) {
        throw new LedgerError('rate_limited', error.message, { title: 'Too Many Requests', retryAfterSeconds: error.retryAfterSeconds });
      }
      throw error;
    }
  }

  /** The configuration with the push Authorization header sealed; its plaintext goes no further. */
  private sealed(input: SsfConfigRequest): SsfConfigInput {
    const { delivery, ...rest } = input;
    if (typeof delivery !== 'object' || delivery === null || Array.isArray(delivery)) return { ...rest, delivery: delivery as SsfConfigInput['delivery'] };
    const { authorizationHeader, ...d } = delivery;
    let authorizationHeaderSealed: string | null | undefined;
    if (authorizationHeader === null) authorizationHeaderSealed = null;
    else if (authorizationHeader !== undefined) {
      const problems = ssfAuthorizationHeaderProblems(authorizationHeader);
      if (problems.length > 0) throw new LedgerError('invalid_request', problems.join('; '), { title: 'Invalid stream configuration', members: { errors: problems } });
      authorizationHeaderSealed = this.secrets.sealField(authorizationHeader as string, SSF_AUTHORIZATION_PURPOSE);
    }
    return { ...rest, delivery: { ...d, authorizationHeaderSealed } };
  }
}

@CommandHandler(CreateSsfStreamCommand)
export class CreateSsfStreamHandler extends SsfStreamHandlerBase implements ICommandHandler<CreateSsfStreamCommand, SsfStreamResult> {}
@CommandHandler(UpdateSsfStreamCommand)
export class UpdateSsfStreamHandler extends SsfStreamHandlerBase implements ICommandHandler<UpdateSsfStreamCommand, SsfStreamResult> {}
@CommandHandler(ChangeSsfStreamStatusCommand)
export class ChangeSsfStreamStatusHandler extends SsfStreamHandlerBase implements ICommandHandler<ChangeSsfStreamStatusCommand, SsfStreamResult> {}
@CommandHandler(AddSsfSubjectCommand)
export class AddSsfSubjectHandler extends SsfStreamHandlerBase implements ICommandHandler<AddSsfSubjectCommand, SsfStreamResult> {}
@CommandHandler(RemoveSsfSubjectCommand)
export class RemoveSsfSubjectHandler extends SsfStreamHandlerBase implements ICommandHandler<RemoveSsfSubjectCommand, SsfStreamResult> {}
@CommandHandler(RequestSsfVerificationCommand)
export class RequestSsfVerificationHandler extends SsfStreamHandlerBase implements ICommandHandler<RequestSsfVerificationCommand, SsfStreamResult> {}
@CommandHandler(DeleteSsfStreamCommand)
export class DeleteSsfStreamHandler extends SsfStreamHandlerBase implements ICommandHandler<DeleteSsfStreamCommand, SsfStreamResult> {}

/** Every SSF stream handler, for the module's providers. */
export const SSF_STREAM_HANDLERS = [
  CreateSsfStreamHandler,
  UpdateSsfStreamHandler,
  ChangeSsfStreamStatusHandler,
  AddSsfSubjectHandler,
  RemoveSsfSubjectHandler,
  RequestSsfVerificationHandler,
  DeleteSsfStreamHandler,
];
