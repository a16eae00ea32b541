/** Worker-thread entry of ThreadedProjectionRunner (projection-thread.ts): one ProjectionRunner, its own store. */
import { parentPort, workerData } from 'node:worker_threads';
import { PostgresEventStore } from '@token-ledger/event-store';
import { ALL_PROJECTIONS } from './index';
import { ProjectionRunner } from './projection-runner';
import type { ProjectionThreadCommand, ProjectionThreadData, ProjectionThreadMessage } from './projection-thread';

const post = (m: ProjectionThreadMessage) => parentPort!.postMessage(m);
const describe = (e: unknown) => (e instanceof Error ? { name: e.name, message: e.message, stack: e.stack } : { name: 'Error', message: String(e) });

async function main(data: ProjectionThreadData): Promise<void> {
  // A commit holds one connection and the subscription reads on another: a small pool is enough.
  const store = await PostgresEventStore.open({ ...data.location, poolSize: 3 });
  const runner = new ProjectionRunner(
    store,
    ALL_PROJECTIONS.filter((p) => data.projections.includes(p.name)),
    {
      batchSize: data.batchSize,
      onBatch: (b) => post({ kind: 'batch', ...b }),
      onError: (e) => post({ kind: 'error', error: describe(e) }),
    },
  );
  parentPort!.on('message', (m: ProjectionThreadCommand) => {
    if (m.kind !== 'stop') return;
    // Nothing else holds the event loop open: the thread ends once the runner and the store are closed.
    void runner
      .stop()
      .then(() => store.close())
      .finally(() => parentPort!.close());
  });
  await runner.start();
  post({ kind: 'started', position: runner.position });
}

main(workerData as ProjectionThreadData).catch((error) => {
  // Before 'started' this fails ThreadedProjectionRunner.start with the reason; after, it is reported and the thread restarted.
  post({ kind: 'error', error: describe(error) });
  process.exit(1);
});
