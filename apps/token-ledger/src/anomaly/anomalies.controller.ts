import { Body, Controller, HttpCode, Param, Post, Req, Res, UseGuards } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiBody, ApiConflictResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength } from 'class-validator';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ANOMALY_NOTE_MAX } from '@token-ledger/domain';
import { ApiKeyGuard, RequireScope } from '../api-keys/api-key.guard';
import { actorOf } from '../api-keys/principal';
import { ProblemError } from '../http/problem';
import { commandMetadata } from '../http/request-context';
import { validateInput } from '../http/validate';
import { TriageAnomalyCommand } from '../ledger/commands/triage-anomaly.command';

export class TriageAnomalyRequest {
  @ApiPropertyOptional({ maxLength: ANOMALY_NOTE_MAX, description: 'why, for the audit trail' })
  @IsOptional() @IsString() @MaxLength(ANOMALY_NOTE_MAX) note?: string;
}

export class TriagedAnomalyView {
  @ApiProperty() anomalyId!: string;
  @ApiProperty({ enum: ['acknowledged', 'dismissed'] }) status!: 'acknowledged' | 'dismissed';
  @ApiProperty({ description: 'the acting principal: api-key:<keyId> or admin-token' }) by!: string;
  @ApiProperty({ description: 'ISO-8601' }) at!: string;
}

/**
 * Anomaly triage (issue 18): acknowledge or dismiss, recorded as AnomalyAcknowledged /
 * AnomalyDismissed on the anomaly's stream (so the audit view shows who and why).
 */
@ApiTags('anomalies')
@ApiBearerAuth()
@UseGuards(ApiKeyGuard)
@RequireScope('anomalies:triage')
@Controller('v1/anomalies')
export class AnomaliesController {
  constructor(private readonly commandBus: CommandBus) {}

  @Post(':anomalyId/acknowledge')
  @HttpCode(200)
  @ApiOperation({ summary: 'Acknowledge an open anomaly', description: 'open → acknowledged; anything else is 409 naming the current status.' })
  @ApiBody({ type: TriageAnomalyRequest, required: false })
  @ApiOkResponse({ type: TriagedAnomalyView })
  @ApiNotFoundResponse({ description: 'no such anomaly' })
  @ApiConflictResponse({ description: 'already acknowledged or dismissed (currentStatus)' })
  acknowledge(@Req() request: FastifyRequest, @Param('anomalyId') anomalyId: string, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<TriagedAnomalyView> {
    return this.triage(request, anomalyId, 'acknowledge', body, reply);
  }

  @Post(':anomalyId/dismiss')
  @HttpCode(200)
  @ApiOperation({ summary: 'Dismiss an anomaly', description: 'open or acknowledged → dismissed, which is final; a dismissed anomaly is 409.' })
  @ApiBody({ type: TriageAnomalyRequest, required: false })
  @ApiOkResponse({ type: TriagedAnomalyView })
  @ApiNotFoundResponse({ description: 'no such anomaly' })
  @ApiConflictResponse({ description: 'already dismissed (currentStatus)' })
  dismiss(@Req() request: FastifyRequest, @Param('anomalyId') anomalyId: string, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<TriagedAnomalyView> {
    return this.triage(request, anomalyId, 'dismiss', body, reply);
  }

  private async triage(request: FastifyRequest, anomalyId: string, action: 'acknowledge' | 'dismiss', body: unknown, reply: FastifyReply): Promise<TriagedAnomalyView> {
    const input = validateInput(TriageAnomalyRequest, body ?? {});
    if (!input.ok) throw new ProblemError(400, 'Invalid request', input.errors.join('; '), { errors: input.errors });
    const actor = actorOf(request);
    const done = await this.commandBus.execute(new TriageAnomalyCommand(anomalyId, action, input.value.note, { ...commandMetadata(request, actor), actor }));
    if (done.position !== undefined) reply.header('x-event-position', String(done.position));
    return { anomalyId: done.anomalyId, status: done.status, by: done.by, at: done.at };
  }
}
