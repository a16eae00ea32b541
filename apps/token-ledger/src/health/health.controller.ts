import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import { ApiExcludeEndpoint, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { EventStore } from '@token-ledger/event-store';
import { EVENT_STORE } from '../ledger/tokens';
import { LedgerMetrics } from './metrics';

@ApiTags('operations')
@Controller()
export class HealthController {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    private readonly metrics: LedgerMetrics,
  ) {}

  /** Liveness: the process answers. */
  @Get('healthz')
  @ApiOkResponse({ description: 'the process is alive' })
  healthz(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Readiness: the event store answers (and, later, Kafka when configured). */
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
    reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
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
