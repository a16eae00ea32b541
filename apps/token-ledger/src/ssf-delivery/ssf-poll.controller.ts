import { Body, Controller, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { SSF_POLL } from '@token-ledger/domain';
import type { PollRequest } from '@token-ledger/signals';
import { ApiKeyGuard, RequireScope } from '../api-keys/api-key.guard';
import { LEDGER_CONFIG } from '../ledger/tokens';
import { Inject } from '@nestjs/common';
import type { LedgerConfig } from '../config/ledger-config';
import { ProblemError } from '../http/problem';
import { SsfDelivery } from './ssf-delivery';

const DEFAULT_MAX_EVENTS = 100;
const MAX_EVENTS = 1000;
/** While a long poll waits, it also looks every so often: another instance may have written the SETs. */
const RECHECK_MS = 1000;

interface PollBody {
  maxEvents?: number;
  returnImmediately?: boolean;
  ack?: string[];
  setErrs?: Record<string, { err: string; description?: string }>;
}

/** RFC 8936 poll delivery of a poll stream's SETs (its `delivery.endpoint_url`). */
@ApiTags('ssf')
@ApiBearerAuth()
@UseGuards(ApiKeyGuard)
@Controller('ssf/poll')
export class SsfPollController {
  constructor(
    private readonly delivery: SsfDelivery,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
  ) {}

  @Post(':streamId')
  @RequireScope('ssf:read')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Poll a stream for SETs (RFC 8936)',
    description:
      'Acknowledged SETs (`ack`) and SETs reported in `setErrs` are removed first; then up to `maxEvents` pending SETs are returned in order, ' +
      'each as a signed JWT (typ secevent+jwt) under its jti. Unacknowledged SETs are returned again by the next poll. With ' +
      '`returnImmediately: false` (the default) an empty answer waits for new SETs (long poll, LEDGER_SSF_POLL_WAIT_MS). 404 for an unknown ' +
      'stream, 400 for a push stream.',
  })
  @ApiBody({
    schema: {
      type: 'object',
      properties: {
        maxEvents: { type: 'integer', minimum: 0, maximum: MAX_EVENTS },
        returnImmediately: { type: 'boolean' },
        ack: { type: 'array', items: { type: 'string' } },
        setErrs: { type: 'object', additionalProperties: { type: 'object', properties: { err: { type: 'string' }, description: { type: 'string' } } } },
      },
    },
  })
  @ApiOkResponse({ schema: { type: 'object', properties: { sets: { type: 'object', additionalProperties: { type: 'string' } }, moreAvailable: { type: 'boolean' } } } })
  async poll(@Param('streamId') streamId: string, @Body() body: unknown): Promise<{ sets: Record<string, string>; moreAvailable: boolean }> {
    const input = parsePollBody(body);
    await this.delivery.ready();
    const stream = await this.delivery.stream(streamId);
    if (!stream) throw new ProblemError(404, 'Not Found', `no SSF stream ${streamId}`);
    if (stream.method !== SSF_POLL) throw new ProblemError(400, 'Bad Request', `stream ${streamId} uses push delivery; it cannot be polled`);
    const request: PollRequest = {
      maxEvents: input.maxEvents ?? DEFAULT_MAX_EVENTS,
      ack: input.ack ?? [],
      setErrs: input.setErrs ?? {},
    };
    let result = await this.delivery.poll(streamId, request);
    const m = this.delivery.metrics.polls;
    if (result.acked) m.inc({ outcome: 'acked' }, result.acked);
    if (result.errored) m.inc({ outcome: 'set_error' }, result.errored);
    const deadline = Date.now() + this.config.ssfDelivery.pollWaitMs;
    const longPoll = input.returnImmediately !== true && request.maxEvents > 0;
    while (longPoll && result.entries.length === 0 && Date.now() < deadline) {
      await this.delivery.waitForRows(streamId, Math.min(RECHECK_MS, deadline - Date.now()));
      result = await this.delivery.poll(streamId, { ...request, ack: [], setErrs: {} });
    }
    const sets: Record<string, string> = {};
    for (const entry of result.entries) sets[entry.jti] = await this.delivery.sign(entry);
    if (result.entries.length) m.inc({ outcome: 'returned' }, result.entries.length);
    return { sets, moreAvailable: result.moreAvailable };
  }
}

function parsePollBody(body: unknown): PollBody {
  const bad = (detail: string) => new ProblemError(400, 'Bad Request', detail);
  if (body === undefined || body === null || body === '') return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw bad('the body must be a JSON object (RFC 8936 §2.4)');
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b)) {
    if (!['maxEvents', 'returnImmediately', 'ack', 'setErrs'].includes(key)) throw bad(`unknown member ${key}`);
  }
  if (b.maxEvents !== undefined && (!Number.isInteger(b.maxEvents) || (b.maxEvents as number) < 0 || (b.maxEvents as number) > MAX_EVENTS)) {
    throw bad(`maxEvents must be a whole number from 0 to ${MAX_EVENTS}`);
  }
  if (b.returnImmediately !== undefined && typeof b.returnImmediately !== 'boolean') throw bad('returnImmediately must be a boolean');
  if (b.ack !== undefined && (!Array.isArray(b.ack) || b.ack.length > MAX_EVENTS || !b.ack.every((j) => typeof j === 'string' && j.length <= 256))) {
    throw bad(`ack must be an array of at most ${MAX_EVENTS} jti strings`);
  }
  if (b.setErrs !== undefined) {
    if (typeof b.setErrs !== 'object' || b.setErrs === null || Array.isArray(b.setErrs) || Object.keys(b.setErrs).length > MAX_EVENTS) {
      throw bad('setErrs must be an object of jti → {err, description}');
    }
    for (const [jti, e] of Object.entries(b.setErrs)) {
      if (jti.length > 256 || typeof e !== 'object' || e === null || typeof (e as { err?: unknown }).err !== 'string') throw bad(`setErrs.${jti.slice(0, 40)} must be {err, description}`);
    }
  }
  return b as PollBody;
}
