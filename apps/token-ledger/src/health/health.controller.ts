import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import { ApiExcludeEndpoint, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { EventStore } from '@token-ledger/event-store';
import { EVENT_STORE, READ_MODELS, type ReadModels } from '../ledger/tokens';
import { LedgerMetrics } from './metrics';
import { RevocationsService } from '../revocations';

@ApiTags('operations')
@Controller()
export class HealthController {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(READ_MODELS) private readonly readModels: ReadModels,
    private readonly metrics: LedgerMetrics,
    private readonly revocations: RevocationsService,
  ) {
    metrics.trackProjectionLag(() => this.projectionLag());
  }

  /**
   * How far the read models are behind the store: in positions (events on the SQL stores, log bytes on
   * EventStoreDB), and seconds since the oldest unprojected event — the one to alert on.
   */
  async projectionLag(): Promise<{ position: number; head: number; positionsBehind: number; secondsBehind: number }> {
    const position = this.readModels.runner.position;
    const head = await this.store.headPosition();
    const [next] = head > position ? await this.store.readAll({ after: position, maxCount: 1 }) : [];
    const secondsBehind = next ? Math.max(0, (Date.now() - next.recordedAt.getTime()) / 1000) : 0;
    return { position, head, positionsBehind: Math.max(0, head - position), secondsBehind };
  }

  /** Liveness: the process answers. */
  @Get('healthz')
  @ApiOkResponse({ description: 'the process is alive' })
  healthz(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Readiness: the event store answers, and Kafka when configured. */
  @Get('readyz')
  @ApiOkResponse({ description: 'ready to serve; 503 otherwise' })
  async readyz(@Res() reply: FastifyReply): Promise<void> {
    const checks: Record<string, string> = {};
    let ready = true;
    try {
      await withTimeout(this.store.ping(), 2000);
      checks.store = 'ok';
    } catch (error) {
      ready = false;
      checks.store = `unavailable: ${error instanceof Error ? error.message : String(error)}`;
    }
    if (this.revocations.kafkaEnabled) {
      try {
        if (!(await withTimeout(this.revocations.kafkaReachable(), 2000))) throw new Error('no broker answered');
        checks.kafka = 'ok';
      } catch (error) {
        ready = false;
        checks.kafka = `unavailable: ${error instanceof Error ? error.message : String(error)}`;
      }
    }
    // Lag is reported, not judged: a rebuilding node still serves the command side correctly.
    const projections = ready ? await this.projectionLag().catch(() => undefined) : undefined;
    reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks, projections });
  }

  @Get('metrics')
  @Header('cache-control', 'no-store')
  @ApiExcludeEndpoint()
  async metricsText(@Res() reply: FastifyReply): Promise<void> {
    reply.type(this.metrics.registry.contentType).send(await this.metrics.registry.metrics());
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
