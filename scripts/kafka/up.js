#!/usr/bin/env node
'use strict';
// `npm run kafka:up`: start a real single-node Apache Kafka broker (KRaft, broker+controller in one
// JVM) on 127.0.0.1 without Docker, from Apache Kafka's jars on Maven Central. See docs/kafka.md.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const {
  SCALA_BINARY,
  checkJava,
  fail,
  info,
  isOurBroker,
  isPortFree,
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
} = require('./common');
const secure = require('./secure');

const HELP = `Usage: npm run kafka:up [-- --secure]   (node scripts/kafka/up.js [--secure] [--help])

Starts a single-node Apache Kafka broker (KRaft: broker + controller in one JVM) on
127.0.0.1:9092 without Docker, and waits until it answers a metadata request.

The first run downloads Apache Kafka's jars from Maven Central with Maven (about 30 MB) into a
cache outside the repository; later runs start from the cache. Running it while the broker is
already up is a no-op. Stop it with \`npm run kafka:down\`.

--secure (or KAFKA_SECURE=1): a SASL_SSL listener instead of PLAINTEXT, with a throw-away CA and
certificates, SCRAM-SHA-512/256 and PLAIN users admin, ledger, verifier and other, and ACLs: only
User:ledger may create, write and read the token-ledger.* topics; User:verifier may read
token-ledger.revocations.v1; User:other has no rights. Prints the client env files to source.

Needs: Java 17+ (java on PATH or JAVA_HOME), Maven (mvn, first run only), \`npm ci\` done.

Environment:
  KAFKA_PORT                  client listener port (default 9092)
  KAFKA_CONTROLLER_PORT       KRaft controller port (default KAFKA_PORT + 1)
  KAFKA_KEEP_DATA=1           keep topics and offsets from the previous run (default: fresh data)
  KAFKA_UP_TIMEOUT_SECONDS    how long to wait for the broker to answer (default 90)
  KAFKA_HEAP_OPTS             JVM heap flags (default "-Xms128m -Xmx512m")
  KAFKA_JVM_PERFORMANCE_OPTS  JVM GC/JIT flags, replacing the default (G1, C1-only JIT)
  TOKEN_LEDGER_CACHE          cache root (default $XDG_CACHE_HOME/token-ledger or ~/.cache/token-ledger)
  KAFKA_VERSION               broker version (default: the pinned one; others are not tested)

Then: export KAFKA_BROKERS=127.0.0.1:9092
`;

function parseArgs(argv) {
  const args = { secure: false };
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    }
    if (arg === '--secure') {
      args.secure = true;
      continue;
    }
    fail(`unknown argument ${arg} (see --help)`);
  }
  return args;
}

/** Kafka's jars (and their runtime dependencies) in <cache>/kafka/kafka_2.13-<v>/libs, via Maven once. */
function ensureLibs(config) {
  const pom = pomXml(config);
  const pomSha = sha256(pom);
  const kafkaJar = `kafka_${SCALA_BINARY}-${config.version}.jar`;
  const stamp = readJson(config.stampFile);
  if (
    stamp &&
    stamp.version === config.version &&
    stamp.pomSha256 === pomSha &&
    Array.isArray(stamp.jars) &&
    stamp.jars.includes(kafkaJar) &&
    stamp.jars.every((jar) => fs.existsSync(path.join(config.libsDir, jar)))
  ) {
    return { downloadedMs: 0, jars: stamp.jars.length };
  }

  const mvn = spawnSync('mvn', ['--version'], { encoding: 'utf8' });
  if (mvn.error) {
    fail(
      `Kafka ${config.version} is not in the cache (${config.libsDir}) and \`mvn\` was not found (${mvn.error.code}). ` +
        'Maven is needed once, to download Apache Kafka from Maven Central; on Debian/Ubuntu: apt-get install -y maven',
    );
  }

  const started = Date.now();
  info(`resolving Apache Kafka ${config.version} from Maven Central into ${config.libsDir} (first run only)…`);
  fs.mkdirSync(config.distDir, { recursive: true });
  const pomFile = path.join(config.distDir, 'pom.xml');
  fs.writeFileSync(pomFile, pom);
  // Resolve into a private directory and rename it into place, so two concurrent `kafka:up`s
  // never see a half-filled libs directory.
  const staging = path.join(config.distDir, `libs.tmp-${process.pid}`);
  fs.rmSync(staging, { recursive: true, force: true });
  const result = spawnSync(
    'mvn',
    [
      '-B',
      '--no-transfer-progress',
      '-Dstyle.color=never',
      '-f',
      pomFile,
      'dependency:copy-dependencies',
      `-DoutputDirectory=${staging}`,
      '-DincludeScope=runtime',
    ],
    { encoding: 'utf8', cwd: config.distDir, maxBuffer: 64 * 1024 * 1024 },
  );
  if (result.status !== 0) {
    fs.rmSync(staging, { recursive: true, force: true });
    const lines = `${result.stdout || ''}${result.stderr || ''}`.trim().split('\n');
    const errors = lines.filter((line) => line.startsWith('[ERROR]'));
    const output = (errors.length ? errors : lines).slice(-40).join('\n');
    fail(
      `Maven could not resolve org.apache.kafka:kafka_${SCALA_BINARY}:${config.version} (exit ${result.status}). ` +
        `Is Maven Central reachable (proxy settings in ~/.m2/settings.xml)?\n${output}`,
    );
  }
  const jars = fs.readdirSync(staging).filter((name) => name.endsWith('.jar')).sort();
  if (!jars.includes(kafkaJar)) fail(`Maven finished but ${kafkaJar} is not in ${staging}`);
  fs.writeFileSync(
    path.join(staging, path.basename(config.stampFile)),
    `${JSON.stringify({ version: config.version, pomSha256: pomSha, resolvedAt: new Date().toISOString(), jars }, null, 2)}\n`,
  );
  fs.rmSync(config.libsDir, { recursive: true, force: true });
  try {
    fs.renameSync(staging, config.libsDir);
  } catch (error) {
    // Another `kafka:up` won the race; its libs are as good as ours.
    fs.rmSync(staging, { recursive: true, force: true });
    if (!fs.existsSync(config.stampFile)) throw error;
  }
  return { downloadedMs: Date.now() - started, jars: jars.length };
}

function serverProperties(config, secrets) {
  const listeners = secrets
    ? secure.listenerProperties(config, secrets)
    : [
        `listeners=PLAINTEXT://${config.host}:${config.port},CONTROLLER://${config.host}:${config.controllerPort}`,
        `advertised.listeners=PLAINTEXT://${config.host}:${config.port}`,
        'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
        'inter.broker.listener.name=PLAINTEXT',
        'controller.listener.names=CONTROLLER',
      ];
  const lines = [
    '# Generated by token-ledger scripts/kafka/up.js for a local single-node test broker.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@${config.host}:${config.controllerPort}`,
    ...listeners,
    `log.dirs=${config.dataDir}`,
    // One node: every internal topic has one replica, and few partitions so the first consumer
    // group and the first transaction do not wait for 50 partitions to be created.
    'num.partitions=1',
    'default.replication.factor=1',
    'min.insync.replicas=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=1',
    'group.initial.rebalance.delay.ms=0',
    // Topics are created explicitly, as in production.
    'auto.create.topics.enable=false',
    'delete.topic.enable=true',
    // Small machine: fewer threads and a small compaction buffer (the default 128 MiB is on-heap).
    'num.network.threads=2',
    'num.io.threads=4',
    'background.threads=4',
    'log.cleaner.dedupe.buffer.size=16777216',
    'log.cleaner.backoff.ms=1000',
  ];
  if (config.major >= 4) {
    lines.push('share.coordinator.state.topic.replication.factor=1', 'share.coordinator.state.topic.min.isr=1');
  }
  return `${lines.join('\n')}\n`;
}

function logConfig(config) {
  if (config.major >= 4) {
    return `# log4j2 configuration for the local broker (stdout goes to kafka.log).
status = warn
name = token-ledger-kafka
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
`;
  }
  return `# log4j 1.x (reload4j) configuration for the local broker (stdout goes to kafka.log).
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
`;
}

/** A random cluster id in Kafka's format (base64url of 16 bytes, 22 chars, not starting with '-'). */
function newClusterId() {
  for (;;) {
    const id = crypto.randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function jvmArgs(config) {
  const logging =
    config.major >= 4 ? `-Dlog4j2.configurationFile=${config.logConfig}` : `-Dlog4j.configuration=file:${config.logConfig}`;
  return [
    ...config.heapOpts.split(/\s+/).filter(Boolean),
    ...config.performanceOpts.split(/\s+/).filter(Boolean),
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    logging,
    `-Dkafka.logs.dir=${config.instanceDir}`,
    '-cp',
    path.join(config.libsDir, '*'),
  ];
}

function formatStorage(config, java, secrets) {
  if (fs.existsSync(path.join(config.dataDir, 'meta.properties'))) return false; // KAFKA_KEEP_DATA=1
  const args = [
    ...jvmArgs(config).filter((arg) => !arg.startsWith('-Xm')),
    '-Xmx256m',
    'kafka.tools.StorageTool',
    'format',
    '-t',
    newClusterId(),
    '-c',
    config.serverProperties,
    ...(secrets ? secure.scramFormatArgs(secrets) : []),
  ];
  const result = spawnSync(java, args, { encoding: 'utf8' });
  if (result.status !== 0) {
    fail(`formatting the broker's storage failed (exit ${result.status}):\n${result.stdout}${result.stderr}`);
  }
  return true;
}

async function waitUntilReady(config, pid, started, client) {
  const deadline = started + config.timeoutMs;
  for (;;) {
    if (!isOurBroker(pid, config)) {
      fs.rmSync(config.pidFile, { force: true });
      fail(`the broker (pid ${pid}) exited during startup. Last lines of ${config.logFile}:\n${tail(config.logFile)}`);
    }
    const cluster = await probeBroker(config.brokers, 1000, { coordinators: true, client });
    if (cluster) return cluster;
    if (Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      fs.rmSync(config.pidFile, { force: true });
      fail(
        `the broker did not answer on ${config.brokers} within ${seconds(config.timeoutMs)}; stopped it. ` +
          `Last lines of ${config.logFile}:\n${tail(config.logFile)}`,
      );
    }
    await sleep(250);
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const config = resolveConfig();
  config.secure = config.secure || args.secure;
  const started = Date.now();

  // Already running (or starting) from this instance directory: no-op once it answers.
  const existingPid = readPid(config);
  if (isOurBroker(existingPid, config)) {
    const state = readJson(config.stateFile) || {};
    if (!!state.secure !== config.secure) {
      fail(`the broker on ${config.brokers} is running ${state.secure ? 'with' : 'without'} --secure; \`npm run kafka:down\` first to switch`);
    }
    const client = config.secure ? secure.kafkajsOptions(secure.prepareSecrets(config, true)) : undefined;
    const cluster = await waitUntilReady(config, existingPid, started, client);
    info(
      `already running: Kafka ${state.version || '?'} on ${config.brokers} ` +
        `(pid ${existingPid}, cluster ${cluster.clusterId}); nothing to do`,
    );
    if (state.version && state.version !== config.version) {
      info(`note: the running broker is ${state.version}, not ${config.version}; \`npm run kafka:down\` first to switch`);
    }
    return;
  }
  fs.rmSync(config.pidFile, { force: true }); // stale

  for (const [name, port] of [
    ['KAFKA_PORT', config.port],
    ['KAFKA_CONTROLLER_PORT', config.controllerPort],
  ]) {
    if (await isPortFree(port, config.host)) continue;
    const other = await probeBroker(`${config.host}:${port}`, 1500);
    const who = other
      ? `a Kafka broker not started by this script (cluster ${other.clusterId}) answers there`
      : `another process listens there (see: ss -ltnp 'sport = :${port}')`;
    fail(
      `port ${config.host}:${port} (${name}) is busy: ${who}. Stop it, or choose other ports: ` +
        'KAFKA_PORT=<port> (the controller uses KAFKA_PORT+1 unless KAFKA_CONTROLLER_PORT is set).',
    );
  }

  const { java, feature } = checkJava(config);
  const libs = ensureLibs(config);

  const keptData = config.keepData && fs.existsSync(path.join(config.dataDir, 'meta.properties'));
  if (!config.keepData) fs.rmSync(config.dataDir, { recursive: true, force: true });
  fs.mkdirSync(config.dataDir, { recursive: true });
  // Kept data holds the SCRAM credentials of the previous run: keep its secrets too.
  const secrets = config.secure ? secure.prepareSecrets(config, keptData) : undefined;
  fs.writeFileSync(config.serverProperties, serverProperties(config, secrets), { mode: 0o600 });
  fs.writeFileSync(config.logConfig, logConfig(config));

  const formatStarted = Date.now();
  const formatted = formatStorage(config, java, secrets);
  const formatMs = Date.now() - formatStarted;

  const bootStarted = Date.now();
  const log = fs.openSync(config.logFile, 'w');
  const child = spawn(java, [...jvmArgs(config), 'kafka.Kafka', config.serverProperties], {
    cwd: config.instanceDir,
    detached: true,
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  const spawnError = await new Promise((resolve) => {
    child.once('error', resolve);
    child.once('spawn', () => resolve(undefined));
  });
  if (spawnError) fail(`could not start ${java}: ${spawnError.message}`);
  child.unref();
  fs.writeFileSync(config.pidFile, `${child.pid}\n`);
  fs.writeFileSync(
    config.stateFile,
    `${JSON.stringify(
      {
        version: config.version,
        pid: child.pid,
        brokers: config.brokers,
        secure: config.secure,
        ...(secrets ? { caFile: secrets.paths.caCert, envFiles: secure.writeEnvFiles(config, secrets) } : {}),
        controllerPort: config.controllerPort,
        java: feature,
        startedAt: new Date().toISOString(),
      },
      null,
      2,
    )}\n`,
  );

  const cluster = await waitUntilReady(config, child.pid, bootStarted, secrets && secure.kafkajsOptions(secrets));
  const acls = secrets ? await secure.applyAcls(config, secrets) : 0;
  const total = Date.now() - started;
  const rss = rssMiB(child.pid);
  info(
    `Apache Kafka ${config.version} (KRaft) ready on ${config.brokers} in ${seconds(total)} ` +
      `(maven ${libs.downloadedMs ? seconds(libs.downloadedMs) : 'cached'}, ` +
      `format ${formatted ? seconds(formatMs) : 'kept data'}, broker ${seconds(Date.now() - bootStarted)}); ` +
      `pid ${child.pid}${rss ? `, RSS ${rss} MiB` : ''}, cluster ${cluster.clusterId}`,
  );
  info(`logs: ${config.logFile}`);
  if (secrets) {
    const state = readJson(config.stateFile);
    info(`SASL_SSL (SCRAM-SHA-512/256, PLAIN), StandardAuthorizer, ${acls} ACLs; CA: ${secrets.paths.caCert}`);
    for (const [user, file] of Object.entries(state.envFiles)) info(`  ${user.padEnd(8)} set -a; . ${file}; set +a`);
    info(`stop it: ${config.port === 9092 ? '' : `KAFKA_PORT=${config.port} `}npm run kafka:down`);
  } else {
    info(`use it: export KAFKA_BROKERS=${config.brokers}   stop it: npm run kafka:down`);
  }
}

main().catch((error) => fail(error && error.stack ? error.stack : String(error)));
