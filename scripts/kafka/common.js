'use strict';
// Shared by scripts/kafka/up.js and scripts/kafka/down.js: the pinned broker version, where things
// live on disk, and how to tell whether a broker answers. Plain Node (CommonJS), no build step.
// docs/kafka.md explains the design and why this version is pinned.

const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

/**
 * The broker version kafkajs 2.2.4 was verified against (test/kafka-broker.int.spec.ts; evidence in
 * docs/kafka.md). KAFKA_VERSION overrides it for experiments only; nothing else is tested.
 */
const PINNED_KAFKA_VERSION = '4.4.0';
const SCALA_BINARY = '2.13';
/** log4j2 BOM the 4.x broker runs with (its kafka-server module depends on log4j-core 2.25.x). */
const LOG4J2_VERSION = '2.25.5';
/** slf4j 1.7 binding and log4j 1.2 implementation for 3.x brokers (as their distribution ships). */
const SLF4J_RELOAD4J_VERSION = '1.7.36';
const RELOAD4J_VERSION = '1.2.25';
const MAVEN_DEPENDENCY_PLUGIN_VERSION = '3.8.1';

const DEFAULT_PORT = 9092;
const DEFAULT_HEAP_OPTS = '-Xms128m -Xmx512m';
/**
 * Kafka's own G1 settings, plus C1-only JIT: a test broker lives for minutes, and skipping C2
 * roughly halves the time to the first answer on a 2-core machine (docs/kafka.md).
 */
const DEFAULT_PERFORMANCE_OPTS =
  '-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:TieredStopAtLevel=1';
const HOST = '127.0.0.1';

// `npm run kafka:up | head -1` must not crash the script once the reader goes away.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code !== 'EPIPE') throw error;
  });
}

function fail(message, code = 1) {
  process.stderr.write(`kafka: error: ${message}\n`);
  process.exit(code);
}

function info(message) {
  process.stdout.write(`kafka: ${message}\n`);
}

function parsePort(name, value, fallback) {
  if (value === undefined || value === '') return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`${name}=${value} is not a TCP port (1-65535)`);
  return port;
}

function cacheRoot(env = process.env) {
  if (env.TOKEN_LEDGER_CACHE) return path.resolve(env.TOKEN_LEDGER_CACHE);
  const xdg = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(xdg, 'token-ledger');
}

/** Everything the scripts need to know, from the environment. */
function resolveConfig(env = process.env) {
  const version = (env.KAFKA_VERSION || PINNED_KAFKA_VERSION).trim();
  if (!/^\d+\.\d+\.\d+$/.test(version)) fail(`KAFKA_VERSION=${version} is not a release version like ${PINNED_KAFKA_VERSION}`);
  const major = Number(version.split('.')[0]);
  if (major < 3) fail(`KAFKA_VERSION=${version}: only Kafka 3.x (KRaft) and 4.x brokers are supported`);
  const port = parsePort('KAFKA_PORT', env.KAFKA_PORT, DEFAULT_PORT);
  const controllerPort = parsePort('KAFKA_CONTROLLER_PORT', env.KAFKA_CONTROLLER_PORT, port + 1);
  if (controllerPort === port) fail(`KAFKA_CONTROLLER_PORT must differ from KAFKA_PORT (${port})`);
  const timeoutSeconds = Number(env.KAFKA_UP_TIMEOUT_SECONDS || 90);
  if (!(timeoutSeconds > 0)) fail(`KAFKA_UP_TIMEOUT_SECONDS=${env.KAFKA_UP_TIMEOUT_SECONDS} is not a positive number`);

  const kafkaCache = path.join(cacheRoot(env), 'kafka');
  const distDir = path.join(kafkaCache, `kafka_${SCALA_BINARY}-${version}`);
  // One instance directory per port, so two checkouts on one machine can each run a broker.
  const instanceDir = path.join(kafkaCache, 'instances', String(port));
  return {
    version,
    major,
    pinned: version === PINNED_KAFKA_VERSION,
    host: HOST,
    port,
    controllerPort,
    brokers: `${HOST}:${port}`,
    timeoutMs: timeoutSeconds * 1000,
    keepData: env.KAFKA_KEEP_DATA === '1' || env.KAFKA_KEEP_DATA === 'true',
    // SASL_SSL listener, ACLs and throw-away certificates (scripts/kafka/secure.js); `--secure` too.
    secure: env.KAFKA_SECURE === '1' || env.KAFKA_SECURE === 'true',
    // Same names and meaning as in Kafka's own bin/kafka-run-class.sh: each replaces our default.
    heapOpts: env.KAFKA_HEAP_OPTS || DEFAULT_HEAP_OPTS,
    performanceOpts: env.KAFKA_JVM_PERFORMANCE_OPTS || DEFAULT_PERFORMANCE_OPTS,
    kafkaCache,
    distDir,
    libsDir: path.join(distDir, 'libs'),
    stampFile: path.join(distDir, 'libs', '.token-ledger-resolved.json'),
    instanceDir,
    dataDir: path.join(instanceDir, 'data'),
    serverProperties: path.join(instanceDir, 'server.properties'),
    logConfig: path.join(instanceDir, major >= 4 ? 'log4j2.properties' : 'log4j.properties'),
    pidFile: path.join(instanceDir, 'kafka.pid'),
    stateFile: path.join(instanceDir, 'instance.json'),
    logFile: path.join(instanceDir, 'kafka.log'),
  };
}

/** The Maven project whose runtime dependencies are exactly what `kafka.Kafka` needs. */
function pomXml(config) {
  const logging =
    config.major >= 4
      ? // 4.x logs through log4j2; kafka_2.13 brings log4j-api/core, the slf4j 1.7 binding is ours.
        `    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
    </dependency>`
      : // 3.x logs through reload4j (log4j 1.2 API), as its binary distribution does.
        `    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>${SLF4J_RELOAD4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId>
      <version>${RELOAD4J_VERSION}</version>
    </dependency>`;
  const log4jBom =
    config.major >= 4
      ? `  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>org.apache.logging.log4j</groupId>
        <artifactId>log4j-bom</artifactId>
        <version>${LOG4J2_VERSION}</version>
        <type>pom</type>
        <scope>import</scope>
      </dependency>
    </dependencies>
  </dependencyManagement>
`
      : '';
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by token-ledger scripts/kafka/up.js; do not edit (it is rewritten when it changes). -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>token-ledger.local</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>${config.version}</version>
  <packaging>pom</packaging>
${log4jBom}  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_${SCALA_BINARY}</artifactId>
      <version>${config.version}</version>
    </dependency>
${logging}
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>${MAVEN_DEPENDENCY_PLUGIN_VERSION}</version>
      </plugin>
    </plugins>
  </build>
</project>
`;
}

function sha256(text) {
  return crypto.createHash('sha256').update(text).digest('hex');
}

/** JAVA_HOME/bin/java when JAVA_HOME is set, else `java` from PATH. */
function javaCommand(env = process.env) {
  return env.JAVA_HOME ? path.join(env.JAVA_HOME, 'bin', 'java') : 'java';
}

/** Java's feature version (17 for "17.0.15"), or a fatal error when there is no usable java. */
function checkJava(config, env = process.env) {
  const java = javaCommand(env);
  const result = spawnSync(java, ['-version'], { encoding: 'utf8' });
  if (result.error) {
    const where = env.JAVA_HOME ? `JAVA_HOME/bin/java (${java})` : '`java` on PATH';
    fail(
      `${where} not found (${result.error.code}). Kafka ${config.version} needs a Java ${config.major >= 4 ? 17 : 11}+ runtime; ` +
        'on Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless',
    );
  }
  const text = `${result.stderr}${result.stdout}`;
  const match = /version "(\d+)(?:\.(\d+))?/.exec(text);
  if (!match) fail(`could not read the Java version from \`${java} -version\`:\n${text}`);
  const feature = match[1] === '1' ? Number(match[2]) : Number(match[1]);
  const needed = config.major >= 4 ? 17 : 11;
  if (feature < needed) fail(`Kafka ${config.version} needs Java ${needed}+, but ${java} is Java ${feature}`);
  return { java, feature };
}

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function readPid(config) {
  try {
    const pid = Number(fs.readFileSync(config.pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * True when `pid` is alive AND is the broker this instance directory started (on Linux the command
 * line must name our server.properties), so a recycled pid is never signalled.
 */
function isOurBroker(pid, config) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (error.code !== 'EPERM') return false;
  }
  const procCmdline = `/proc/${pid}/cmdline`;
  if (fs.existsSync('/proc/self/cmdline')) {
    try {
      const argv = fs.readFileSync(procCmdline, 'utf8').split('\0');
      return argv.includes('kafka.Kafka') && argv.includes(config.serverProperties);
    } catch {
      return false;
    }
  }
  return true; // no /proc (macOS): trust the pid file
}

/** Resolves true when nothing listens on host:port (we could bind it), false when it is taken. */
function isPortFree(port, host = HOST) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * Asks the broker for its metadata with kafkajs (the client the app uses): resolves
 * `{ clusterId, brokers, controller }` when a broker answers, `undefined` otherwise. Never throws.
 * With `coordinators`, also requires the group coordinator to answer (looking it up creates the
 * __consumer_offsets topic on a fresh broker) and a producer id to be handed out (what an
 * idempotent producer asks for first), so the first consumer group and producer start at once.
 * `client`: extra kafkajs options (ssl, sasl) for a secured broker.
 */
async function probeBroker(brokers, timeoutMs = 2000, { coordinators = false, client = {} } = {}) {
  let Kafka;
  let logLevel;
  try {
    ({ Kafka, logLevel } = require('kafkajs'));
  } catch {
    fail('the kafkajs package is missing: run `npm ci` (or `npm install`) in the repository first');
  }
  const kafka = new Kafka({
    clientId: 'token-ledger-kafka-probe',
    brokers: [brokers],
    connectionTimeout: timeoutMs,
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
    ...client, // ssl / sasl for a secured broker
  });
  const admin = kafka.admin({ retry: { retries: 0 } });
  const producer = coordinators ? kafka.producer({ idempotent: true, retry: { retries: 1, maxRetryTime: 1 } }) : undefined;
  let timer;
  try {
    const result = await Promise.race([
      (async () => {
        await admin.connect();
        const cluster = await admin.describeCluster();
        if (coordinators) {
          await admin.describeGroups(['token-ledger-kafka-probe']);
          await producer.connect(); // InitProducerId
        }
        return cluster;
      })(),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(undefined), timeoutMs + 500);
      }),
    ]);
    if (result && Array.isArray(result.brokers) && result.brokers.length > 0) return result;
    return undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    await admin.disconnect().catch(() => undefined);
    if (producer) await producer.disconnect().catch(() => undefined);
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Last `lines` lines of a log file, for error messages. */
function tail(file, lines = 40) {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    return text.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Resident set size of a process in MiB (Linux), or undefined. */
function rssMiB(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /VmRSS:\s+(\d+) kB/.exec(status);
    return match ? Math.round(Number(match[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

module.exports = {
  PINNED_KAFKA_VERSION,
  SCALA_BINARY,
  checkJava,
  fail,
  info,
  isOurBroker,
  isPortFree,
  javaCommand,
  pomXml,
  probeBroker,
  readJson,
  readPid,
  resolveConfig,
  rssMiB,
  seconds,
  sha256,
  sleep,
  tail,
};
