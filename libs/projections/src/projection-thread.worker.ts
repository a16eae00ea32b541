/** Worker-thread entry of ThreadedProjectionRunner (projection-thread.ts): one ProjectionRunner, its own store. */
import { describeError, reopenEventStore, runThread, startOnStore } from '@token-ledger/event-store';
import { ALL_PROJECTIONS } from './index';
import { ProjectionRunner } from './projection-runner';
import type { ProjectionThreadData, ProjectionThreadMessage } from './projection-thread';

runThread<ProjectionThreadData, ProjectionThreadMessage>(async (data, post) => {
  // A commit holds one connection and the subscription reads on another: a small pool is enough.
  // On its own idle event loop the runner would read and commit a batch (seven round trips) per
  // append; reading 10 ms after a wake-up batches what came meanwhile, for at most 10 ms of lag.
  const store = await reopenEventStore(data.location, { poolSize: 3, wakeDelayMs: 10 });
  const runner = new ProjectionRunner(
    store,
    ALL_PROJECTIONS.filter((p) => data.projections.includes(p.name)),
    {
      batchSize: data.batchSize,
      onBatch: (b) => post({ kind: 'batch', ...b }),
      onError: (e) => post({ kind: 'error', error: describeError(e) }),
    },
  );
  const running = await startOnStore(store, runner);
  return { ...running, position: runner.position };
});
