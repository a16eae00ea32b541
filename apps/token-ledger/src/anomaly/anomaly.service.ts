import * as path from 'node:path';
import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ANOMALY_ACTOR, type Detection } from '@token-ledger/anomaly';
import { describeError, placeConsumer, sqlBacked, SupervisedThread, type OpenedStore, type StoreConsumer } from '@token-ledger/event-store';
import { DEFAULT_TOPICS, type PoisonRecord, type TopicNames } from '@token-ledger/messaging';
import type { LedgerConfig } from '../config/ledger-config';
import { LedgerMetrics } from '../health/metrics';
import { RevokeFamilyCommand } from '../ledger/commands/revoke-family.command';
import { RevokeSubjectCommand } from '../ledger/commands/revoke-subject.command';
import type { CommandMetadata } from '@token-ledger/envelope';
import { CHAIN_MAC_KEY, EVENT_STORE, LEDGER_CONFIG } from '../ledger/tokens';
import { AnomalyPipeline, type AnomalyPipelineSettings } from './anomaly-pipeline';
import type { AnomalyThreadCommand, AnomalyThreadData, AnomalyThreadMessage } from './anomaly-thread';
import { WebhookNotifier, type PublicAnomaly } from './webhook-notifier';

export const ANOMALY_OPTIONS = Symbol('ANOMALY_OPTIONS');

export interface AnomalyOptions {
  topics?: TopicNames;
  /** Consumer group on events.v1; default `token-ledger-anomaly`. */
  groupId?: string;
  onError?: (error: unknown, component: string) => void;
  /** A record on events.v1 was not a public event and went to the dead-letter topic. */
  onPoison?: (poison: PoisonRecord, component: string) => void;
}

/**
 * The anomaly engine in `serve` (SPEC §5): the AnomalyPipeline (anomaly-pipeline.ts) over
 * `token-ledger.events.v1` (consumer group `token-ledger-anomaly`) or, without Kafka, over the store
 * in-process. Where the store allows it (PostgreSQL; placeConsumer) the pipeline runs in a worker
 * thread of its own (SupervisedThread), so the API's load does not delay detections; it asks this
 * thread to carry out actions, which go through the command side here, and tells it what it
 * recorded (metrics, log, webhook). Elsewhere (the embedded store, EventStoreDB) it runs here.
 */
@Injectable()
export class AnomalyService {
  private readonly logger = new Logger('anomaly-engine');
  private engine?: StoreConsumer;
  private thread?: SupervisedThread<AnomalyThreadMessage, AnomalyThreadCommand>;
  private webhook?: WebhookNotifier;

  constructor(
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
    @Inject(EVENT_STORE) private readonly store: OpenedStore,
    private readonly commandBus: CommandBus,
    private readonly metrics: LedgerMetrics,
    @Optional() @Inject(ANOMALY_OPTIONS) private readonly options: AnomalyOptions = {},
    @Optional() @Inject(CHAIN_MAC_KEY) private readonly chainMacKey: Buffer | null = null,
  ) {
    this.options = options ?? {};
  }

  async start(): Promise<void> {
    const anomaly = this.config.anomaly;
    if (!anomaly.enabled) return;
    const store = sqlBacked(this.store, 'the anomaly engine state');
    if (anomaly.webhookUrl) this.webhook = new WebhookNotifier(anomaly.webhookUrl);
    const brokers = this.config.kafkaBrokers;
    const topics = this.options.topics ?? DEFAULT_TOPICS;
    const settings: AnomalyPipelineSettings = {
      rules: anomaly.rules,
      geoDbPath: anomaly.geoDbPath,
      chainMacKey: this.chainMacKey ?? undefined,
      // PGlite is one process per data directory.
      soleStateWriter: this.store.capabilities.eventsInSql?.engine === 'pglite',
      stateFlushMs: anomaly.stateFlushMs,
      kafka: brokers
        ? {
            brokers,
            security: this.config.kafkaSecurity,
            topic: topics.events,
            groupId: this.options.groupId ?? 'token-ledger-anomaly',
            deadLetterTopic: topics.eventsDeadLetter,
          }
        : undefined,
    };
    this.engine = placeConsumer<StoreConsumer>(store, {
      thread: (location) => (this.thread = this.engineThread({ location, settings })),
      inline: () =>
        new AnomalyPipeline(store, settings, {
          act: (d) => this.act(d),
          detected: (d, detectedAt) => this.detected(d, detectedAt),
          onError: (error) => this.reportError(error),
          poisoned: (poison) => this.options.onPoison?.(poison, 'anomaly engine'),
          progress: (position) => this.progress(position),
        }),
    });
    await this.engine.start();
    this.logger.log(`anomaly engine started (${brokers ? `Kafka topic ${topics.events}` : 'in-process'}${this.thread ? ', in its own thread' : ''})`);
  }

  async stop(): Promise<void> {
    await this.engine?.stop();
    this.metrics.anomalyPosition = undefined;
    this.engine = this.thread = undefined;
    await this.webhook?.flush();
  }

  /** The pipeline in its own thread (anomaly-thread.worker.ts): actions come back here, and are answered. */
  private engineThread(data: AnomalyThreadData): SupervisedThread<AnomalyThreadMessage, AnomalyThreadCommand> {
    const thread = new SupervisedThread<AnomalyThreadMessage, AnomalyThreadCommand>('anomaly engine', path.join(__dirname, 'anomaly-thread.worker'), data, {
      message: (m) => {
        if (m.kind === 'detected') return this.detected(m.detection, new Date(m.detectedAt));
        if (m.kind === 'poison') return this.options.onPoison?.(m.poison, 'anomaly engine');
        if (m.kind === 'progress') return this.progress(m.position);
        this.act(m.detection).then(
          () => thread.post({ kind: 'acted', id: m.id }),
          (error) => thread.post({ kind: 'acted', id: m.id, error: describeError(error) }),
        );
      },
      error: (error) => this.reportError(error),
    });
    return thread;
  }

  /** How far the engine is, for token_ledger_anomaly_behind_seconds (never backwards: Kafka batches interleave). */
  private progress(position: number): void {
    this.metrics.anomalyPosition = Math.max(this.metrics.anomalyPosition ?? 0, position);
  }

  /** A detection's action, through the command side. */
  private async act(d: Detection): Promise<void> {
    const meta: CommandMetadata = { actor: ANOMALY_ACTOR, causationId: d.anomalyId, correlationId: d.trigger.correlationId };
    if (d.action === 'revoke_family') await this.commandBus.execute(new RevokeFamilyCommand(d.familyId, 'anomaly', meta));
    if (d.action === 'revoke_subject') await this.commandBus.execute(new RevokeSubjectCommand(d.subject, 'anomaly', meta));
  }

  /** AnomalyDetected was just recorded: count, log, tell the webhook. */
  private detected(d: Detection, detectedAt: Date): void {
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

