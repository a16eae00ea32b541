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
import {
  eventContext,
  InProcessEventSource,
  KafkaEventSource,
  writeCheckpoint,
  type EventSource,
  type PoisonRecord,
  type SqlBackedStore,
} from '@token-ledger/messaging';
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
  /**
   * Following the store (no Kafka): state and checkpoint are written together at most this often
   * (LEDGER_ANOMALY_STATE_FLUSH_MS; 0 = after every batch); detections are not delayed.
   */
  stateFlushMs: number;
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
/** The engine's checkpoint (msg_checkpoints) when it follows the store. */
const CHECKPOINT = 'anomaly-engine';
/** Staged state rows that make a flush due before its time (a few kB each at most). */
const MAX_STAGED_ROWS = 5000;

/** A flush between batches failed and dropped the staged state: the source must replay from the checkpoint. */
class StagedStateLostError extends Error {
  constructor() {
    super('the anomaly engine dropped its unsaved state; replaying from its checkpoint');
    this.name = 'StagedStateLostError';
  }
}

/**
 * The anomaly engine's pipeline (SPEC §5), free of the HTTP app so it can run in a thread of its
 * own: follows `token-ledger.events.v1` or, without Kafka, the store in-process (checkpoint
 * `anomaly-engine`). Each batch: load the per-key state it touches, run the rules; for each new
 * detection carry out its action and append AnomalyDetected (once per anomaly id: the store enforces
 * it); then save the state. A crash anywhere replays the batch: detections are deterministic, so
 * nothing is lost and nothing is recorded twice.
 *
 * Following the store, the state is written behind: each batch stages it, and every `stateFlushMs`
 * the staged rows and the checkpoint are written in one transaction (on every store, every batch
 * saved ~2 rows an event; bench/refresh/README.md). A crash, or a flush that fails (another node
 * moved a row on), drops the staged state and replays from the checkpoint — at most that interval of
 * events, through the same deterministic steps.
 */
export class AnomalyPipeline {
  private source?: EventSource;
  private pruneTimer?: NodeJS.Timeout;
  private flushTimer?: NodeJS.Timeout;
  /** Write-behind: batches and flushes, one at a time. */
  private serial: Promise<void> = Promise.resolve();
  private flushStaged?: () => Promise<void>;

  constructor(
    private readonly store: SqlBackedStore,
    private readonly settings: AnomalyPipelineSettings,
    private readonly effects: AnomalyPipelineEffects,
  ) {}

  async start(): Promise<void> {
    const geo = await sharedGeoLocator(this.settings.geoDbPath);
    const kafka = this.settings.kafka;
    const flushMs = this.settings.stateFlushMs;
    // With Kafka the source commits offsets for what the handler finished: the state must be saved by then.
    const writeBehind = !kafka && flushMs > 0;
    const stateStore = new SqlAnomalyStateStore(this.store.sql, { soleWriter: this.settings.soleStateWriter, writeBehind });
    await stateStore.migrate();
    const engine = new AnomalyEngine(stateStore, { rules: this.settings.rules, locate: (ip) => geo.locate(ip) });
    // A conflict is another node's save (or a replay under way), not a fault: not reported.
    const onError = (error: unknown) => {
      if (!(error instanceof AnomalyStateConflictError) && !(error instanceof StagedStateLostError)) this.effects.onError(error);
    };
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
          name: CHECKPOINT,
          checkpointedByHandler: writeBehind,
          onError,
          onPosition: (position) => this.effects.progress?.(position),
          // A replay after a lost flush starts at once; a failing database is retried every 500 ms.
          retryDelayMs: (error) => (error instanceof AnomalyStateConflictError || error instanceof StagedStateLostError ? 0 : 500),
        });
    const runBatch = (events: PublicEvent[]): Promise<void> =>
      inBatchSpan('anomaly batch', events.map(eventContext), {}, () => (writeBehind ? this.writeBehind(() => stageBatch(events)) : evaluateBatch(events)));
    // Write-behind: the store position the staged state covers (0: as the checkpoint says); whether
    // a flush between batches failed and dropped the staged state.
    let covered = 0;
    let lastFlush = Date.now();
    let lost = false;
    const flush = async (): Promise<void> => {
      lastFlush = Date.now();
      if (covered === 0 && stateStore.stagedRows === 0) return;
      await stateStore.flush((tx) => writeCheckpoint(tx, CHECKPOINT, covered)); // on failure it drops what was staged
    };
    const restart = (): void => {
      stateStore.discard();
      covered = 0;
    };
    const stageBatch = async (events: PublicEvent[]): Promise<void> => {
      if (lost) {
        // This error sends the source back to the checkpoint; this batch comes again after what it replays.
        lost = false;
        restart();
        throw new StagedStateLostError();
      }
      try {
        const { detections, commit } = await engine.evaluate(events);
        await this.handleAll(detections);
        await commit(); // stages
        covered = Math.max(covered, ...events.map((e) => e.position));
        if (Date.now() - lastFlush >= flushMs || stateStore.stagedRows >= MAX_STAGED_ROWS) await flush();
      } catch (error) {
        restart(); // the source replays from the checkpoint
        throw error;
      }
    };
    this.flushStaged = () => (lost ? Promise.resolve() : flush());
    const flushBetweenBatches = (): Promise<void> =>
      this.writeBehind(async () => {
        if (lost || Date.now() - lastFlush < flushMs) return;
        await flush().catch((error) => {
          lost = true;
          throw error;
        });
      });
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
    if (writeBehind) {
      // A quiet engine still writes what it staged within about the interval.
      this.flushTimer = setInterval(() => void flushBetweenBatches().catch(onError), flushMs);
      this.flushTimer.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    if (this.flushTimer) clearInterval(this.flushTimer);
    await this.source?.stop();
    this.source = undefined;
    // What is staged is written before the engine lets go (a failure only means a replay at the next start).
    const flushStaged = this.flushStaged;
    this.flushStaged = undefined;
    if (flushStaged) await this.writeBehind(flushStaged).catch((error) => this.effects.onError(error));
  }

  /** Runs batches and flushes of the write-behind state one at a time. */
  private writeBehind(step: () => Promise<void>): Promise<void> {
    const run = this.serial.then(step);
    this.serial = run.catch(() => undefined);
    return run;
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
