/**
 * How integration tests reach real infrastructure.
 *
 * Each backend is resolved in this order:
 *   1. an explicit env var (DATABASE_URL, KAFKA_BROKERS, EVENTSTORE_URL);
 *   2. testcontainers: for each backend still without its env var, jest's globalSetup for the int and
 *      e2e projects (./global-setup.ts) starts a container when a container runtime answers and sets
 *      the env var for the workers, listing the backend in TESTCONTAINERS_STARTED (source
 *      'testcontainers' below). TESTCONTAINERS=off skips this step; TESTCONTAINERS=postgres,kafka
 *      limits it. These machines have no container runtime, so here it prints one line and moves on;
 *   3. otherwise the suite is reported as skipped with the reason, unless the comma-separated
 *      REQUIRE_BACKENDS names the backend: then the suite fails, so CI can never pass by skipping.
 */

export type Backend = 'postgres' | 'kafka' | 'eventstoredb';

export const BACKENDS: readonly Backend[] = ['postgres', 'kafka', 'eventstoredb'];

export const ENV_VARS: Record<Backend, string> = {
  postgres: 'DATABASE_URL',
  kafka: 'KAFKA_BROKERS',
  eventstoredb: 'EVENTSTORE_URL',
};

/** Set by ./global-setup.ts: the comma-separated backends whose env var points at a container it started. */
export const TESTCONTAINERS_STARTED = 'TESTCONTAINERS_STARTED';

/** Whether TESTCONTAINERS lets ./global-setup.ts start this backend: unset = all, off, or a list. */
export function testcontainersAllows(backend: Backend, env: NodeJS.ProcessEnv = process.env): boolean {
  const setting = (env.TESTCONTAINERS ?? '').trim().toLowerCase();
  if (!setting) return true;
  if (['off', 'false', '0', 'no'].includes(setting)) return false;
  return setting.split(',').some((name) => name.trim() === backend);
}

/** Set by ./global-setup.ts when a runtime answered but the backend's container failed to start. */
export function testcontainersErrorVar(backend: Backend): string {
  return `TESTCONTAINERS_ERROR_${backend.toUpperCase()}`;
}

export type BackendResolution =
  | { backend: Backend; available: true; url: string; source: string }
  | { backend: Backend; available: false; required: boolean; reason: string };

export function requiredBackends(env: NodeJS.ProcessEnv = process.env): Set<string> {
  return new Set(
    (env.REQUIRE_BACKENDS ?? '')
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  );
}

export function resolveBackend(backend: Backend, env: NodeJS.ProcessEnv = process.env): BackendResolution {
  const envVar = ENV_VARS[backend];
  const value = env[envVar]?.trim();
  if (value) {
    const fromContainer = (env[TESTCONTAINERS_STARTED] ?? '').split(',').includes(backend);
    return { backend, available: true, url: value, source: fromContainer ? 'testcontainers' : envVar };
  }
  const startError = env[testcontainersErrorVar(backend)];
  const why = startError
    ? `${envVar} is not set and testcontainers could not start it (${startError})`
    : !testcontainersAllows(backend, env)
      ? `${envVar} is not set and TESTCONTAINERS=${env.TESTCONTAINERS?.trim()} leaves it out`
      : `no env var (${envVar}) and no container runtime for testcontainers`;
  return { backend, available: false, required: requiredBackends(env).has(backend), reason: `${backend} unavailable: ${why}` };
}

/**
 * `describe` for a suite that needs a backend. `body` gets the connection string (a URL, or the
 * broker list for Kafka). Skipped visibly (reason in the title) when the backend is missing, or one
 * failing test when REQUIRE_BACKENDS names it.
 */
export function describeWithBackend(backend: Backend, title: string, body: (url: string) => void): void {
  const resolved = resolveBackend(backend);
  if (resolved.available) {
    describe(title, () => body(resolved.url));
    return;
  }
  if (resolved.required) {
    describe(title, () => {
      it(`requires ${backend}`, () => {
        throw new Error(`${resolved.reason}, and REQUIRE_BACKENDS=${process.env.REQUIRE_BACKENDS} requires it`);
      });
    });
    return;
  }
  // jest prints nothing for a file whose tests are all skipped, so say why once, on the console.
  console.warn(`${title}: skipped: ${resolved.reason}`);
  describe.skip(`${title} (skipped: ${resolved.reason})`, () => {
    // Register the real tests so the report shows what was skipped; nothing in them runs.
    try {
      body('');
    } catch {
      it('suite body could not be registered without a backend', () => undefined);
    }
  });
}
