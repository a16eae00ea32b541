/**
 * `npm run bench:propagation`: how long a revocation takes to reach a resource server's verifier,
 * over Kafka and over SSE. See bench/propagation/README.md.
 */
import { parseCommandLine, repoRoot } from '../common/driver';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type { Admin } from 'kafkajs';

import { DEFAULT_TOPICS } from '@token-ledger/messaging';
import { createVerifier, type Verifier } from '@token-ledger/verifier';

import { machineBusyCpuSeconds, processCpuSeconds, selfCpuSeconds } from '../refresh/cpu';
import { mapLimit } from '../refresh/http';
import { installSignalHandlers, registerCleanup, runCleanups } from '../refresh/processes';
import { parseOptions, USAGE, type PropagationOptions } from './args';
import { BrokerUnavailableError, connectAdmin, resetLedgerTopics, waitForQuietPipeline, withTimeout } from './kafka';
import { startLedger, type Family, type RunningLedger } from './ledger';
import { measure, type Transport } from './measure';
import { buildReport, renderReport } from './report';
import { readTopicTimes } from './stages';
import { log, progress } from '../common/console';

/** A verifier per transport, both fail-closed, ready = bootstrapped (topic read to its end / SSE `ready`). */
function startVerifiers(ledger: RunningLedger, brokers: string[]): Record<Transport, Verifier> {
  const common = {
    issuer: ledger.origin,
    jwksUri: `${ledger.origin}/.well-known/jwks.json`,
    failMode: 'closed' as const,
    maxStalenessMs: 10_000,
  };
  return {
    kafka: createVerifier({ ...common, revocations: { kafka: { brokers, topic: DEFAULT_TOPICS.revocations, clientId: 'token-ledger-bench-propagation' } } }),
    sse: createVerifier({ ...common, revocations: { sse: { url: `${ledger.origin}/v1/revocations/stream`, token: ledger.adminToken } } }),
  };
}

let interrupted = false;

async function run(opts: PropagationOptions): Promise<number> {
  // Before the handlers that clean up: a run failing because its server was just killed stays quiet.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => (interrupted = true));
  installSignalHandlers();
  const root = repoRoot();
  const runId = crypto.randomBytes(5).toString('hex');
  const startedAt = new Date().toISOString();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tl-bench-propagation-'));
  let keepWorkDir = false;
  registerCleanup(async () => {
    if (!keepWorkDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  let admin: Admin | undefined;
  let ledger: RunningLedger | undefined;
  let verifiers: Record<Transport, Verifier> | undefined;
  /** Verifiers first (they read from the server and the broker), then the server and its database. */
  const shutdown = async () => {
    const [v, l, a] = [verifiers, ledger, admin];
    verifiers = ledger = admin = undefined;
    if (v) await Promise.all(Object.values(v).map((x) => x.close().catch(() => undefined)));
    await l?.stop().catch((err: Error) => log(`stopping token-ledger failed: ${err.message}`));
    await a?.disconnect().catch(() => undefined);
  };
  // Also on SIGINT/SIGTERM (the child server itself is killed by the signal handler in any case).
  registerCleanup(shutdown);

  try {
    admin = await connectAdmin(opts.brokers);
    log(`Kafka broker answers at ${opts.brokers.join(',')}`);
    // token-ledger has no setting for its topic names or its consumer group, so empty them.
    await resetLedgerTopics(admin, log);

    ledger = await startLedger({
      root,
      workDir,
      runId,
      databaseUrl: opts.databaseUrl,
      brokers: opts.brokers,
      ledgerCli: opts.ledgerCli,
      startTimeoutMs: opts.startTimeoutSec * 1000,
      connections: Math.max(8, opts.concurrency),
      log,
    });
    const server = ledger;
    log(`token-ledger ready at ${server.origin} (pid ${server.pid}, log ${server.logFile})`);

    const clientId = `bench-prop-${runId}`;
    await server.registerClient(clientId);
    const total = opts.warmup + opts.families;
    const issueStarted = Date.now();
    const families: Family[] = await mapLimit(total, 8, (i) => server.issueFamily(clientId, `bench-prop-${runId}-${i}`));
    log(`issued ${total} families (${opts.warmup} warm-up + ${opts.families}) in ${((Date.now() - issueStarted) / 1000).toFixed(1)} s`);

    verifiers = startVerifiers(server, opts.brokers);
    const v = verifiers;
    await withTimeout(Promise.all([v.kafka.ready, v.sse.ready]), 60_000, 'the verifiers did not become ready');
    log('both verifiers ready (Kafka: revocations topic read to its end; SSE: `ready` received)');

    if (!(await waitForQuietPipeline(admin, 500, 30_000))) log('warning: the relay/propagator still had set-up events queued after 30 s; measuring anyway');

    if (opts.warmup > 0) {
      const warm = await measure(server, v, families.slice(0, opts.warmup), { ...opts, label: 'warm-up', progress: () => undefined, maxTimeouts: 3 });
      const lost = warm.samples.filter((x) => x.kafkaMs === null || x.sseMs === null).length;
      if (lost >= Math.min(3, opts.warmup)) {
        throw new Error(`${lost} warm-up revocations did not reach a verifier within ${opts.timeoutMs} ms; not measuring (server log: ${server.logFile})`);
      }
      log(`warm-up: ${warm.samples.length} revocations`);
    }

    const cpu0 = { self: selfCpuSeconds(), server: processCpuSeconds(server.pid), machine: machineBusyCpuSeconds() };
    const result = await measure(server, v, families.slice(opts.warmup), {
      ...opts,
      label: 'measuring',
      progress,
      maxTimeouts: Math.max(10, Math.ceil(opts.families * 0.02)),
    });
    if (result.aborted) log(`stopped early: ${result.samples.length} of ${opts.families} revocations measured, too many timed out`);
    const wallSec = result.wallMs / 1000;
    const driver = ((selfCpuSeconds() - cpu0.self) / wallSec) * 100;
    const serverCpu = cpu0.server === undefined ? undefined : (((processCpuSeconds(server.pid) ?? 0) - cpu0.server) / wallSec) * 100;
    const machine = cpu0.machine === undefined ? undefined : (((machineBusyCpuSeconds() ?? 0) - cpu0.machine) / wallSec) * 100;
    const rest = machine === undefined || serverCpu === undefined ? undefined : Math.max(0, machine - serverCpu - driver);

    // Where the Kafka path spends its time, from the records' own timestamps (after the measurement).
    const times = await readTopicTimes(opts.brokers, admin, `token-ledger-bench-propagation-${runId}`, 30_000).catch((err: Error) => {
      log(`warning: could not read the record timestamps for the stage breakdown: ${err.message}`);
      return undefined;
    });
    for (const s of result.samples) {
      s.relayedAt = times?.relayed.get(s.familyId);
      s.propagatedAt = times?.propagated.get(s.familyId);
    }
    const report = buildReport(opts, result, { driver, server: serverCpu, rest }, startedAt);
    await shutdown();
    await runCleanups();

    process.stdout.write(`\n${renderReport(report)}\n`);
    if (opts.jsonFile) {
      fs.writeFileSync(opts.jsonFile, `${JSON.stringify(report, (_k, val) => (val === Infinity ? null : val), 2)}\n`);
      log(`results written to ${opts.jsonFile}`);
    }
    return report.target.pass ? 0 : 1;
  } catch (err) {
    if (interrupted) return 130; // the signal handler is already cleaning up and exits
    if (err instanceof BrokerUnavailableError) {
      log(`bench:propagation: ${err.message}`);
    } else {
      log(`bench:propagation: FAILED: ${(err as Error)?.stack ?? String(err)}`);
      keepWorkDir = fs.readdirSync(workDir).length > 0;
      if (keepWorkDir) log(`server log kept in ${workDir}`);
    }
    await shutdown();
    await runCleanups();
    return 1;
  }
}

async function main(): Promise<number> {
  const opts = parseCommandLine<PropagationOptions>('bench:propagation', USAGE, (argv) => parseOptions(argv));
  return typeof opts === 'number' ? opts : run(opts);
}

main().then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now; should a kafkajs or undici socket linger, do not wait for it.
    setTimeout(() => process.exit(code), 2_000).unref();
  },
  async (err: unknown) => {
    log(`bench:propagation: ${(err as Error)?.stack ?? String(err)}`);
    await runCleanups();
    process.exit(1);
  },
);
