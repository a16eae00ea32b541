import { Controller, Get, Param, Query, Res, UseGuards } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { decodeCursor, decodeFamilyCursor } from '@token-ledger/projections';
import { ApiKeyGuard, RequireScope } from '../api-keys/api-key.guard';
import { ProblemError } from '../http/problem';
import { validateInput } from '../http/validate';
import {
  GetFamilyQuery,
  ListSubjectFamiliesQuery,
  SearchAnomaliesQuery,
  SearchAuditQuery,
  type Positioned,
} from './read-model.queries';
import { AnomaliesQueryDto, AuditQueryDto, PositionQuery, SubjectFamiliesQuery } from './read-models.dto';

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
