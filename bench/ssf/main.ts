/**
 * `npm run bench:ssf`: delivery latency of pushed SETs (OpenID Shared Signals, RFC 8935). Starts
 * `token-ledger serve` (embedded and/or PostgreSQL store) with one push stream pointed at a receiver
 * in this process, makes N family revocations over HTTP (C at a time), and measures, per revocation,
 * the delay from its HTTP answer to the receipt of its session-revoked SET; every SET is then
 * verified with the ledger's published JWKS. See bench/ssf/README.md.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { Pool } from 'undici';
import { CAEP_SESSION_REVOKED, SSF_PUSH } from '@token-ledger/domain';
import { log, progress } from '../common/console';
import { machineMeta, parseCommandLine, positive, repoRoot, startDriver, UsageError } from '../common/driver';
import { describeResponse, jsonBody, mapLimit, requestJson, stringField } from '../refresh/http';
import { freePort, runCleanups, spawnServer, type ChildServer } from '../refresh/processes';
import { createDatabase, waitReady } from '../refresh/targets';

type Target = 'embedded' | 'postgres';

interface Options {
  targets: Target[];
  revocations: number;
  concurrency: number;
  json: boolean;
  databaseUrl: string;
  startTimeoutMs: number;
}

const USAGE = `usage: npm run bench:ssf -- [options]
  --target embedded|postgres|both   store(s) to measure (default both)
  --revocations N                   family revocations per target (default 500)
  --concurrency C                   revocations in flight (default 8)
  --database-url URL                PostgreSQL server for the postgres target (default $DATABASE_URL or postgres://postgres@127.0.0.1:5432/test)
  --json                            print the result as JSON on stdout
  --help`;

function parse(argv: string[]): Options | 'help' {
  const o: Options = {
    targets: ['embedded', 'postgres'],
    revocations: 500,
    concurrency: 8,
    json: false,
    databaseUrl: process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test',
    startTimeoutMs: 120_000,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--help':
        return 'help';
      case '--json':
        o.json = true;
        break;
      case '--target': {
        const v = value();
        if (v === 'both') o.targets = ['embedded', 'postgres'];
        else if (v === 'embedded' || v === 'postgres') o.targets = [v];
        else throw new UsageError(`--target must be embedded, postgres or both, got "${v}"`);
        break;
      }
      case '--revocations':
        o.revocations = positive(flag, value(), { integer: true });
        break;
      case '--concurrency':
        o.concurrency = positive(flag, value(), { integer: true });
        break;
      case '--database-url':
        o.databaseUrl = value();
        break;
      default:
        throw new UsageError(`unknown option ${flag}`);
    }
  }
  return o;
}

interface TargetResult {
  target: Target;
  revocations: number;
  concurrency: number;
  /** SETs per second, from the first revocation sent to the last SET received. */
  throughputPerSecond: number;
  /** ms from a revocation's HTTP answer to its SET's receipt (negative: the SET arrived first). */
  delayMs: { p50: number; p95: number; p99: number; max: number; mean: number };
  /** ms from sending the revocation to its SET's receipt. */
  endToEndMs: { p50: number; p95: number; p99: number };
  verified: number;
  invalid: number;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
const round = (n: number) => Math.round(n * 10) / 10;

/** The push receiver: records the receipt time of each SET as it arrives, answers 202, verifies later. */
async function startReceiver(): Promise<{ url: string; sets: Map<string, { at: number; jws: string }>; server: Server; onSet?: () => void }> {
  const sets = new Map<string, { at: number; jws: string }>();
  const state: { url: string; sets: typeof sets; server: Server; onSet?: () => void } = { url: '', sets, server: undefined as unknown as Server };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      const jws = Buffer.concat(chunks).toString('utf8');
      res.writeHead(202).end();
      try {
        const claims = JSON.parse(Buffer.from(jws.split('.')[1], 'base64url').toString('utf8')) as { events: Record<string, { family_id?: string }> };
        const familyId = claims.events[CAEP_SESSION_REVOKED]?.family_id;
        if (familyId && !sets.has(familyId)) sets.set(familyId, { at, jws });
        state.onSet?.();
      } catch {
        /* counted as missing */
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  state.server = server;
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  return state;
}

async function runTarget(target: Target, opts: Options, scratch: string, runId: string): Promise<TargetResult> {
  const root = repoRoot();
  const cli = path.join(root, 'dist/apps/cli/src/main.js');
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const adminToken = crypto.randomBytes(32).toString('base64url');
  const receiver = await startReceiver();
  const aud = 'https://bench-receiver.example';
  const subject = 'bench-ssf-user';
  let db: { url: string; drop: () => Promise<void> } | undefined;
  const storeEnv: Record<string, string> = {};
  if (target === 'postgres') {
    db = await createDatabase(opts.databaseUrl, `${runId}_${target}`, log, 'tl_bench_ssf_');
    Object.assign(storeEnv, { LEDGER_STORE: 'postgres', DATABASE_URL: db.url });
  } else {
    const dataDir = path.join(scratch, `data-${target}`);
    fs.mkdirSync(dataDir, { recursive: true });
    Object.assign(storeEnv, { LEDGER_STORE: 'embedded', LEDGER_DATA_DIR: dataDir });
  }
  let server: ChildServer | undefined;
  const pool = new Pool(origin, { connections: opts.concurrency + 2, headersTimeout: 30_000, bodyTimeout: 30_000 });
  try {
    server = spawnServer({
      command: process.execPath,
      args: [cli, 'serve'],
      cwd: root,
      // LEDGER_SSF_ALLOW_INSECURE_PUSH: the receiver is on http://127.0.0.1.
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: String(port), HOST: '127.0.0.1', LEDGER_ISSUER: origin, LEDGER_ADMIN_TOKEN: adminToken, LEDGER_ANOMALY_ENGINE: 'off', LEDGER_SSF_ALLOW_INSECURE_PUSH: 'true', LOG_LEVEL: 'warn', ...storeEnv },
      logFile: path.join(scratch, `ledger-${target}.log`),
    });
    await waitReady(`token-ledger (${target})`, server, pool, opts.startTimeoutMs);
    const auth = { authorization: `Bearer ${adminToken}` };
    const admin = async (p: string, body: unknown) => {
      const { headers, body: text } = jsonBody(body);
      const res = await requestJson(pool, { method: 'POST', path: p, headers: { ...headers, ...auth }, body: text });
      if (res.status >= 300) throw new Error(`POST ${p}: ${describeResponse(res)}`);
      return res;
    };
    // The stream through the control plane's HTTP API, as a receiver's operator would make it.
    const created = await admin('/ssf/streams', { delivery: { method: SSF_PUSH, endpoint_url: receiver.url }, events_requested: [CAEP_SESSION_REVOKED], aud: [aud], description: 'bench:ssf' });
    const streamId = stringField(created.json, 'stream_id')!;
    await admin('/ssf/subjects:add', { stream_id: streamId, subject: { format: 'iss_sub', iss: origin, sub: subject } });
    await admin('/v1/clients', { clientId: 'bench-ssf', type: 'confidential', secret: crypto.randomBytes(16).toString('hex'), allowedScopes: ['api:read'], maxFamiliesPerSubject: opts.revocations + 10 });
    const families = await mapLimit(opts.revocations, Math.min(opts.concurrency, 4), async () => {
      const res = await admin('/v1/families', { subject, clientId: 'bench-ssf', scope: 'api:read' });
      return stringField(res.json, 'family_id')!;
    });
    log(`${target}: ${families.length} families issued; revoking ${opts.revocations}, ${opts.concurrency} at a time`);
    const sentAt = new Map<string, number>();
    const answeredAt = new Map<string, number>();
    const all = new Promise<void>((resolve) => {
      receiver.onSet = () => {
        progress(`${target}: ${receiver.sets.size}/${opts.revocations} SETs received`);
        if (receiver.sets.size >= opts.revocations) resolve();
      };
    });
    const t0 = performance.now();
    await mapLimit(families.length, opts.concurrency, async (i) => {
      sentAt.set(families[i], performance.now());
      await admin(`/v1/families/${families[i]}/revoke`, { reason: 'admin' });
      answeredAt.set(families[i], performance.now());
    });
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${target}: only ${receiver.sets.size} of ${opts.revocations} SETs within 120 s`)), 120_000).unref());
    await Promise.race([all, timeout]);
    progress(`${target}: ${receiver.sets.size}/${opts.revocations} SETs received`, true);
    const last = Math.max(...[...receiver.sets.values()].map((s) => s.at));
    const delays = families.map((f) => receiver.sets.get(f)!.at - answeredAt.get(f)!).sort((a, b) => a - b);
    const e2e = families.map((f) => receiver.sets.get(f)!.at - sentAt.get(f)!).sort((a, b) => a - b);

    // Every SET verified with the published JWKS (after the measurement, so it does not slow receipt).
    const jwks = createRemoteJWKSet(new URL(`${origin}/.well-known/jwks.json`));
    let verified = 0;
    let invalid = 0;
    for (const { jws } of receiver.sets.values()) {
      try {
        await jwtVerify(jws, jwks, { issuer: origin, audience: aud, typ: 'secevent+jwt' });
        verified++;
      } catch {
        invalid++;
      }
    }
    return {
      target,
      revocations: opts.revocations,
      concurrency: opts.concurrency,
      throughputPerSecond: round((opts.revocations / (last - t0)) * 1000),
      delayMs: { p50: round(quantile(delays, 0.5)), p95: round(quantile(delays, 0.95)), p99: round(quantile(delays, 0.99)), max: round(delays[delays.length - 1]), mean: round(delays.reduce((a, b) => a + b, 0) / delays.length) },
      endToEndMs: { p50: round(quantile(e2e, 0.5)), p95: round(quantile(e2e, 0.95)), p99: round(quantile(e2e, 0.99)) },
      verified,
      invalid,
    };
  } finally {
    await pool.close().catch(() => undefined);
    await server?.stop();
    await new Promise<void>((resolve) => receiver.server.close(() => resolve()));
    await db?.drop().catch(() => undefined);
  }
}

async function main(): Promise<number> {
  const parsed = parseCommandLine('bench:ssf', USAGE, parse);
  if (typeof parsed === 'number') return parsed;
  const opts = parsed;
  if (!fs.existsSync(path.join(repoRoot(), 'dist/apps/cli/src/main.js'))) throw new Error('build token-ledger first (npm run build)');
  const { scratch, keepScratch } = startDriver('bench:ssf', { dropsDatabases: true });
  const runId = crypto.randomBytes(4).toString('hex');
  const meta = machineMeta();
  const results: TargetResult[] = [];
  try {
    for (const target of opts.targets) results.push(await runTarget(target, opts, scratch, runId));
  } catch (error) {
    keepScratch();
    log(`bench:ssf failed (logs kept in ${scratch}): ${(error as Error).stack ?? String(error)}`);
    await runCleanups();
    return 1;
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ bench: 'ssf', ...meta, results }, null, 2)}\n`);
  } else {
    process.stdout.write(`bench:ssf — pushed SET delivery (${meta.cpus} × ${meta.cpu}, node ${meta.node})\n`);
    for (const r of results) {
      process.stdout.write(
        `${r.target.padEnd(9)} ${r.revocations} revocations, ${r.concurrency} in flight: ${r.throughputPerSecond} SETs/s; ` +
          `revocation answer → SET receipt p50 ${r.delayMs.p50} ms, p95 ${r.delayMs.p95} ms, p99 ${r.delayMs.p99} ms, max ${r.delayMs.max} ms; ` +
          `request sent → receipt p50 ${r.endToEndMs.p50} ms, p99 ${r.endToEndMs.p99} ms; verified ${r.verified}, invalid ${r.invalid}\n`,
      );
    }
  }
  await runCleanups();
  return results.every((r) => r.invalid === 0) ? 0 : 1;
}

void main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    log(`bench:ssf: ${(error as Error).stack ?? String(error)}`);
    await runCleanups();
    process.exit(1);
  },
);
