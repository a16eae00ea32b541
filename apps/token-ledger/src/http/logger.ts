import type { LoggerService } from '@nestjs/common';
import { trace } from '@opentelemetry/api';
import pino, { type Logger } from 'pino';
import { tracingStarted } from '../tracing/tracing';

/**
 * Structured JSON logs (pino). Paths that could ever carry a credential are redacted as a second
 * line of defence; the first is that nothing logs request bodies or token values at all.
 */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'token-ledger' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // With tracing on, a line written inside a span names it (trace_id, span_id: what collectors
    // join logs to traces by); off, lines stay as they were (the request's reqId where logged).
    ...(tracingStarted() ? { mixin: activeSpanIds } : {}),
    redact: {
      paths: ['refresh_token', 'access_token', 'client_secret', 'secret', 'token', 'authorization', '*.refresh_token', '*.authorization', '*.client_secret', '*.secret', '*.token'],
      censor: '[redacted]',
    },
  });
}

function activeSpanIds(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

/** Nest's logger interface over pino, so framework messages are structured too. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}
  log(message: unknown, context?: string): void {
    this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string): void {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string): void {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string): void {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.logger.trace({ context }, String(message));
  }
}
