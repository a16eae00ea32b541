import { Body, Controller, Delete, Get, HttpCode, Inject, Patch, Post, Put, Query, Req, Res, UseGuards } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiBody,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiQuery,
  ApiTags,
  ApiTooManyRequestsResponse,
} from '@nestjs/swagger';
import type { SsfStreamState } from '@token-ledger/domain';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiKeyGuard, RequireScope } from '../api-keys/api-key.guard';
import { actorOf } from '../api-keys/principal';
import type { LedgerConfig } from '../config/ledger-config';
import { commandMetadata } from '../http/request-context';
import {
  AddSsfSubjectCommand,
  ChangeSsfStreamStatusCommand,
  CreateSsfStreamCommand,
  DeleteSsfStreamCommand,
  RemoveSsfSubjectCommand,
  RequestSsfVerificationCommand,
  UpdateSsfStreamCommand,
  type SsfStreamCommandMessage,
  type SsfStreamResult,
} from '../ledger/commands/ssf-stream.command';
import { LEDGER_CONFIG } from '../ledger/tokens';
import { SsfStatusRequest, SsfStatusView, SsfStreamConfigRequest, SsfStreamConfigView, SsfSubjectRequest, SsfVerifyRequest } from './ssf.dto';
import { GetSsfStreamQuery, ListSsfStreamsQuery } from './ssf-stream.queries';
import { readBody, readConfigBody, requireStreamId, toWireConfig, toWireStatus, type SsfStatusWire, type SsfStreamConfigWire } from './ssf-wire';

const NOT_FOUND = 'no such stream (never created, or deleted)';

/**
 * The SSF 1.0 §8 stream management API: configuration (create, read, update, replace, delete),
 * status, subjects and verification. Auth as /v1 (RFC 6750 bearer: an API key or the admin token):
 * `ssf:read` for reads, `ssf:manage` for changes; the per-key rate limit applies (ApiKeyGuard).
 * Errors are RFC 9457 problem documents; a stream that does not exist is 404.
 */
@ApiTags('ssf')
@ApiBearerAuth()
@UseGuards(ApiKeyGuard)
@RequireScope('ssf:manage')
@Controller('ssf')
export class SsfStreamsController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly queryBus: QueryBus,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
  ) {}

  @Post('streams')
  @ApiOperation({ summary: 'Create a stream (SSF 1.0 §8.1.1.1)', description: 'The stream starts enabled, with no subjects (default_subjects NONE).' })
  @ApiBody({ type: SsfStreamConfigRequest })
  @ApiCreatedResponse({ type: SsfStreamConfigView })
  @ApiBadRequestResponse({ description: 'invalid configuration (every problem in `errors`)' })
  async create(@Req() request: FastifyRequest, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<SsfStreamConfigWire> {
    const { input } = readConfigBody(body, this.transmitterValues());
    return this.config_(await this.run(request, reply, (meta) => new CreateSsfStreamCommand(input, meta)));
  }

  @Get('streams')
  @RequireScope('ssf:read')
  @ApiOperation({ summary: 'Read one stream, or all (SSF 1.0 §8.1.1.2)', description: 'With stream_id: that stream. Without: every stream (a list).' })
  @ApiQuery({ name: 'stream_id', required: false })
  @ApiOkResponse({ type: SsfStreamConfigView, description: 'one configuration, or a list of them without stream_id' })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  async read(@Query('stream_id') streamId: unknown): Promise<SsfStreamConfigWire | SsfStreamConfigWire[]> {
    if (streamId === undefined) {
      const states: SsfStreamState[] = await this.queryBus.execute(new ListSsfStreamsQuery());
      return states.map((s) => this.config_({ state: s }));
    }
    return this.config_({ state: await this.queryBus.execute(new GetSsfStreamQuery(requireStreamId(streamId))) });
  }

  @Patch('streams')
  @HttpCode(200)
  @ApiOperation({ summary: 'Update a stream (SSF 1.0 §8.1.1.3)', description: 'Members present are changed; absent ones stay. A push authorization_header left out is kept (same origin only).' })
  @ApiBody({ type: SsfStreamConfigRequest })
  @ApiOkResponse({ type: SsfStreamConfigView })
  @ApiBadRequestResponse({ description: 'invalid configuration' })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  async update(@Req() request: FastifyRequest, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<SsfStreamConfigWire> {
    const { streamId, input } = readConfigBody(body, this.transmitterValues());
    const id = requireStreamId(streamId);
    return this.config_(await this.run(request, reply, (meta) => new UpdateSsfStreamCommand(id, 'patch', input, meta)));
  }

  @Put('streams')
  @HttpCode(200)
  @ApiOperation({ summary: 'Replace a stream (SSF 1.0 §8.1.1.4)', description: 'Every receiver-supplied member is set; what is left out is cleared (or refused when required).' })
  @ApiBody({ type: SsfStreamConfigRequest })
  @ApiOkResponse({ type: SsfStreamConfigView })
  @ApiBadRequestResponse({ description: 'invalid configuration' })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  async replace(@Req() request: FastifyRequest, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<SsfStreamConfigWire> {
    const { streamId, input } = readConfigBody(body, this.transmitterValues());
    const id = requireStreamId(streamId);
    return this.config_(await this.run(request, reply, (meta) => new UpdateSsfStreamCommand(id, 'replace', input, meta)));
  }

  @Delete('streams')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a stream (SSF 1.0 §8.1.1.5)', description: 'Final: afterwards every call about the stream is 404.' })
  @ApiQuery({ name: 'stream_id', required: true })
  @ApiNoContentResponse({ description: 'deleted' })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  async remove(@Req() request: FastifyRequest, @Query('stream_id') streamId: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<void> {
    const id = requireStreamId(streamId);
    await this.run(request, reply, (meta) => new DeleteSsfStreamCommand(id, meta));
  }

  @Get('status')
  @RequireScope('ssf:read')
  @ApiOperation({ summary: 'Read a stream status (SSF 1.0 §8.1.2.1)' })
  @ApiQuery({ name: 'stream_id', required: true })
  @ApiOkResponse({ type: SsfStatusView })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  async status(@Query('stream_id') streamId: unknown): Promise<SsfStatusWire> {
    return toWireStatus(await this.queryBus.execute(new GetSsfStreamQuery(requireStreamId(streamId))));
  }

  @Post('status')
  @HttpCode(200)
  @ApiOperation({ summary: 'Change a stream status (SSF 1.0 §8.1.2.2)', description: 'enabled, paused or disabled, with an optional reason.' })
  @ApiBody({ type: SsfStatusRequest })
  @ApiOkResponse({ type: SsfStatusView })
  @ApiBadRequestResponse({ description: 'unknown status' })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  async changeStatus(@Req() request: FastifyRequest, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<SsfStatusWire> {
    const b = readBody(body, ['status', 'reason']);
    const id = requireStreamId(b.stream_id);
    return toWireStatus((await this.run(request, reply, (meta) => new ChangeSsfStreamStatusCommand(id, b.status, b.reason, meta))).state);
  }

  // `::` is a literal colon for Fastify's router (a single `:` would start a path parameter).
  @Post('subjects::add')
  @HttpCode(200)
  @ApiOperation({ summary: 'Add a subject (SSF 1.0 §8.1.3.2)', description: 'Idempotent. The stream gets events about its subjects only (default_subjects NONE).' })
  @ApiBody({ type: SsfSubjectRequest })
  @ApiOkResponse({ description: 'added (or already there)' })
  @ApiBadRequestResponse({ description: 'unsupported or malformed subject' })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  async addSubject(@Req() request: FastifyRequest, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<void> {
    const b = readBody(body, ['subject', 'verified']);
    const id = requireStreamId(b.stream_id);
    await this.run(request, reply, (meta) => new AddSsfSubjectCommand(id, b.subject, b.verified, meta));
  }

  @Post('subjects::remove')
  @HttpCode(204)
  @ApiOperation({ summary: 'Remove a subject (SSF 1.0 §8.1.3.3)' })
  @ApiBody({ type: SsfSubjectRequest })
  @ApiNoContentResponse({ description: 'removed' })
  @ApiNotFoundResponse({ description: `${NOT_FOUND}, or the subject is not in the stream` })
  async removeSubject(@Req() request: FastifyRequest, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<void> {
    const b = readBody(body, ['subject']);
    const id = requireStreamId(b.stream_id);
    await this.run(request, reply, (meta) => new RemoveSsfSubjectCommand(id, b.subject, meta));
  }

  @Post('verify')
  @HttpCode(204)
  @ApiOperation({ summary: 'Request a verification event (SSF 1.0 §8.1.4.2)', description: 'At most one per min_verification_interval; the SET is sent by the delivery.' })
  @ApiBody({ type: SsfVerifyRequest })
  @ApiNoContentResponse({ description: 'requested' })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  @ApiTooManyRequestsResponse({ description: 'within min_verification_interval of the last request; Retry-After says when' })
  async verify(@Req() request: FastifyRequest, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<void> {
    const b = readBody(body, ['state']);
    const id = requireStreamId(b.stream_id);
    await this.run(request, reply, (meta) => new RequestSsfVerificationCommand(id, b.state, meta));
  }

  private async run(request: FastifyRequest, reply: FastifyReply, build: (meta: ReturnType<typeof commandMetadata>) => SsfStreamCommandMessage): Promise<SsfStreamResult> {
    const done: SsfStreamResult = await this.commandBus.execute(build(commandMetadata(request, actorOf(request))));
    if (done.position !== undefined) reply.header('x-event-position', String(done.position));
    return done;
  }

  private transmitterValues() {
    return { iss: this.config.issuer, minVerificationInterval: this.config.ssfMinVerificationIntervalSeconds };
  }

  private config_({ state }: { state: SsfStreamState }): SsfStreamConfigWire {
    return toWireConfig(state, this.config.issuer, this.config.ssfMinVerificationIntervalSeconds);
  }
}
