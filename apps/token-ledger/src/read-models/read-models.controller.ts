import { Controller, Get, Param, Query, Res, UseGuards } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { parseIsoInstant } from '@token-ledger/forensics';
import { decodeCursor, decodeFamilyCursor, MAX_OVERVIEW_BUCKETS, overviewBuckets } from '@token-ledger/projections';
import { ApiKeyGuard, RequireScope } from '../api-keys/api-key.guard';
import { ProblemError } from '../http/problem';
import { validateInput } from '../http/validate';
import {
  GetFamilyQuery,
  ListSubjectFamiliesQuery,
  OverviewQuery,
  SearchAnomaliesQuery,
  SearchAuditQuery,
  type Positioned,
} from './read-model.queries';
import { AnomaliesQueryDto, AuditQueryDto, OverviewQueryDto, PositionQuery, SubjectFamiliesQuery } from './read-models.dto';

const DAY_MS = 86_400_000;

const DEFAULT_LIMIT = 50;

/** Queries answered from the read models (SPEC §3); every answer names the position it reflects. */
@ApiTags('read models')
@ApiBearerAuth()
@UseGuards(ApiKeyGuard)
@RequireScope('audit:read')
@Controller('v1')
export class ReadModelsController {
  constructor(private readonly queryBus: QueryBus) {}

  @Get('families/:id')
  async family(@Param('id') id: string, @Query() query: unknown, @Res() reply: FastifyReply): Promise<void> {
    const q = parsed(PositionQuery, query);
    const result = await this.queryBus.execute(new GetFamilyQuery(id, q.minPosition));
    if (!result.value) throw new ProblemError(404, 'Not Found', `no family ${id}`, { position: result.position });
    send(reply, result);
  }

  @Get('subjects/:sub/families')
  async subjectFamilies(@Param('sub') subject: string, @Query() query: unknown, @Res() reply: FastifyReply): Promise<void> {
    const q = parsed(SubjectFamiliesQuery, query);
    const cursor = q.cursor === undefined ? undefined : decodeFamilyCursor(q.cursor) ?? badCursor();
    send(reply, await this.queryBus.execute(new ListSubjectFamiliesQuery({ subject, status: q.status, cursor, limit: q.limit ?? DEFAULT_LIMIT }, q.minPosition)));
  }

  @Get('audit')
  async audit(@Query() query: unknown, @Res() reply: FastifyReply): Promise<void> {
    const q = parsed(AuditQueryDto, query);
    const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor) ?? badCursor();
    const { minPosition, limit, order, ...filters } = q;
    send(reply, await this.queryBus.execute(new SearchAuditQuery({ ...filters, cursor, limit: limit ?? DEFAULT_LIMIT, order: order ?? 'desc' }, minPosition)));
  }

  @Get('anomalies')
  async anomalies(@Query() query: unknown, @Res() reply: FastifyReply): Promise<void> {
    const q = parsed(AnomaliesQueryDto, query);
    const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor) ?? badCursor();
    const { minPosition, limit, ...filters } = q;
    send(reply, await this.queryBus.execute(new SearchAnomaliesQuery({ ...filters, cursor, limit: limit ?? DEFAULT_LIMIT }, minPosition)));
  }

  @Get('stats/overview')
  @ApiOperation({
    summary: 'Refreshes, reuse detections, revocations and anomalies over time',
    description: `Counted from the audit view per UTC bucket in [from, to), every bucket listed (zeros included); at most ${MAX_OVERVIEW_BUCKETS} buckets.`,
  })
  @ApiOkResponse({ description: '{ from, to, bucket, series: [{ at, refreshes, reuseDetections, revocations, anomalies }] }' })
  async overview(@Query() query: unknown, @Res() reply: FastifyReply): Promise<void> {
    const q = parsed(OverviewQueryDto, query);
    const to = q.to === undefined ? Date.now() : instant(q.to, 'to');
    const from = q.from === undefined ? to - DAY_MS : instant(q.from, 'from');
    const bucket = q.bucket ?? 'hour';
    if (from >= to) throw invalidQuery('from must be before to');
    if (overviewBuckets(from, to, bucket).length > MAX_OVERVIEW_BUCKETS) {
      throw invalidQuery(`that is more than ${MAX_OVERVIEW_BUCKETS} ${bucket} buckets: shorten the range or use a wider bucket`);
    }
    send(reply, await this.queryBus.execute(new OverviewQuery({ from, to, bucket }, q.minPosition)));
  }
}

function instant(raw: string, name: string): number {
  const ms = parseIsoInstant(raw);
  if (ms === undefined) throw invalidQuery(`${name} must be an ISO-8601 date-time with offset, e.g. 2024-05-01T12:00:00Z`);
  return ms;
}

function invalidQuery(detail: string): ProblemError {
  return new ProblemError(400, 'Invalid query', detail, { errors: [detail] });
}

function send<T>(reply: FastifyReply, result: Positioned<T>): void {
  reply.header('x-projection-position', String(result.position)).send(result.value);
}

function parsed<T extends object>(cls: new () => T, query: unknown): T {
  const result = validateInput(cls, { ...(query as object) });
  if (!result.ok) throw new ProblemError(400, 'Invalid query', result.errors.join('; '), { errors: result.errors });
  return result.value;
}

function badCursor(): never {
  throw new ProblemError(400, 'Invalid query', 'cursor is not one this API returned');
}
