/** Worker-thread entry of the Kafka side of serve on a store a thread can reopen (RevocationsService): relay and propagator. */
import { KeyRing, LedgerSecrets, parseKek } from '@token-ledger/crypto';
import { describeError, reopenEventStore, runThread, startOnStore, type ThreadLocation } from '@token-ledger/event-store';
import type { PoisonRecord } from '@token-ledger/messaging';
import type { RelayStats } from '../health/metrics';
import { KafkaPipeline, type KafkaPipelineSettings } from './kafka-pipeline';

export interface KafkaThreadData {
  location: ThreadLocation;
  settings: KafkaPipelineSettings;
}

/** Thread → main: an error, or a dead-lettered record, with the component it came from (the service reports it so); the relay's progress (metrics). */
export type KafkaThreadMessage =
  | { kind: 'failed'; component: string; error: ReturnType<typeof describeError> }
  | { kind: 'poison'; component: string; poison: PoisonRecord }
  | { kind: 'relay'; stats: RelayStats };

runThread<KafkaThreadData, KafkaThreadMessage>(async (data, post) => {
  // The relay's batch costs a producer round trip (acks=all): reading 2 ms after a wake-up, rather
  // than once per append on this idle event loop, batches what came meanwhile. (5 ms gave the same
  // rotations/s under bench:anomaly --kafka and a p99 detection latency up to 20 ms longer.)
  const store = await reopenEventStore(data.location, { poolSize: 3, wakeDelayMs: 2 });
  const { crypto, maxAccessTokenTtlSeconds } = data.settings;
  // The thread's own key ring on the shared kv: it signs with the active key, and its reload timer
  // follows rotations (a record signed by the previous key still verifies while that key is in the JWKS).
  const kek = crypto.kek ? parseKek(crypto.kek) : undefined;
  const keyRing = await KeyRing.open(store.kv, { alg: crypto.signingAlg, kek, issuer: crypto.issuer, maxAccessTokenTtlSeconds });
  const secrets = await LedgerSecrets.open(store.kv, { kek });
  const pipeline = new KafkaPipeline(
    store,
    data.settings,
    { signer: keyRing, subjectHash: (s) => secrets.subjectHash(s) },
    (error, component) => post({ kind: 'failed', component, error: describeError(error) }),
    (poison, component) => post({ kind: 'poison', component, poison }),
    (stats) => post({ kind: 'relay', stats }),
  );
  return startOnStore(store, { start: () => pipeline.start(), stop: async () => { await pipeline.stop(); keyRing.close(); } });
});
