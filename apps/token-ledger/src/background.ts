import type { INestApplication } from '@nestjs/common';
import { ExpirySweeper } from './read-models/expiry-sweeper';
import type { LedgerRuntime } from './runtime';

/**
 * The work `serve` does besides answering HTTP: projections and the expiry sweeper. Split out so a
 * process can run the API without them (and tests can start exactly what they need).
 */
export async function startBackgroundWork(app: INestApplication, runtime: LedgerRuntime): Promise<() => Promise<void>> {
  await runtime.readModels.runner.start();
  const sweeper = app.get(ExpirySweeper);
  sweeper.start();
  return async () => {
    await sweeper.stop();
    await runtime.readModels.runner.stop();
  };
}
