#!/usr/bin/env node
'use strict';
// Evidence for a broker version bump (docs/kafka.md): runs a kafkajs workload against a broker and
// prints, for every Kafka API kafkajs called, the version it used next to the range the broker
// supports (from an ApiVersions v0 request). Exits 1 when an operation fails or a version is out
// of range. Usage: KAFKA_BROKERS=127.0.0.1:9092 node scripts/kafka/protocol-check.js

const net = require('node:net');
const { Kafka, logLevel, Partitioners, ConfigResourceTypes } = require('kafkajs');

const HELP = `Usage: KAFKA_BROKERS=host:port node scripts/kafka/protocol-check.js [--help]

Runs admin, idempotent and transactional produce, and consumer-group operations with kafkajs
against the broker (creating and deleting its own topic and groups), then prints each Kafka API
kafkajs used, the version it chose and the broker's supported range.
`;

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(HELP);
  process.exit(0);
}

const brokers = (process.env.KAFKA_BROKERS || '127.0.0.1:9092').split(',').map((b) => b.trim());

/** The broker's ApiVersions v0 answer: { apiKey: [min, max] }. */
function brokerApiVersions(address) {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), host);
    const clientId = Buffer.from('token-ledger-protocol-check');
    const body = Buffer.alloc(10 + clientId.length);
    body.writeInt16BE(18, 0); // ApiVersions
    body.writeInt16BE(0, 2); // v0: understood by every broker
    body.writeInt32BE(1, 4); // correlation id
    body.writeInt16BE(clientId.length, 8);
    clientId.copy(body, 10);
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length);
    socket.write(Buffer.concat([size, body]));
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (buffer.length < 4 || buffer.length < 4 + buffer.readInt32BE(0)) return;
      socket.end();
      let offset = 8; // size + correlation id
      const errorCode = buffer.readInt16BE(offset);
      offset += 2;
      if (errorCode !== 0) return reject(new Error(`ApiVersions error code ${errorCode}`));
      const count = buffer.readInt32BE(offset);
      offset += 4;
      const versions = {};
      for (let i = 0; i < count; i += 1, offset += 6) {
        versions[buffer.readInt16BE(offset)] = [buffer.readInt16BE(offset + 2), buffer.readInt16BE(offset + 4)];
      }
      resolve(versions);
    });
    socket.on('error', reject);
  });
}

async function until(predicate, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function main() {
  const supported = await brokerApiVersions(brokers[0]);
  const used = new Map();
  const kafka = new Kafka({
    clientId: 'token-ledger-protocol-check',
    brokers,
    logLevel: logLevel.DEBUG,
    logCreator:
      () =>
      ({ log }) => {
        const match = /^Request (\w+)\(key: (\d+), version: (\d+)\)/.exec(log.message);
        if (match) used.set(match[1], [Number(match[2]), Number(match[3])]);
      },
  });
  const run = Date.now().toString(36);
  const topic = `tl-protocol-check.${run}`;
  const groupId = `tl-protocol-check.${run}`;
  const admin = kafka.admin();
  await admin.connect();
  const producer = kafka.producer({ idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
  const transactional = kafka.producer({
    transactionalId: `tl-protocol-check.${run}`,
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 2, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
    });
    await admin.describeConfigs({
      includeSynonyms: true,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
    });
    await admin.alterConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
    });
    await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });

    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'a', value: '1' }, { key: 'b', value: '2' }] });
    await transactional.connect();
    const transaction = await transactional.transaction();
    await transaction.send({ topic, messages: [{ key: 'c', value: '3' }] });
    await transaction.commit();

    let received = 0;
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async () => {
        received += 1;
      },
    });
    await until(() => received >= 3, '3 messages');
    await consumer.disconnect();

    await admin.fetchOffsets({ groupId, topics: [topic] });
    await admin.resetOffsets({ groupId, topic, earliest: true });
    await admin.fetchTopicOffsets(topic);
    await admin.fetchTopicOffsetsByTimestamp(topic, Date.now() - 60000);
    await admin.describeGroups([groupId]);
    await admin.listGroups();
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '-1' }] });
    await admin.deleteGroups([groupId]);
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await transactional.disconnect().catch(() => undefined);
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }

  let bad = 0;
  process.stdout.write(`${'API'.padEnd(20)} key  kafkajs  broker\n`);
  for (const [name, [key, version]] of [...used].sort((a, b) => a[1][0] - b[1][0])) {
    const range = supported[key];
    const ok = range && version >= range[0] && version <= range[1];
    if (!ok) bad += 1;
    process.stdout.write(
      `${name.padEnd(20)} ${String(key).padStart(3)}  ${`v${version}`.padEnd(7)}  ` +
        `${range ? `v${range[0]}-v${range[1]}` : 'not offered'}${ok ? '' : '  <-- UNSUPPORTED'}\n`,
    );
  }
  process.stdout.write(bad ? `${bad} API version(s) out of range\n` : 'all API versions within the broker\'s ranges\n');
  process.exitCode = bad ? 1 : 0;
}

main().catch((error) => {
  process.stderr.write(`protocol-check: ${error.stack || error}\n`);
  process.exit(1);
});
