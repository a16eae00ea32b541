/** Worker-thread entry of ThreadedProjectionRunner (projection-thread.ts): one ProjectionRunner, its own store. */
import { describeError, reopenEventStore, runThread, startOnStore } from '@token-ledger/event-store';
import { ALL_PROJECTIONS } from './index';
import { ProjectionRunner } from './projection-runner';
import type { ProjectionThreadData, ProjectionThreadMessage } from './projection-thread';

runThread<ProjectionThreadData, ProjectionThreadMessage>(async (data, post) => {
  // A commit holds one connection and the subscription reads on another: a small pool is enough.
  // On its own idle event loop the runner would read and commit a batch (seven round trips) per
  // append; reading 50 ms after a wake-up batches what came meanwhile, for at most 50 ms of lag.
  // 10 ms still left one batch per rotation at one chain (18 statements a rotation against 9 with
  // 50 ms, half the server's CPU per rotation: bench/refresh/README.md).
  const store = await reopenEventStore(data.location, { poolSize: 3, wakeDelayMs: 50 });
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
