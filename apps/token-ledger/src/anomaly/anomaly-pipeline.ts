import {
  AnomalyEngine,
  AnomalyStateConflictError,
  isRecorded,
  mostSevereFirst,
  recordDetection,
  SqlAnomalyStateStore,
  type Detection,
  type RulesConfig,
} from '@token-ledger/anomaly';
import { inBatchSpan, type PublicEvent } from '@token-ledger/envelope';
import { eventContext, InProcessEventSource, KafkaEventSource, type EventSource, type PoisonRecord, type SqlBackedStore } from '@token-ledger/messaging';
import { createKafka, type KafkaConnection } from '../config/kafka-client';
import { sharedGeoLocator } from './shared-geo-locator';

/** Everything the pipeline needs, as plain data (it also crosses into a worker thread). */
export interface AnomalyPipelineSettings {
  rules: RulesConfig;
  geoDbPath?: string;
  /** With Kafka: the engine's consumer group on events.v1; without, it follows the store in-process. */
  kafka?: KafkaConnection & { topic: string; groupId: string; deadLetterTopic?: string };
  /** The hash-chain MAC key (from LEDGER_KEK) for the AnomalyDetected events it records. */
  chainMacKey?: Uint8Array;
  /** No other process writes the engine's state (SqlAnomalyStateStore's soleWriter): the embedded store. */
  soleStateWriter?: boolean;
}

/** What a detection does outside the pipeline (AnomalyService provides these). */
export interface AnomalyPipelineEffects {
  /** Carry out the detection's action through the command side (RevokeFamily / RevokeSubject). */
  act(d: Detection): Promise<void>;
  /** Recorded just now (metrics, log, webhook). */
  detected(d: Detection, detectedAt: Date): void;
  onError(error: unknown): void;
  /** A record on events.v1 was not a public event and went to the dead-letter topic. */
  poisoned?(poison: PoisonRecord): void;
  /** The engine has handled the store up to this position (with Kafka: the highest it handled). */
  progress?(position: number): void;
}

const PRUNE_INTERVAL_MS = 3600_000;
const MAX_STATE_ATTEMPTS = 20;

/**
 * The anomaly engine's pipeline (SPEC §5), free of the HTTP app so it can run in a thread of its
 * own: follows `token-ledger.events.v1` or, without Kafka, the store in-process (checkpoint
 * `anomaly-engine`). Each batch: load the per-key state it touches, run the rules; for each new
 * detection carry out its action and append AnomalyDetected (once per anomaly id: the store enforces
 * it); then save the state. A crash anywhere replays the batch: detections are deterministic, so
 * nothing is lost and nothing is recorded twice.
 */
export class AnomalyPipeline {
  private source?: EventSource;
  private pruneTimer?: NodeJS.Timeout;

  constructor(
    private readonly store: SqlBackedStore,
    private readonly settings: AnomalyPipelineSettings,
    private readonly effects: AnomalyPipelineEffects,
  ) {}

  async start(): Promise<void> {
    const geo = await sharedGeoLocator(this.settings.geoDbPath);
    const stateStore = new SqlAnomalyStateStore(this.store.sql, { soleWriter: this.settings.soleStateWriter });
    await stateStore.migrate();
    const engine = new AnomalyEngine(stateStore, { rules: this.settings.rules, locate: (ip) => geo.locate(ip) });
    const kafka = this.settings.kafka;
    this.source = kafka
      ? new KafkaEventSource(createKafka('token-ledger-anomaly', kafka), {
          topic: kafka.topic,
          groupId: kafka.groupId,
          // Redelivery is harmless (state and anomaly ids deduplicate), round trips per batch are not.
          autoCommitIntervalMs: 1000,
          deadLetterTopic: kafka.deadLetterTopic,
          onError: (error) => this.effects.onError(error),
          onPoison: (poison) => this.effects.poisoned?.(poison),
        })
      : new InProcessEventSource(this.store, {
          name: 'anomaly-engine',
          onError: (error) => this.effects.onError(error),
          onPosition: (position) => this.effects.progress?.(position),
        });
    const runBatch = (events: PublicEvent[]): Promise<void> => inBatchSpan('anomaly batch', events.map(eventContext), {}, () => evaluateBatch(events));
    const evaluateBatch = async (events: PublicEvent[]): Promise<void> => {
      for (let attempt = 1; ; attempt++) {
        const { detections, commit } = await engine.evaluate(events);
        await this.handleAll(detections);
        try {
          await commit();
          // Kafka partitions interleave, so the highest position handled is where it is, roughly.
          if (kafka && events.length > 0) this.effects.progress?.(Math.max(...events.map((e) => e.position)));
          return;
        } catch (error) {
          // Another node changed a shared key (a per-IP window): re-run on fresh state.
          if (!(error instanceof AnomalyStateConflictError) || attempt >= MAX_STATE_ATTEMPTS) throw error;
        }
      }
    };
    // Both sources hand over whatever arrived while the previous batch ran as one batch (all Kafka
    // partitions together): one state load and one save however many partitions it spans.
    await this.source.start(runBatch);
    // In-process, where the checkpoint put it is known at once (an idle engine sends no batch).
    if (this.source instanceof InProcessEventSource) this.effects.progress?.(this.source.position);
    const prune = () => void stateStore.prune().catch((error) => this.effects.onError(error));
    prune();
    this.pruneTimer = setInterval(prune, PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    await this.source?.stop();
    this.source = undefined;
  }

  /**
   * A batch's detections are handled concurrently, so their appends share group commits; the most
   * severe go first, in a commit of their own (mostSevereFirst).
   */
  private async handleAll(detections: Detection[]): Promise<void> {
    for (const group of mostSevereFirst(detections)) {
      const results = await Promise.allSettled(group.map((d) => this.handle(d)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
  }

  /**
   * Act, record, tell. An anomaly already recorded was acted on before (a redelivery or a replay
   * from an older checkpoint): nothing is repeated, so a replayed revoke_subject never revokes
   * logins made since. A crash between acting and recording acts once more on the next try; a
   * detection recorded already is not told again (the append says so).
   */
  private async handle(d: Detection): Promise<void> {
    // Only an action must not run again; an alert is recorded once by the no_stream append alone
    // (one round trip instead of two: a wave of burst alerts must not delay the detections behind it).
    if (d.action === 'revoke_family' || d.action === 'revoke_subject') {
      if (await isRecorded(this.store, d.anomalyId)) return;
      await this.effects.act(d);
    }
    const detectedAt = new Date();
    if (!(await recordDetection(this.store, d, detectedAt, this.settings.chainMacKey))) return; // another node got there first
    this.effects.detected(d, detectedAt);
  }
}
