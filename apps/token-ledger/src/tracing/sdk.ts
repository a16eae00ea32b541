/**
 * The OpenTelemetry Node SDK, loaded only when tracing is on (tracing.ts). Everything but the
 * instrumentations comes from the OTEL_* variables: exporter and endpoint (OTLP; protocol
 * `http/protobuf` by default, `http/json` or `grpc` by OTEL_EXPORTER_OTLP_PROTOCOL), service name
 * and resource, sampler, batch processor delays, propagators (W3C trace context by default).
 * Traces only: the ledger's metrics are Prometheus' (/metrics) and its logs go to stdout.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { NodeSDK } from '@opentelemetry/sdk-node';

export function startSdk(): { shutdown(): Promise<void> } {
  const sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME ? undefined : 'token-ledger',
    instrumentations: [
      // A server span per request (named `<METHOD> <route>` by app-spans.ts). Probes and scrapes
      // are not traced. (The webhook notifier uses fetch, which this does not instrument.)
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => /^\/(healthz|readyz|metrics)(\?|$)/.test(req.url ?? ''),
      }),
      // A span per query, below eventstore.append and the loads; none outside a trace, and no
      // span per pool checkout (the query's own duration includes any wait that matters).
      new PgInstrumentation({ requireParentSpan: true, ignoreConnectSpans: true }),
    ],
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  // Store threads (projection, anomaly, Kafka) run their own module graph: they start it too.
  // Required only now: libs/event-store loads pg, which the pg instrumentation must see load.
  (require('@token-ledger/event-store') as typeof import('@token-ledger/event-store')).preloadInStoreThreads(registerModule());
  if (!isMainThread) {
    // A thread ends when its work is stopped (nothing holds its event loop): flush before that.
    let flushed = false;
    process.on('beforeExit', () => {
      if (flushed) return;
      flushed = true;
      void sdk.shutdown().catch(() => undefined);
    });
  }
  return sdk;
}

/**
 * register.ts as the store threads load it: the compiled .js next to this file, or the .ts source
 * when running from sources (tests; the thread has scripts/ts-register.js preloaded then).
 */
function registerModule(): string {
  const js = path.join(__dirname, 'register.js');
  return existsSync(js) ? js : path.join(__dirname, 'register.ts');
}
