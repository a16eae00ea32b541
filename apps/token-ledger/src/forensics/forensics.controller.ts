import { Controller, Get, Param, Query, UseGuards } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { isFamilyId } from '@token-ledger/domain';
import { parseIsoInstant } from '@token-ledger/forensics';
import { ApiKeyGuard, RequireScope } from '../api-keys/api-key.guard';
import { ProblemError } from '../http/problem';
import { FamilyTimelineQuery, type PlacedTimeline } from './family-timeline.query';
import { FamilyVerificationQuery, type FamilyVerification } from './family-verification.query';

const DEFAULT_LIMIT = 1000;
const MAX_LIMIT = 10000;

/** Forensics (SPEC §6): replay from the event store. */
@ApiTags('forensics')
@ApiBearerAuth()
@UseGuards(ApiKeyGuard)
@RequireScope('audit:read')
@Controller('v1')
export class ForensicsController {
  constructor(private readonly queryBus: QueryBus) {}

  /** A family's ordered events up to `at` and its state as of `at` (default: now). */
  @Get('families/:id/timeline')
  @ApiQuery({ name: 'at', required: false, description: 'ISO-8601 instant with offset, e.g. 2024-05-01T12:00:00Z (default: now)' })
  @ApiQuery({ name: 'cursor', required: false, description: 'nextCursor of a previous answer' })
  @ApiQuery({ name: 'limit', required: false, description: `events per answer, 1–${MAX_LIMIT} (default ${DEFAULT_LIMIT})` })
  async timeline(@Param('id') id: string, @Query() query: Record<string, unknown>): Promise<PlacedTimeline> {
    const at = query.at === undefined ? undefined : parseInstant(single(query.at, 'at'));
    const cursor = query.cursor === undefined ? undefined : parseInteger(single(query.cursor, 'cursor'), 'cursor', 0, Number.MAX_SAFE_INTEGER);
    const limit = query.limit === undefined ? DEFAULT_LIMIT : parseInteger(single(query.limit, 'limit'), 'limit', 1, MAX_LIMIT);
    const unknown = Object.keys(query).filter((k) => !['at', 'cursor', 'limit'].includes(k));
    if (unknown.length > 0) throw invalid(`unknown query parameter(s): ${unknown.join(', ')}`);
    const timeline = isFamilyId(id) ? await this.queryBus.execute(new FamilyTimelineQuery(id, at, cursor, limit)) : null;
    if (!timeline) throw new ProblemError(404, 'Not Found', `no family ${id}`);
    return timeline;
  }

  /** The hash chain of the family's stream, checked now (the CLI's `verify --family`). */
  @Get('families/:id/verification')
  @ApiOperation({
    summary: "Verify a family's hash chain",
    description:
      'status ok: hashes, links and head MACs (LEDGER_KEK) check out; unkeyed: intact but only self-consistent (no LEDGER_KEK, or events older than it); broken: problems name the kind, revision and position.',
  })
  @ApiOkResponse({ description: '{ familyId, status, checkedEvents, problemCount, problems: [{ kind, revision, position, detail }] }' })
  @ApiNotFoundResponse({ description: 'no such family' })
  async verification(@Param('id') id: string): Promise<FamilyVerification> {
    const report = isFamilyId(id) ? await this.queryBus.execute(new FamilyVerificationQuery(id)) : null;
    if (!report) throw new ProblemError(404, 'Not Found', `no family ${id}`);
    return report;
  }
}

function invalid(detail: string): ProblemError {
  return new ProblemError(400, 'Invalid query', detail, { errors: [detail] });
}

function single(value: unknown, name: string): string {
  if (typeof value !== 'string') throw invalid(`${name} must be given once`);
  return value;
}

/** Epoch ms of an ISO-8601 instant with offset (see parseIsoInstant); 400 otherwise. */
export function parseInstant(raw: string): number {
  const ms = parseIsoInstant(raw);
  if (ms === undefined) {
    throw invalid(`at must be an ISO-8601 date-time with offset, e.g. 2024-05-01T12:00:00Z (got ${JSON.stringify(raw.slice(0, 64))})`);
  }
  return ms;
}

function parseInteger(raw: string, name: string, min: number, max: number): number {
  const n = /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw invalid(`${name} must be an integer from ${min} to ${max}`);
  return n;
}
