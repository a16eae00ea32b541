import type { Logger } from 'pino';
import type { LedgerConfig } from './config/ledger-config';
import { createApp } from './create-app';
import { startBackgroundWork } from './background';
import { openRuntime } from './runtime';
import { stopTracing } from './tracing/tracing';

/** `token-ledger serve`: API, projections and the expiry sweeper in one process. */
export async function serve(config: LedgerConfig, logger: Logger): Promise<void> {
  const runtime = await openRuntime(config, logger);
  const app = await createApp(runtime);
  if (!config.adminToken) logger.warn('LEDGER_ADMIN_TOKEN is not set: the /v1 admin API answers 401 until it is');
  const stopBackground = await startBackgroundWork(app, runtime);
  await app.listen({ port: config.port, host: config.host });
  logger.info({ port: config.port, host: config.host, store: config.store, issuer: config.issuer }, 'token-ledger listening');

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    await stopBackground();
    await app.close();
    await runtime.close();
    // Spans still buffered (the batch processor's last interval) go out before the exit.
    await stopTracing();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}
