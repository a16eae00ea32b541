/**
 * A Kafka broker restart in the middle of a stream loses nothing: the KafkaRelay keeps relaying
 * while events are appended, the broker is stopped (`scripts/kafka/down.js`, clean SIGTERM) and
 * started again on its kept data (`KAFKA_KEEP_DATA=1 scripts/kafka/up.js`), appends continue
 * throughout, and afterwards every event is on the topic at least once (deduplicated by eventId)
 * and the relay's checkpoint has reached the store's head.
 *
 * The restarted broker is a PRIVATE one, started by this file on free ports from the jars
 * `npm run kafka:up` cached, with its own cache root in a temp directory (the jars are symlinked):
 * restarting the shared broker at KAFKA_BROKERS would break the suites jest runs in parallel in
 * other workers, and anyone else using that broker. The shared broker is never touched (it only
 * gates the suite, like every Kafka suite). The private broker is stopped and its directory
 * removed in afterAll.
 */
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { ensureTopics, KafkaRelay, readCheckpoint, type TopicNames } from '@token-ledger/messaging';
import { describeWithBackend, requiredBackends } from '../backends';
import { collect, eventually, familyEvent, kafkaClient, openTempStore, runId, testTopics } from './support';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const kafkaScripts = require('../../scripts/kafka/common.js') as {
  resolveConfig(env: NodeJS.ProcessEnv): {
    version: string;
    distDir: string;
    stampFile: string;
    pidFile: string;
    serverProperties: string;
    instanceDir: string;
  };
  isOurBroker(pid: number | undefined, config: unknown): boolean;
  readPid(config: unknown): number | undefined;
};

const ROOT = path.resolve(__dirname, '..', '..');
const UP = path.join(ROOT, 'scripts', 'kafka', 'up.js');
const DOWN = path.join(ROOT, 'scripts', 'kafka', 'down.js');

/** What starting a private broker needs: the cached jars and a Java runtime. undefined = all there. */
function missingTooling(): string | undefined {
  const shared = kafkaScripts.resolveConfig(process.env);
  if (!fs.existsSync(shared.stampFile)) return `the Kafka ${shared.version} jars are not cached (${shared.stampFile}); run \`npm run kafka:up\` once`;
  const java = process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
  if (spawnSync(java, ['-version']).error) return `no Java runtime (${java})`;
  return undefined;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port P with P and P+1 (the KRaft controller) free. */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if ((await portFree(port)) && (await portFree(port + 1))) return port;
  }
  throw new Error('no free pair of ports for the private broker');
}

function runScript(script: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ ms: number; output: string }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script], { env, cwd: ROOT, timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`.trim();
      if (error) reject(new Error(`${path.basename(script)} failed (${error.message}):\n${output}`));
      else resolve({ ms: Date.now() - started, output });
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The bound of every wait in the test, so its timeout covers them all: a slow step fails on its own
 * bound with its own message, never on jest's timeout in the middle of another.
 */
const WAIT_MS = { relaying: 15_000, down: 20_000, up: 30_000, appendsAfterUp: 15_000, caughtUp: 30_000, onTopic: 20_000 };
const TEST_TIMEOUT_MS = Object.values(WAIT_MS).reduce((a, b) => a + b, 0) + 15_000;

describeWithBackend('kafka', 'KafkaRelay across a broker restart (private broker, KAFKA_KEEP_DATA=1)', (sharedBrokers) => {
  // sharedBrokers is '' when the suite is only being registered as skipped: check nothing then.
  const missing = sharedBrokers ? missingTooling() : undefined;
  if (missing) {
    if (requiredBackends().has('kafka')) {
      it('needs a local Kafka installation to restart a broker', () => {
        throw new Error(`cannot start a private broker: ${missing}`);
      });
    } else {
      console.warn(`broker-restart: skipped: cannot start a private broker: ${missing}`);
      it.skip(`loses nothing across a broker restart (skipped: ${missing})`, () => undefined);
    }
    return;
  }

  const run = runId();
  const topics: TopicNames = testTopics(run);
  let cacheRoot: string;
  let env: NodeJS.ProcessEnv;
  let brokers: string;
  let kafka: Kafka;
  let admin: Admin | undefined;

  beforeAll(async () => {
    const port = await freePortPair();
    brokers = `127.0.0.1:${port}`;
    // Own cache root, so the instance directory (config, data, pid, log) is ours alone; the jars
    // are the shared cache's, through a symlink (up.js only reads them when its stamp matches).
    cacheRoot = fs.mkdtempSync(path.join(tmpdir(), 'tl-kafka-restart-'));
    env = { ...process.env, TOKEN_LEDGER_CACHE: cacheRoot, KAFKA_PORT: String(port), KAFKA_HEAP_OPTS: '-Xms64m -Xmx256m', KAFKA_UP_TIMEOUT_SECONDS: '25' };
    delete env.KAFKA_CONTROLLER_PORT;
    delete env.KAFKA_KEEP_DATA;
    const shared = kafkaScripts.resolveConfig(process.env);
    const mine = kafkaScripts.resolveConfig(env);
    fs.mkdirSync(path.dirname(mine.distDir), { recursive: true });
    fs.symlinkSync(shared.distDir, mine.distDir, 'dir');
    const up = await runScript(UP, env, WAIT_MS.up);
    console.log(`broker-restart: private broker on ${brokers} up in ${up.ms} ms`);
    kafka = kafkaClient(brokers, 'tl-test-restart');
    admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, { topics, partitions: 3 });
  }, WAIT_MS.up + 15_000);

  afterAll(async () => {
    await admin?.disconnect().catch(() => undefined);
    if (!env) return;
    // Stop the private broker however the test ended; kill it if down.js could not.
    await runScript(DOWN, { ...env, KAFKA_DOWN_TIMEOUT_SECONDS: '10' }, 20_000).catch((e: Error) => console.warn(e.message));
    const mine = kafkaScripts.resolveConfig(env);
    const pid = kafkaScripts.readPid(mine);
    if (kafkaScripts.isOurBroker(pid, mine)) process.kill(pid!, 'SIGKILL');
    fs.rmSync(mine.distDir, { force: true }); // the symlink only, never the shared jars
    fs.rmSync(cacheRoot, { recursive: true, force: true });
  }, 30_000);

  it('every event appended before, during and after the restart reaches the topic; the checkpoint reaches the head', async () => {
    const { store, close } = await openTempStore();
    const name = `relay-${run}`;
    const errors: unknown[] = [];
    const relay = new KafkaRelay(kafka, store, { topics, name, batchSize: 20, retryDelayMs: 200, onError: (e) => errors.push(e) });
    const appended: string[] = [];
    let appending = true;
    let appendFailure: unknown;
    // Appends go on all the time (about one every 2 ms), whatever the broker does.
    const appender = (async () => {
      for (let i = 0; appending; i++) {
        const fam = `fam_${i % 20}`;
        const event = familyEvent('TokenRotated', fam, `user-${i % 7}`, { n: i });
        await store.append(`family-${fam}`, [event], { expectedRevision: 'any' });
        appended.push(event.eventId);
        await sleep(2);
      }
    })().catch((e) => (appendFailure = e));
    let sink: Awaited<ReturnType<typeof collect>> | undefined;
    try {
      await relay.start();
      await eventually(() => relay.position >= 100, 'the relay relaying before the restart', WAIT_MS.relaying);
      const relayedBefore = relay.position;
      const appendedBefore = appended.length;

      const down = await runScript(DOWN, env, WAIT_MS.down);
      const appendedWhileDown = appended.length;
      const up = await runScript(UP, { ...env, KAFKA_KEEP_DATA: '1' }, WAIT_MS.up);
      expect(up.output).toMatch(/kept data/); // really a restart on the old data, not a fresh broker
      const appendedAfterUp = appended.length;
      console.log(
        `broker-restart: restarted after ${relayedBefore} positions relayed / ${appendedBefore} appended; ` +
          `down ${down.ms} ms, up ${up.ms} ms; ${appendedAfterUp - appendedBefore} appended meanwhile ` +
          `(${appendedAfterUp - appendedWhileDown} while it was down and starting again)`,
      );
      // Keep appending against the restarted broker for a moment, then stop.
      await eventually(() => appended.length >= appendedAfterUp + 200, 'appends after the restart', WAIT_MS.appendsAfterUp);
      appending = false;
      await appender;
      expect(appendFailure).toBeUndefined();

      const head = await store.headPosition();
      expect(await relay.waitFor(head, WAIT_MS.caughtUp)).toBe(true);
      expect(await readCheckpoint(store.sql, name)).toBe(head);
      expect(errors.length).toBeGreaterThanOrEqual(1); // the relay did notice the outage
      expect(relayedBefore).toBeLessThan(head);

      sink = await collect(kafka, topics.events);
      const wanted = new Set(appended);
      await eventually(() => {
        const got = new Set(sink!.messages.map((m) => m.value.eventId as string));
        return [...wanted].every((id) => got.has(id));
      }, 'every appended event on the topic', WAIT_MS.onTopic);
      const got = new Set(sink.messages.map((m) => m.value.eventId as string));
      expect(got.size).toBe(wanted.size); // nothing else, nothing missing (after deduplication)
      console.log(
        `broker-restart: ${wanted.size} events appended, ${sink.messages.length} records on the topic ` +
          `(${sink.messages.length - got.size} duplicates), ${errors.length} relay errors during the outage`,
      );
    } finally {
      appending = false;
      await appender;
      await sink?.stop();
      await relay.stop();
      await close();
    }
  }, TEST_TIMEOUT_MS);
});
