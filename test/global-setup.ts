/**
 * jest globalSetup for the int and e2e projects: step 2 of the backend resolution in ./backends.ts.
 *
 * For each backend whose env var is not set, start it with testcontainers when a container runtime
 * answers, and export its connection string in process.env (the test workers inherit it), listing the
 * backend in TESTCONTAINERS_STARTED so describeWithBackend reports the source as 'testcontainers'.
 * Without a runtime this returns at once with one line on the console; the suites then skip (or
 * fail under REQUIRE_BACKENDS) as before.
 *
 * TESTCONTAINERS=off disables this step; TESTCONTAINERS=postgres,kafka starts only those.
 * Containers are stopped by ./global-teardown.ts (and by testcontainers' reaper if jest dies).
 */
import { randomUUID } from 'node:crypto';
import type { StartedTestContainer } from 'testcontainers';
import { BACKENDS, ENV_VARS, TESTCONTAINERS_STARTED, testcontainersAllows, testcontainersErrorVar, type Backend } from './backends';

export const POSTGRES_IMAGE = 'postgres:16';
export const KAFKA_IMAGE = 'apache/kafka:4.0.0';
export const EVENTSTORE_IMAGE = 'eventstore/eventstore:24.10';

/** Where global-teardown.ts finds what to stop (globalSetup and globalTeardown share this process). */
export const STARTED_KEY = '__tokenLedgerTestcontainers';
type Registry = { [STARTED_KEY]?: StartedTestContainer[] };

const RUNTIME_PROBE_TIMEOUT_MS = 5_000;

export default async function globalSetup(): Promise<void> {
  const wanted = wantedBackends(process.env);
  if (wanted.length === 0) return; // env vars set for all (CI), or TESTCONTAINERS=off: no cost at all.

  // Loaded only here, so runs with every env var set never pay for requiring testcontainers.
  const tc = await import('testcontainers');
  const runtime = await probeRuntime(() => tc.getContainerRuntimeClient());
  if (runtime !== true) {
    console.log(`testcontainers: found no container runtime (${runtime}); not starting ${wanted.join(', ')}`);
    return;
  }

  console.log(`testcontainers: starting ${wanted.join(', ')}…`);
  const started: StartedTestContainer[] = ((globalThis as Registry)[STARTED_KEY] ??= []);
  const names: Backend[] = [];
  await Promise.all(
    wanted.map(async (backend) => {
      const t0 = Date.now();
      try {
        const { container, url } = await START[backend](tc);
        started.push(container);
        process.env[ENV_VARS[backend]] = url;
        names.push(backend);
        console.log(`testcontainers: ${backend} up in ${Date.now() - t0} ms: ${ENV_VARS[backend]}=${url}`);
      } catch (error) {
        // The suites then skip with this reason (or fail under REQUIRE_BACKENDS); the others still run.
        const message = error instanceof Error ? error.message : String(error);
        process.env[testcontainersErrorVar(backend)] = message;
        console.warn(`testcontainers: could not start ${backend}: ${message}`);
      }
    }),
  );
  process.env[TESTCONTAINERS_STARTED] = names.join(',');
}

/** Backends without an env var that TESTCONTAINERS allows (default: all of them). */
export function wantedBackends(env: NodeJS.ProcessEnv): Backend[] {
  return BACKENDS.filter((backend) => !env[ENV_VARS[backend]]?.trim() && testcontainersAllows(backend, env));
}

/** true when a runtime answers, else the one-line reason; bounded so a hung socket cannot stall jest. */
async function probeRuntime(probe: () => Promise<unknown>): Promise<true | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${RUNTIME_PROBE_TIMEOUT_MS} ms`), RUNTIME_PROBE_TIMEOUT_MS);
    timer.unref();
  });
  try {
    return await Promise.race([
      probe().then(
        () => true as const,
        (error: unknown) => (error instanceof Error ? error.message : String(error)),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

type Testcontainers = typeof import('testcontainers');
type Started = { container: StartedTestContainer; url: string };

const START: Record<Backend, (tc: Testcontainers) => Promise<Started>> = {
  async postgres() {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer(POSTGRES_IMAGE).withDatabase('test').start();
    return { container, url: container.getConnectionUri() };
  },

  async eventstoredb({ GenericContainer, Wait }) {
    const container = await new GenericContainer(EVENTSTORE_IMAGE)
      .withEnvironment({
        EVENTSTORE_CLUSTER_SIZE: '1',
        EVENTSTORE_INSECURE: 'true', // test only: no TLS, no users
        EVENTSTORE_RUN_PROJECTIONS: 'None',
        EVENTSTORE_START_STANDARD_PROJECTIONS: 'false',
        EVENTSTORE_MEM_DB: 'true',
      })
      .withExposedPorts(2113)
      .withWaitStrategy(Wait.forHttp('/health/live', 2113).forStatusCodeMatching((status) => status >= 200 && status < 300))
      .withStartupTimeout(120_000)
      .start();
    return { container, url: `esdb://${container.getHost()}:${container.getMappedPort(2113)}?tls=false` };
  },

  /**
   * Single-node KRaft broker on the apache/kafka image. (@testcontainers/kafka 11.x only drives
   * Confluent images, and 12.x needs Node 22.) Clients must be told the host's mapped port, which is
   * known only once the container runs, so the container waits for a file holding its advertised
   * listeners before it runs the image's own start script: the same trick as @testcontainers/kafka.
   */
  async kafka({ GenericContainer, Wait }) {
    const listenersFile = '/tmp/advertised-listeners';
    const waiting = 'waiting for advertised listeners';
    const container = await new GenericContainer(KAFKA_IMAGE)
      .withEnvironment({
        KAFKA_NODE_ID: '1',
        KAFKA_PROCESS_ROLES: 'broker,controller',
        KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
        KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
        // PLAINTEXT for the host (advertised with the mapped port), BROKER inside the container.
        KAFKA_LISTENERS: 'PLAINTEXT://:9092,BROKER://:29092,CONTROLLER://:9093',
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT',
        KAFKA_INTER_BROKER_LISTENER_NAME: 'BROKER',
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      })
      .withExposedPorts(9092)
      .withCommand([
        'sh',
        '-c',
        `echo '${waiting}'; while [ ! -s ${listenersFile} ]; do sleep 0.1; done; ` +
          `export KAFKA_ADVERTISED_LISTENERS="$(cat ${listenersFile})"; exec /etc/kafka/docker/run`,
      ])
      .withWaitStrategy(Wait.forLogMessage(waiting))
      .start();
    const brokers = `${container.getHost()}:${container.getMappedPort(9092)}`;
    try {
      await container.copyContentToContainer([
        { content: `PLAINTEXT://${brokers},BROKER://localhost:29092\n`, target: listenersFile },
      ]);
      await waitForBroker(brokers, 180_000);
    } catch (error) {
      await container.stop().catch(() => undefined);
      throw error;
    }
    return { container, url: brokers };
  },
};

/** Poll from the host, the way the tests connect, until the broker answers a metadata request. */
async function waitForBroker(brokers: string, timeoutMs: number): Promise<void> {
  const { Kafka, logLevel } = await import('kafkajs');
  const deadline = Date.now() + timeoutMs;
  const kafka = new Kafka({
    clientId: `testcontainers-probe-${randomUUID()}`,
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2_000,
    retry: { retries: 0 },
  });
  for (let lastError: unknown; ; ) {
    if (Date.now() > deadline) {
      throw new Error(`Kafka at ${brokers} did not answer within ${timeoutMs} ms: ${String(lastError)}`);
    }
    const admin = kafka.admin();
    try {
      await admin.connect();
      await admin.describeCluster();
      return;
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}
