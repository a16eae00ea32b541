import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Module } from '@nestjs/common';
import { KeyRing, LedgerSecrets } from '@token-ledger/crypto';
import { ApiKeyGuard } from '../../apps/token-ledger/src/api-keys/api-key.guard';
import { ApiKeyLimiter, AuthFailureLimiter } from '../../apps/token-ledger/src/rate-limit';
import { AggregateRepository } from '../../apps/token-ledger/src/ledger/aggregate-repository';
import { apiKeyAggregate } from '../../apps/token-ledger/src/ledger/aggregates';
import { ApiKeyRegistry } from '../../apps/token-ledger/src/ledger/api-key-registry';
import { LedgerMetrics } from '../../apps/token-ledger/src/health/metrics';
import { LedgerExceptionFilter } from '../../apps/token-ledger/src/http/exception.filter';
import { API_KEY_REPOSITORY, EVENT_STORE, LEDGER_CONFIG } from '../../apps/token-ledger/src/ledger/tokens';
import { RevocationsController, RevocationsService, REVOCATIONS_OPTIONS, type RevocationsOptions } from '../../apps/token-ledger/src/revocations';
import type { Ledger } from '../support/ledger-harness';

/**
 * The revocations controller and service beside a harness ledger (same config and store), until
 * they are registered in AppModule: a second Nest app on its own port.
 */
export async function startRevocationsApp(ledger: Ledger, options: RevocationsOptions = {}): Promise<{ baseUrl: string; service: RevocationsService; close(): Promise<void> }> {
  @Module({
    controllers: [RevocationsController],
    providers: [
      { provide: LEDGER_CONFIG, useValue: ledger.runtime.config },
      { provide: EVENT_STORE, useValue: ledger.store },
      { provide: REVOCATIONS_OPTIONS, useValue: options },
      { provide: KeyRing, useValue: ledger.runtime.keyRing },
      { provide: LedgerSecrets, useValue: ledger.runtime.secrets },
      { provide: LedgerMetrics, useValue: ledger.runtime.metrics },
      { provide: AuthFailureLimiter, useValue: ledger.runtime.rateLimits.authFailures },
      { provide: ApiKeyLimiter, useValue: ledger.runtime.rateLimits.v1 },
      { provide: API_KEY_REPOSITORY, useValue: new AggregateRepository(ledger.store, apiKeyAggregate) },
      ApiKeyRegistry,
      ApiKeyGuard,
      RevocationsService,
    ],
  })
  class RevocationsTestModule {}
  const app = await NestFactory.create<NestFastifyApplication>(RevocationsTestModule, new FastifyAdapter(), { logger: false });
  app.useGlobalFilters(new LedgerExceptionFilter());
  await app.init();
  const service = app.get(RevocationsService);
  await service.start();
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.getHttpServer().address() as { port: number };
  return {
    baseUrl: `http://127.0.0.1:${address.port}`,
    service,
    async close() {
      await service.stop();
      await app.close();
    },
  };
}
