#!/usr/bin/env node
'use strict';
// `npm run kafka:down`: stop the broker `npm run kafka:up` started (pid file, SIGTERM, then SIGKILL).
// Idempotent: nothing running is not an error. See docs/kafka.md.

const fs = require('node:fs');
const { fail, info, isOurBroker, readPid, resolveConfig, seconds, sleep } = require('./common');

const HELP = `Usage: npm run kafka:down          (node scripts/kafka/down.js [--help])

Stops the local Kafka broker started by \`npm run kafka:up\` for KAFKA_PORT (default 9092):
SIGTERM (clean shutdown), then SIGKILL after KAFKA_DOWN_TIMEOUT_SECONDS (default 30).
Also stops a \`--secure\` broker (same KAFKA_PORT).
Does nothing, successfully, when no broker is running. Data stays in the cache directory until the
next \`kafka:up\` replaces it (unless KAFKA_KEEP_DATA=1).
`;

function parseArgs(argv) {
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    }
    fail(`unknown argument ${arg} (see --help)`);
  }
}

function signal(pid, name) {
  try {
    process.kill(pid, name);
    return true;
  } catch (error) {
    if (error.code === 'ESRCH') return false;
    throw error;
  }
}

async function waitForExit(pid, config, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isOurBroker(pid, config)) return true;
    await sleep(100);
  }
  return !isOurBroker(pid, config);
}

async function main() {
  parseArgs(process.argv.slice(2));
  const config = resolveConfig();
  const timeoutSeconds = Number(process.env.KAFKA_DOWN_TIMEOUT_SECONDS || 30);
  if (!(timeoutSeconds > 0)) fail(`KAFKA_DOWN_TIMEOUT_SECONDS=${process.env.KAFKA_DOWN_TIMEOUT_SECONDS} is not a positive number`);

  const pid = readPid(config);
  if (!isOurBroker(pid, config)) {
    fs.rmSync(config.pidFile, { force: true });
    info(`not running on ${config.brokers}${pid ? ` (removed stale pid file for ${pid})` : ''}; nothing to do`);
    return;
  }

  const started = Date.now();
  signal(pid, 'SIGTERM');
  let exited = await waitForExit(pid, config, timeoutSeconds * 1000);
  let how = 'SIGTERM';
  if (!exited) {
    info(`broker (pid ${pid}) still running after ${timeoutSeconds} s; sending SIGKILL`);
    signal(pid, 'SIGKILL');
    exited = await waitForExit(pid, config, 10000);
    how = 'SIGKILL';
  }
  if (!exited) fail(`could not stop the broker (pid ${pid})`);
  fs.rmSync(config.pidFile, { force: true });
  info(`stopped the broker on ${config.brokers} (pid ${pid}, ${how}) in ${seconds(Date.now() - started)}`);
}

main().catch((error) => fail(error && error.stack ? error.stack : String(error)));
