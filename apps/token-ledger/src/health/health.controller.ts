import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import { ApiExcludeEndpoint, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { EventStore } from '@token-ledger/event-store';
import { EVENT_STORE, READ_MODELS, type ReadModels } from '../ledger/tokens';
import { LedgerMetrics, secondsBehind } from './metrics';
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
    const behind = await secondsBehind(this.store, position);
    return { position, head: behind.head, positionsBehind: Math.max(0, behind.head - position), secondsBehind: behind.seconds };
  }

  /** Liveness: the process answers. */
  @Get('healthz')
  @ApiOkResponse({ description: 'the process is alive' })
  healthz(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /**
   * Readiness: the event store answers, and Kafka when configured. Each check is bounded well under
   * 2 s, so a probe turns unready within that of a dependency going away, however it goes (refused,
   * reset, or silent); nothing is cached, so the next probe after it is back is ready again.
   */
  @Get('readyz')
  @ApiOkResponse({ description: 'ready to serve; 503 otherwise' })
  async readyz(@Res() reply: FastifyReply): Promise<void> {
    const check = async (probe: () => Promise<unknown>): Promise<string> => {
      try {
        await withTimeout(probe(), READINESS_CHECK_MS);
        return 'ok';
      } catch (error) {
        return `unavailable: ${error instanceof Error ? error.message : String(error)}`;
      }
    };
    const [store, kafka] = await Promise.all([
      check(() => this.store.ping()),
      this.revocations.kafkaEnabled
        ? check(async () => {
            if (!(await this.revocations.kafkaReachable())) throw new Error('no broker answered');
          })
        : undefined,
    ]);
    const checks: Record<string, string> = kafka === undefined ? { store } : { store, kafka };
    const ready = Object.values(checks).every((c) => c === 'ok');
    // Lag is reported, not judged: a rebuilding node still serves the command side correctly.
    const projections = ready ? await withTimeout(this.projectionLag(), READINESS_CHECK_MS).catch(() => undefined) : undefined;
    reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks, projections });
  }

  @Get('metrics')
  @Header('cache-control', 'no-store')
  @ApiExcludeEndpoint()
  async metricsText(@Res() reply: FastifyReply): Promise<void> {
    reply.type(this.metrics.registry.contentType).send(await this.metrics.registry.metrics());
  }
}

/** Bound on each readiness check: a probe answers within about this, well under the 2 s promised. */
export const READINESS_CHECK_MS = 1000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
