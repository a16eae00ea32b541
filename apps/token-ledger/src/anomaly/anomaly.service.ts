import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { Kafka, logLevel } from 'kafkajs';
import {
  ANOMALY_ACTOR,
  AnomalyEngine,
  AnomalyStateConflictError,
  isRecorded,
  openGeoLocator,
  recordDetection,
  SqlAnomalyStateStore,
  type Detection,
  type GeoLocator,
} from '@token-ledger/anomaly';
import { Batcher, type EventStore, type SqlClient } from '@token-ledger/event-store';
import type { PublicEvent } from '@token-ledger/forensics';
import { DEFAULT_TOPICS, InProcessEventSource, KafkaEventSource, type EventSource, type SqlBackedStore, type TopicNames } from '@token-ledger/messaging';
import type { LedgerConfig } from '../config/ledger-config';
import { LedgerMetrics } from '../health/metrics';
import { RevokeFamilyCommand } from '../ledger/commands/revoke-family.command';
import { RevokeSubjectCommand } from '../ledger/commands/revoke-subject.command';
import type { CommandMetadata } from '../ledger/event-envelope';
import { EVENT_STORE, LEDGER_CONFIG } from '../ledger/tokens';
import { WebhookNotifier, type PublicAnomaly } from './webhook-notifier';

export const ANOMALY_OPTIONS = Symbol('ANOMALY_OPTIONS');

export interface AnomalyOptions {
  topics?: TopicNames;
  /** Consumer group on events.v1; default `token-ledger-anomaly`. */
  groupId?: string;
  onError?: (error: unknown, component: string) => void;
}

const PRUNE_INTERVAL_MS = 3600_000;
/** Kafka partitions handed over at once (events.v1 has 12); their batches are merged, see start(). */
const PARTITIONS_CONCURRENTLY = 12;
const MAX_STATE_ATTEMPTS = 20;

/** The geo database is read-only and large: one open copy per path per process. */
const geoByPath = new Map<string, Promise<GeoLocator>>();
function sharedGeoLocator(path: string | undefined): Promise<GeoLocator> {
  const key = path ?? '';
  let geo = geoByPath.get(key);
  if (!geo) {
    geo = openGeoLocator(path ? { path } : {});
    geoByPath.set(key, geo);
    geo.catch(() => geoByPath.delete(key));
  }
  return geo;
}

/**
 * The anomaly engine in `serve` (SPEC §5): follows `token-ledger.events.v1` (consumer group
 * `token-ledger-anomaly`) or, without Kafka, the store in-process (checkpoint `anomaly-engine`).
 * Each batch: load the per-key state it touches, run the rules; for each new detection carry out
 * its action through the command side and append AnomalyDetected (once per anomaly id: the store
 * enforces it); then save the state. A crash anywhere replays the batch: detections are
 * deterministic, so nothing is lost and nothing is recorded twice.
 */
@Injectable()
export class AnomalyService {
  private readonly logger = new Logger('anomaly-engine');
  private source?: EventSource;
  private pruneTimer?: NodeJS.Timeout;
  private webhook?: WebhookNotifier;
  private stateStore?: SqlAnomalyStateStore;

  constructor(
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    private readonly commandBus: CommandBus,
    private readonly metrics: LedgerMetrics,
    @Optional() @Inject(ANOMALY_OPTIONS) private readonly options: AnomalyOptions = {},
  ) {
    this.options = options ?? {};
  }

  async start(): Promise<void> {
    const settings = this.config.anomaly;
    if (!settings.enabled) return;
    const sql = (this.store as { sql?: SqlClient }).sql;
    if (!sql) throw new Error('this store keeps no SQL database for the anomaly engine state');
    const geo = await sharedGeoLocator(settings.geoDbPath);
    this.stateStore = new SqlAnomalyStateStore(sql);
    await this.stateStore.migrate();
    const engine = new AnomalyEngine(this.stateStore, { rules: settings.rules, locate: (ip) => geo.locate(ip) });
    if (settings.webhookUrl) this.webhook = new WebhookNotifier(settings.webhookUrl);

    const brokers = this.config.kafkaBrokers;
    const topics = this.options.topics ?? DEFAULT_TOPICS;
    this.source = brokers
      ? new KafkaEventSource(new Kafka({ clientId: 'token-ledger-anomaly', brokers, logLevel: logLevel.WARN, connectionTimeout: 3_000 }), {
          topic: topics.events,
          groupId: this.options.groupId ?? 'token-ledger-anomaly',
          partitionsConsumedConcurrently: PARTITIONS_CONCURRENTLY,
          // Redelivery is harmless (state and anomaly ids deduplicate), round trips per batch are not.
          autoCommitIntervalMs: 1000,
        })
      : new InProcessEventSource(this.store as SqlBackedStore, {
          name: 'anomaly-engine',
          onError: (error) => this.reportError(error),
        });
    const runBatch = async (events: PublicEvent[]): Promise<void> => {
      for (let attempt = 1; ; attempt++) {
        const { detections, commit } = await engine.evaluate(events);
        await this.handleAll(detections);
        try {
          await commit();
          return;
        } catch (error) {
          // Another node changed a shared key (a per-IP window): re-run on fresh state.
          if (!(error instanceof AnomalyStateConflictError) || attempt >= MAX_STATE_ATTEMPTS) throw error;
        }
      }
    };
    // Kafka hands over one batch per partition. Batches that arrive while one is being worked on go
    // together into the next (one state load, one save), so twelve partitions cost about what one
    // does; each partition's order holds, as kafkajs waits for a partition's batch before its next.
    const batches = new Batcher<PublicEvent[], void>(
      async (parts) => {
        await runBatch(parts.flat());
        return parts.map(() => ({ status: 'fulfilled', value: undefined }));
      },
      { maxInFlight: 1, maxBatch: 64 },
    );
    await this.source.start((events) => batches.submit(events));
    const prune = () => void this.stateStore?.prune().catch((error) => this.reportError(error));
    prune();
    this.pruneTimer = setInterval(prune, PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
    this.logger.log(`anomaly engine started (${brokers ? `Kafka topic ${topics.events}` : 'in-process'})`);
  }

  async stop(): Promise<void> {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    await this.source?.stop();
    this.source = undefined;
    await this.webhook?.flush();
  }

  /**
   * A batch's detections are handled concurrently: their appends share group commits instead of
   * queueing one behind another (a wave of bursts must not delay a reuse alert behind it).
   */
  private async handleAll(detections: Detection[]): Promise<void> {
    const results = await Promise.allSettled(detections.map((d) => this.handle(d)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * Act, record, tell. An anomaly already recorded was acted on before (a redelivery or a replay
   * from an older checkpoint): nothing is repeated, so a replayed revoke_subject never revokes
   * logins made since. A crash between acting and recording acts once more on the next try.
   */
  private async handle(d: Detection): Promise<void> {
    if (await isRecorded(this.store, d.anomalyId)) return;
    const meta: CommandMetadata = { actor: ANOMALY_ACTOR, causationId: d.anomalyId, correlationId: d.trigger.correlationId };
    if (d.action === 'revoke_family') await this.commandBus.execute(new RevokeFamilyCommand(d.familyId, 'anomaly', meta));
    if (d.action === 'revoke_subject') await this.commandBus.execute(new RevokeSubjectCommand(d.subject, 'anomaly', meta));
    const detectedAt = new Date();
    if (!(await recordDetection(this.store, d, detectedAt))) return; // another node got there first
    this.metrics.anomalies.inc({ rule: d.rule, severity: d.severity, action: d.action });
    this.metrics.detectionLag.observe(Math.max(0, detectedAt.getTime() - Date.parse(d.trigger.occurredAt)) / 1000);
    this.logger.warn(
      `anomaly ${d.rule} (${d.severity}, ${d.action}) on ${d.scope} ${d.scope === 'ip' ? d.scopeKey : d.scope === 'family' ? d.familyId : d.subject}: ${d.anomalyId}`,
    );
    this.webhook?.notify(toPublicAnomaly(d, detectedAt));
  }

  private reportError(error: unknown): void {
    if (this.options.onError) this.options.onError(error, 'anomaly engine');
    else this.logger.error(`anomaly engine batch failed; retrying from its checkpoint: ${String(error)}`);
  }
}

export function toPublicAnomaly(d: Detection, detectedAt: Date): PublicAnomaly {
  return {
    anomalyId: d.anomalyId,
    rule: d.rule,
    severity: d.severity,
    familyId: d.familyId || null,
    subject: d.subject || null,
    detectedAt: detectedAt.toISOString(),
    evidence: d.evidence,
    action: d.action,
  };
}

