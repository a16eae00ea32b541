import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from 'pino';
import type { PoisonRecord } from '@token-ledger/messaging';

/** Prometheus metrics of one app instance (its own registry, so tests can run several apps). */
export class LedgerMetrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'token_ledger_http_requests_total',
    help: 'HTTP requests by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'token_ledger_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly refreshes = new Counter({
    name: 'token_ledger_refresh_total',
    help: 'refresh_token grants by outcome (rotated, replayed, or the OAuth error)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly apiAuthentications = new Counter({
    name: 'token_ledger_api_auth_total',
    help: '/v1 authentications by outcome: ok, unauthenticated (401: no, unknown, revoked or expired key), forbidden (403: missing scope)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly rejectionsTallied = new Counter({
    name: 'token_ledger_refresh_rejections_tallied_total',
    help: 'Refused refreshes recorded in aggregate (tallied) rather than one event each, or dropped when too many families waited',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly concurrencyRetries = new Counter({
    name: 'token_ledger_concurrency_retries_total',
    help: 'Decisions re-made after losing an optimistic-concurrency race on a stream',
    registers: [this.registry],
  });
  readonly reconciledRevocations = new Counter({
    name: 'token_ledger_subject_revocations_reconciled_total',
    help: 'Subject revocations left pending (a crash mid-RevokeSubject) that the reconciler finished',
    registers: [this.registry],
  });

  readonly rateLimited = new Counter({
    name: 'token_ledger_rate_limited_total',
    help: 'Requests answered 429 by limiter (auth_failures, oauth, v1)',
    labelNames: ['limiter'] as const,
    registers: [this.registry],
  });
  readonly rateLimitStoreErrors = new Counter({
    name: 'token_ledger_rate_limit_store_errors_total',
    help: 'Rate-limit decisions taken on local counters because Redis could not be reached, by limiter',
    labelNames: ['limiter'] as const,
    registers: [this.registry],
  });
  readonly poisonRecords = new Counter({
    name: 'token_ledger_poison_records_total',
    help: 'Records on events.v1 that are not public events, sent to the dead-letter topic and skipped, by consumer and reason (empty, not-json, not-an-event)',
    labelNames: ['consumer', 'reason'] as const,
    registers: [this.registry],
  });

  readonly projectedEvents = new Counter({
    name: 'token_ledger_projected_events_total',
    help: 'Events applied to the read models',
    registers: [this.registry],
  });
  readonly projectionLag = new Histogram({
    name: 'token_ledger_projection_lag_seconds',
    help: 'Time from an event being recorded to its batch being committed to the read models',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly anomalies = new Counter({
    name: 'token_ledger_anomalies_total',
    help: 'Anomalies detected (each recorded once) by rule, severity and action',
    labelNames: ['rule', 'severity', 'action'] as const,
    registers: [this.registry],
  });
  readonly detectionLag = new Histogram({
    name: 'token_ledger_anomaly_detection_lag_seconds',
    help: 'Time from the triggering event (occurredAt) to its AnomalyDetected being appended',
    buckets: [0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  /**
   * A consumer dead-lettered a record of events.v1: count it and log where it was and why — never
   * its value, which could hold anything (a token, a secret, megabytes of garbage).
   */
  reportPoison(logger: Logger, poison: PoisonRecord, consumer: string): void {
    this.poisonRecords.inc({ consumer, reason: poison.reason });
    const { topic, partition, offset, reason, groupId, deadLetterTopic } = poison;
    logger.warn({ topic, partition, offset, reason, groupId, deadLetterTopic }, `${consumer}: record ${topic}/${partition}@${offset} is not a public event (${reason}); sent to ${deadLetterTopic} and skipped`);
  }

  /** Read at scrape time, so it is exact whenever Prometheus looks. */
  trackProjectionLag(read: () => Promise<{ positionsBehind: number; secondsBehind: number }>): void {
    let last: Promise<{ positionsBehind: number; secondsBehind: number }> | undefined;
    const sample = () => (last ??= read().finally(() => setImmediate(() => (last = undefined))));
    new Gauge({
      name: 'token_ledger_projection_behind_positions',
      help: 'Store positions not yet applied to the read models (events on SQL stores, log bytes on EventStoreDB)',
      registers: [this.registry],
      async collect() {
        this.set((await sample()).positionsBehind);
      },
    });
    new Gauge({
      name: 'token_ledger_projection_behind_seconds',
      help: 'Age of the oldest event not yet applied to the read models',
      registers: [this.registry],
      async collect() {
        this.set((await sample()).secondsBehind);
      },
    });
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'token_ledger_' });
  }
}
