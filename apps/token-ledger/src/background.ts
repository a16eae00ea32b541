import type { INestApplication } from '@nestjs/common';
import { AnomalyService } from './anomaly/anomaly.service';
import { ExpirySweeper } from './read-models/expiry-sweeper';
import { SubjectRevocationReconciler } from './ledger/subject-revocation-reconciler';
import { RevocationsService } from './revocations';
import type { LedgerRuntime } from './runtime';
import { SsfDelivery } from './ssf-delivery/ssf-delivery';

/**
 * The work `serve` does besides answering HTTP: projections, the revocation feed (and Kafka relay),
 * the anomaly engine, the expiry sweeper and the subject-revocation reconciler. Split out so a
 * process can run the API without them (and tests can start exactly what they need).
 */
export async function startBackgroundWork(app: INestApplication, runtime: LedgerRuntime): Promise<() => Promise<void>> {
  await runtime.readModels.runner.start();
  // Revocation feed for SSE, and with KAFKA_BROKERS the relay and the propagator.
  const revocations = app.get(RevocationsService);
  await revocations.start();
  // The anomaly engine (rules over events.v1, or in-process without Kafka).
  const anomalies = app.get(AnomalyService);
  await anomalies.start();
  const sweeper = app.get(ExpirySweeper);
  sweeper.start();
  // Finishes subject revocations a crash left pending (here or on another instance).
  const reconciler = app.get(SubjectRevocationReconciler);
  reconciler.start();
  // OpenID Shared Signals: the outbox consumer and the pusher (docs/ssf-delivery.md).
  const ssf = app.get(SsfDelivery);
  await ssf.start();
  return async () => {
    await ssf.stop();
    await reconciler.stop();
    await anomalies.stop();
    await revocations.stop();
    await sweeper.stop();
    await runtime.readModels.runner.stop();
  };
}
