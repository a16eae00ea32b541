/**
 * How integration tests reach real infrastructure.
 *
 * Each backend is resolved in this order:
 *   1. an explicit env var (DATABASE_URL, KAFKA_BROKERS, EVENTSTORE_URL);
 *   2. testcontainers when a Docker engine answers — the next resolver to add here once the
 *      `testcontainers` package is a dev dependency (these machines have no Docker engine);
 *   3. otherwise the suite is reported as skipped with the reason, unless the comma-separated
 *      REQUIRE_BACKENDS names the backend: then the suite fails, so CI can never pass by skipping.
 */

export type Backend = 'postgres' | 'kafka' | 'eventstoredb';

const ENV_VARS: Record<Backend, string> = {
  postgres: 'DATABASE_URL',
  kafka: 'KAFKA_BROKERS',
  eventstoredb: 'EVENTSTORE_URL',
};

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
  if (value) return { backend, available: true, url: value, source: envVar };
  return {
    backend,
    available: false,
    required: requiredBackends(env).has(backend),
    reason: `${backend} unavailable: ${envVar} is not set (and no testcontainers resolver yet)`,
  };
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
