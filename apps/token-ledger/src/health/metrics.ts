import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from 'pino';
import type { LedgerEvent } from '@token-ledger/domain';
import type { EventStore } from '@token-ledger/event-store';
import type { PoisonRecord } from '@token-ledger/messaging';
import type { RepositoryObserver } from '../ledger/aggregate-repository';
import { BoundedLabel } from './bounded-label';

export interface LedgerMetricsOptions {
  /** LEDGER_METRICS_MAX_CLIENTS: client ids that keep their own label value; later ones are `_other`. */
  maxClients?: number;
}

/** token_ledger_refresh_total's result: 4xx are correct answers (the SLI counts only `error`). */
export type RefreshResult = 'success' | 'rejected' | 'error';

/**
 * Revocation reasons that keep their own label value (the domain's, and the app's client_disabled);
 * an admin may send any lower-case word, which would make the label unbounded, so others are `other`.
 */
const REVOCATION_REASONS = new Set(['logout', 'admin', 'password_change', 'anomaly', 'reuse_detected', 'limit_exceeded', 'subject_revoked', 'client_disabled']);
const revocationReason = (reason: string): string => (REVOCATION_REASONS.has(reason) ? reason : 'other');

export const DEFAULT_MAX_CLIENTS = 50;

/** Age of the first stored event after `position` (what a consumer there has still to see); 0 when caught up. */
export async function secondsBehind(store: Pick<EventStore, 'headPosition' | 'readAll'>, position: number): Promise<{ head: number; seconds: number }> {
  const head = await store.headPosition();
  const [next] = head > position ? await store.readAll({ after: position, maxCount: 1 }) : [];
  return { head, seconds: next ? Math.max(0, (Date.now() - next.recordedAt.getTime()) / 1000) : 0 };
}

/** What the relay reports each second: events published since the last report, its position, when it was last seen working (epoch ms). */
export interface RelayStats {
  published: number;
  position: number;
  aliveAt: number;
}

/** Prometheus metrics of one app instance (its own registry, so tests can run several apps). */
export class LedgerMetrics {
  readonly registry = new Registry();
  /** First-N-seen client ids (M6); bounded, so a scrape never grows with the number of clients. */
  private readonly clientLabel: BoundedLabel;
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
    // 0.3: the refresh latency SLO's bound (p95 < 300 ms) is a bucket edge, so its ratio is exact.
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly refreshes = new Counter({
    name: 'token_ledger_refresh_total',
    help: 'Answers of /oauth/token by outcome (rotated, replayed, or the OAuth error code; slow_down = 429) and result (success 2xx, rejected 4xx, error 5xx)',
    labelNames: ['outcome', 'result'] as const,
    registers: [this.registry],
  });
  readonly clientRefreshes = new Counter({
    name: 'token_ledger_client_refreshes_total',
    help: 'refresh_token grants of authenticated clients, by client id: the first LEDGER_METRICS_MAX_CLIENTS ids seen keep their id, all later ones are counted as _other',
    labelNames: ['client'] as const,
    registers: [this.registry],
  });
  readonly reuseDetections = new Counter({
    name: 'token_ledger_reuse_detections_total',
    help: 'Refresh-token reuse detected (an authentic older token presented): its family was revoked',
    registers: [this.registry],
  });
  readonly tokensIssued = new Counter({
    name: 'token_ledger_tokens_issued_total',
    help: 'Tokens issued by kind: family (a login started a family), rotation (a successor refresh token), access (an access token minted)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly revocations = new Counter({
    name: 'token_ledger_revocations_total',
    help: 'Revocations recorded by scope (family, subject, access_token) and reason (unknown reasons are other)',
    labelNames: ['scope', 'reason'] as const,
    registers: [this.registry],
  });
  readonly auditReads = new Counter({
    name: 'token_ledger_audit_reads_total',
    help: 'Successful reads of the audit trail and read models by view (audit, timeline, family, subject, anomalies, export)',
    labelNames: ['view'] as const,
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
    help: 'Decisions re-made after losing an optimistic-concurrency race on a stream, by command (snake_case)',
    labelNames: ['command'] as const,
    registers: [this.registry],
  });
  readonly concurrencyExhausted = new Counter({
    name: 'token_ledger_concurrency_exhausted_total',
    help: 'Commands that gave up after losing too many optimistic-concurrency races (answered 503), by command',
    labelNames: ['command'] as const,
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
  /** Where the anomaly engine is (the last store position it handled); unknown until its first batch. */
  anomalyPosition?: number;

  readonly relayPublished = new Counter({
    name: 'token_ledger_relay_published_total',
    help: 'Events the Kafka relay published to events.v1 (acknowledged by the broker)',
    registers: [this.registry],
  });
  readonly relayLastPublish = new Gauge({
    name: 'token_ledger_relay_last_publish_timestamp_seconds',
    help: 'Unix time of the relay\'s last publish, or of its last check that it had nothing to publish (stale = the relay is stuck)',
    registers: [this.registry],
  });
  readonly relayUp = new Gauge({
    name: 'token_ledger_relay_up',
    help: '1 while the Kafka relay runs in this instance, else 0',
    registers: [this.registry],
  });
  /** Where the relay is (the last store position the broker acknowledged); unknown while it does not run here. */
  relayPosition?: number;

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

  /** Read at scrape time, so it is exact whenever Prometheus looks (the last value while the store cannot be read). */
  trackProjectionLag(read: () => Promise<{ positionsBehind: number; secondsBehind: number }>): void {
    let last: Promise<{ positionsBehind: number; secondsBehind: number }> | undefined;
    const sample = () => (last ??= read().finally(() => setImmediate(() => (last = undefined))));
    new Gauge({
      name: 'token_ledger_projection_behind_positions',
      help: 'Store positions not yet applied to the read models (events on SQL stores, log bytes on EventStoreDB)',
      registers: [this.registry],
      async collect() {
        await sample().then((lag) => this.set(lag.positionsBehind), () => undefined);
      },
    });
    new Gauge({
      name: 'token_ledger_projection_behind_seconds',
      help: 'Age of the oldest event not yet applied to the read models',
      registers: [this.registry],
      async collect() {
        await sample().then((lag) => this.set(lag.secondsBehind), () => undefined);
      },
    });
  }

  /**
   * Seconds behind the store of a consumer at `position` (the age of the first event after it; 0
   * when caught up or when the position is unknown). Set by openRuntime (runtime.ts), which has the store.
   */
  behindSeconds: (position: number | undefined) => Promise<number> = async () => 0;

  /** One answer of /oauth/token (counted once, when it is sent). */
  countRefresh(outcome: string, status: number): void {
    const result: RefreshResult = status >= 500 ? 'error' : status >= 400 ? 'rejected' : 'success';
    this.refreshes.inc({ outcome, result });
  }

  /** A refresh_token grant by an authenticated client. */
  countClientRefresh(clientId: string): void {
    this.clientRefreshes.inc({ client: this.clientLabel.of(clientId) });
  }

  /** Events the command side just appended: tokens issued, reuse, revocations. */
  countAppended(events: readonly LedgerEvent[]): void {
    for (const e of events) {
      switch (e.type) {
        case 'TokenFamilyIssued':
          this.tokensIssued.inc({ kind: 'family' });
          break;
        case 'TokenRotated':
          this.tokensIssued.inc({ kind: 'rotation' });
          break;
        case 'TokenReuseDetected':
          this.reuseDetections.inc();
          break;
        case 'TokenFamilyRevoked':
          this.revocations.inc({ scope: 'family', reason: revocationReason(e.data.reason) });
          break;
        case 'SubjectRevoked':
          this.revocations.inc({ scope: 'subject', reason: revocationReason(e.data.reason) });
          break;
        case 'AccessTokenRevoked':
          // Only RFC 7009 revokes a single access token: the client logging out.
          this.revocations.inc({ scope: 'access_token', reason: 'logout' });
          break;
      }
    }
  }

  /** What an AggregateRepository reports, counted; `command` names the command being executed (a bounded label). */
  repositoryObserver(): RepositoryObserver {
    return {
      retried: (command) => this.concurrencyRetries.inc({ command }),
      exhausted: (command) => this.concurrencyExhausted.inc({ command }),
      appended: (events) => this.countAppended(events),
    };
  }

  /** The relay's progress, reported every second by wherever it runs (a worker thread or inline). */
  relayProgress(stats: RelayStats): void {
    if (stats.published > 0) this.relayPublished.inc(stats.published);
    this.relayPosition = stats.position;
    if (stats.aliveAt > 0) this.relayLastPublish.set(stats.aliveAt / 1000);
  }

  constructor(options: LedgerMetricsOptions = {}) {
    this.clientLabel = new BoundedLabel(options.maxClients ?? DEFAULT_MAX_CLIENTS);
    collectDefaultMetrics({ register: this.registry, prefix: 'token_ledger_' });
    const metrics = this;
    new Gauge({
      name: 'token_ledger_relay_behind_seconds',
      help: 'Age of the oldest stored event the relay has not published yet (0 when caught up or when the relay does not run here)',
      registers: [this.registry],
      async collect() {
        // A store that cannot be read keeps the last value: the scrape must work during an outage.
        await metrics.behindSeconds(metrics.relayPosition).then((s) => this.set(s), () => undefined);
      },
    });
    new Gauge({
      name: 'token_ledger_anomaly_behind_seconds',
      help: 'Age of the oldest stored event the anomaly engine has not handled yet (0 when caught up, or before its first batch)',
      registers: [this.registry],
      async collect() {
        await metrics.behindSeconds(metrics.anomalyPosition).then((s) => this.set(s), () => undefined);
      },
    });
  }
}
