/**
 * OpenTelemetry tracing, configured only by the standard OTEL_* variables. Off unless an exporter
 * is named (OTEL_TRACES_EXPORTER, not `none`) or an OTLP endpoint is given
 * (OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), and always off with
 * OTEL_SDK_DISABLED=true. Off, the SDK is never loaded: the spans the code starts through
 * @opentelemetry/api are the API's no-ops, and events carry no trace context.
 *
 * This module imports nothing heavy, so it can run before Nest, pg and kafkajs are loaded: the
 * instrumentations (HTTP, pg) patch modules as they are required, so whatever loads before start()
 * goes unpatched (register.ts is the first import of the CLI and of every store thread).
 */
export function tracingWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((e) => e.trim()).filter(Boolean);
  if (exporters.length > 0) return !exporters.every((e) => e === 'none');
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

let running: { shutdown(): Promise<void> } | undefined;

/** Whether this thread started the SDK (the logger adds trace ids, the app adds its HTTP route hook). */
export function tracingStarted(): boolean {
  return running !== undefined;
}

/** Starts the SDK in this thread when the environment asks for it (idempotent). */
export function startTracing(): boolean {
  if (running || !tracingWanted()) return running !== undefined;
  // Lazy: the SDK and its exporters are only loaded when tracing is on.
  const { startSdk } = require('./sdk') as typeof import('./sdk');
  running = startSdk();
  return true;
}

/** Flushes what is buffered and stops the SDK (serve's shutdown; a thread's end). */
export async function stopTracing(): Promise<void> {
  const sdk = running;
  running = undefined;
  await sdk?.shutdown().catch(() => undefined);
}
