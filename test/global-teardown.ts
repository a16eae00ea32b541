/** jest globalTeardown for the int and e2e projects: stops what ./global-setup.ts started, if anything. */
import type { StartedTestContainer } from 'testcontainers';
import { STARTED_KEY } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const registry = globalThis as { [STARTED_KEY]?: StartedTestContainer[] };
  const started = registry[STARTED_KEY] ?? [];
  delete registry[STARTED_KEY];
  const results = await Promise.allSettled(started.map((container) => container.stop()));
  for (const result of results) {
    if (result.status === 'rejected') console.warn(`testcontainers: could not stop a container: ${String(result.reason)}`);
  }
}
