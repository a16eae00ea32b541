/**
 * Worker-thread entry of the anomaly engine (AnomalyService, on a store a thread can reopen): the
 * pipeline with a store of its own. Actions go back to the main thread, which owns the command side.
 */
import { describeError, reopenEventStore, runThread, startOnStore } from '@token-ledger/event-store';
import { AnomalyPipeline } from './anomaly-pipeline';
import type { AnomalyThreadCommand, AnomalyThreadData, AnomalyThreadMessage } from './anomaly-thread';

runThread<AnomalyThreadData, AnomalyThreadMessage, AnomalyThreadCommand>(async (data, post) => {
  // On its own idle event loop the engine would read, and run a batch (state load, save, checkpoint),
  // for every append: under bench:refresh load that cost a third of the rotations/s. Reading 50 ms
  // after a wake-up batches what came meanwhile (at one chain too), and adds at most that to a detection.
  const store = await reopenEventStore(data.location, { poolSize: 4, wakeDelayMs: 50 });
  const acting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  let nextId = 0;
  const pipeline = new AnomalyPipeline(store, data.settings, {
    act: (detection) =>
      new Promise<void>((resolve, reject) => {
        const id = nextId++;
        acting.set(id, { resolve, reject });
        post({ kind: 'act', id, detection });
      }),
    detected: (detection, detectedAt) => post({ kind: 'detected', detection, detectedAt: detectedAt.getTime() }),
    onError: (error) => post({ kind: 'error', error: describeError(error) }),
    poisoned: (poison) => post({ kind: 'poison', poison }),
    progress: (position) => post({ kind: 'progress', position }),
  });
  const running = await startOnStore(store, pipeline);
  return {
    ...running,
    onMessage: (m) => {
      const waiting = acting.get(m.id);
      acting.delete(m.id);
      if (m.error) waiting?.reject(Object.assign(new Error(m.error.message), m.error));
      else waiting?.resolve();
    },
  };
});
