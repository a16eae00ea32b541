import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Client as PgClient } from 'pg';
import type { Pool } from 'undici';

import { TargetName } from './args';
import {
  basicAuthorization,
  controlPool,
  describeResponse,
  jsonBody,
  requestJson,
  stringField,
} from './http';
import { ChildServer, freePort, registerCleanup, sleep, spawnServer } from './processes';
import { makeRedisDurable, RedisRun } from './redis-durability';

/** One refresh chain: a client and the refresh token it presents next. */
export interface Chain {
  readonly clientId: string;
  readonly clientSecret: string;
  /** Precomputed `Basic …` header value. */
  readonly authorization: string;
  refreshToken: string;
}

export interface RunningTarget {
  readonly name: TargetName;
  readonly origin: string;
  readonly tokenPath: string;
  readonly jwksPath: string;
  /** Server pid, for CPU accounting. */
  readonly pid: number | undefined;
  readonly logFile: string;
  /** What the report should say about this server's configuration (e.g. Redis durability). */
  readonly note?: string;
  /** A new chain on a new client (token-ledger: POST /v1/clients + POST /v1/families). */
  newChain(label: string): Promise<Chain>;
  /** Starts a new family / grant for the chain's client after its token died (e.g. an error). */
  restartChain(chain: Chain): Promise<void>;
  stop(): Promise<void>;
}

export interface TargetContext {
  /** Repository root (holds dist/ and bench/). */
  root: string;
  /** Per-cell scratch directory (logs, embedded data dir). */
  workDir: string;
  /** Short random id, used in client ids, subjects and database names. */
  runId: string;
  maxChains: number;
  databaseUrl: string;
  startTimeoutMs: number;
  /** token-ledger CLI entry point, absolute or relative to root. */
  ledgerCli: string;
  /** Extra environment for token-ledger (rate limits, Redis); the target's own variables win. */
  ledgerEnv?: Record<string, string>;
  /** oidc-provider-redis: the Redis server and the appendfsync to run it with. */
  redis?: { url: string; fsync: 'everysec' | 'always' };
  log: (line: string) => void;
}

export const SCOPE = 'api:read';

/** Extra node flags for the server processes, e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
function serverNodeArgs(): string[] {
  return (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
}

/** token-ledger and the oidc-provider references (keycloak.ts starts Keycloak). */
export async function startTarget(name: Exclude<TargetName, 'keycloak'>, ctx: TargetContext): Promise<RunningTarget> {
  if (name === 'reference') return startReference(ctx);
  if (name === 'oidc-provider-redis') return startReference(ctx, 'redis');
  return startLedger(name, ctx);
}

// ---------------------------------------------------------------------------------------------
// token-ledger (SPEC §3 / §7 / §8)


/**
 * Env for the child: the caller's env minus anything that would pull in other infrastructure, and
 * minus OTEL_* (tracing is on only when asked: --otlp-sink or --ledger-env).
 */
function ledgerEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ['KAFKA_BROKERS', 'EVENTSTORE_URL', 'DATABASE_URL', 'LEDGER_DATA_DIR', 'LEDGER_STORE', 'PORT']) {
    delete env[key];
  }
  for (const key of Object.keys(env)) if (key.startsWith('OTEL_')) delete env[key];
  return { ...env, ...extra };
}

/** Creates `<prefix><runId>` (default tl_bench_); returns its URL and a drop function (also run on SIGINT). */
export async function createDatabase(
  databaseUrl: string,
  runId: string,
  log: (line: string) => void,
  prefix = 'tl_bench_',
): Promise<{ url: string; drop: () => Promise<void> }> {
  const dbName = `${prefix}${runId}`;
  if (!/^[a-z0-9_]+$/.test(dbName)) throw new Error(`unsafe database name ${dbName}`);
  const admin = new PgClient({ connectionString: databaseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${dbName}`);
  } finally {
    await admin.end();
  }
  log(`created database ${dbName}`);
  const url = new URL(databaseUrl);
  url.pathname = `/${dbName}`;
  const unregister = registerCleanup(() => dropDatabase(databaseUrl, dbName, log));
  return {
    url: url.toString(),
    drop: async () => {
      unregister();
      await dropDatabase(databaseUrl, dbName, log);
    },
  };
}

async function dropDatabase(databaseUrl: string, dbName: string, log: (line: string) => void): Promise<void> {
  const admin = new PgClient({ connectionString: databaseUrl });
  await admin.connect();
  try {
    // WITH (FORCE) (PostgreSQL 13+) also ends connections a killed server may have left behind.
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
  log(`dropped database ${dbName}`);
}

export async function waitUntil(
  what: string,
  server: ChildServer,
  timeoutMs: number,
  probe: () => Promise<boolean>,
  /** What the last probe saw, for the timeout's message. */
  lastSeen?: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void server.exited.then(() => {
    exited = true;
  });
  for (;;) {
    if (exited) {
      throw new Error(`${what} exited before it was ready (log ${server.logFile}):\n${server.tail()}`);
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      const seen = lastSeen ? `${lastSeen()}; ` : '';
      throw new Error(`${what} not ready after ${timeoutMs / 1000}s (${seen}log ${server.logFile}):\n${server.tail()}`);
    }
    await sleep(100);
  }
}

/** Waits until a token-ledger server answers GET /readyz with 200 (fails when it exits or times out). */
export async function waitReady(what: string, server: ChildServer, control: Pool, timeoutMs: number): Promise<void> {
  let last = '';
  const probe = async () => {
    try {
      const res = await requestJson(control, { method: 'GET', path: '/readyz' });
      if (res.status === 200) return true;
      last = `HTTP ${res.status} ${res.text.slice(0, 200)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    return false;
  };
  await waitUntil(what, server, timeoutMs, probe, () => `last /readyz: ${last}`);
}

async function startLedger(name: 'embedded' | 'postgres', ctx: TargetContext): Promise<RunningTarget> {
  const cli = path.resolve(ctx.root, ctx.ledgerCli);
  if (!fs.existsSync(cli)) {
    throw new Error(`${cli} does not exist: build token-ledger first (npm run build)`);
  }
  const port = await freePort();
  const adminToken = crypto.randomBytes(32).toString('base64url');
  const env: Record<string, string> = {
    ...ctx.ledgerEnv,
    PORT: String(port),
    LEDGER_ADMIN_TOKEN: adminToken,
    LEDGER_STORE: name,
  };
  if (name === 'embedded') {
    const dataDir = path.join(ctx.workDir, 'ledger-data');
    fs.mkdirSync(dataDir, { recursive: true });
    env.LEDGER_DATA_DIR = dataDir;
  }
  let dropDatabaseNow: (() => Promise<void>) | undefined;
  if (name === 'postgres') {
    const db = await createDatabase(ctx.databaseUrl, ctx.runId, ctx.log);
    env.DATABASE_URL = db.url;
    dropDatabaseNow = db.drop;
  }

  const server = spawnServer({
    command: process.execPath,
    args: [...serverNodeArgs(), cli, 'serve'],
    cwd: ctx.root,
    env: ledgerEnv(env),
    logFile: path.join(ctx.workDir, `${name}.log`),
  });
  const origin = `http://127.0.0.1:${port}`;
  const control = controlPool(origin);
  try {
    await waitReady(`token-ledger (${name})`, server, control, ctx.startTimeoutMs);
  } catch (err) {
    await control.close().catch(() => undefined);
    await server.stop();
    await dropDatabaseNow?.();
    throw err;
  }

  const admin = { authorization: `Bearer ${adminToken}` };

  async function issueFamily(clientId: string, subject: string): Promise<string> {
    const req = jsonBody({ subject, clientId, scope: SCOPE });
    const res = await requestJson(control, {
      method: 'POST',
      path: '/v1/families',
      headers: { ...req.headers, ...admin },
      body: req.body,
    });
    const refreshToken = stringField(res.json, 'refresh_token');
    if (res.status !== 201 || !refreshToken) {
      throw new Error(`POST /v1/families: expected 201 with refresh_token, got ${describeResponse(res)}`);
    }
    return refreshToken;
  }

  let families = 0;
  return {
    name,
    origin,
    tokenPath: '/oauth/token',
    jwksPath: '/.well-known/jwks.json',
    pid: server.process.pid,
    logFile: server.logFile,
    async newChain(label) {
      const clientId = `bench-${ctx.runId}-${label}`;
      const clientSecret = crypto.randomBytes(32).toString('base64url');
      const req = jsonBody({
        clientId,
        type: 'confidential',
        secret: clientSecret,
        allowedScopes: [SCOPE],
        reuseGraceSeconds: 0,
      });
      const res = await requestJson(control, {
        method: 'POST',
        path: '/v1/clients',
        headers: { ...req.headers, ...admin },
        body: req.body,
      });
      if (res.status !== 201) {
        throw new Error(`POST /v1/clients: expected 201, got ${describeResponse(res)}`);
      }
      const refreshToken = await issueFamily(clientId, `bench-user-${ctx.runId}-${label}-${families++}`);
      return { clientId, clientSecret, authorization: basicAuthorization(clientId, clientSecret), refreshToken };
    },
    async restartChain(chain) {
      chain.refreshToken = await issueFamily(chain.clientId, `bench-user-${ctx.runId}-${chain.clientId}-${families++}`);
    },
    async stop() {
      await control.close().catch(() => undefined);
      await server.stop();
      await dropDatabaseNow?.();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// reference: bench/refresh/reference-server.mjs (oidc-provider 9)

function referenceServerPath(root: string): string {
  return path.join(root, 'bench', 'refresh', 'reference-server.mjs');
}

async function startReference(ctx: TargetContext, adapter: 'memory' | 'redis' = 'memory'): Promise<RunningTarget> {
  const script = referenceServerPath(ctx.root);
  if (!fs.existsSync(script)) throw new Error(`${script} not found`);
  const port = await freePort();
  const seedToken = crypto.randomBytes(24).toString('base64url');
  let redis: RedisRun | undefined;
  const redisArgs: string[] = [];
  if (adapter === 'redis') {
    if (!ctx.redis) throw new Error('oidc-provider-redis needs a Redis URL');
    const prefix = `tl-bench-${ctx.runId}:`;
    redis = await makeRedisDurable(ctx.redis.url, ctx.redis.fsync, prefix, ctx.log);
    redisArgs.push('--redis', ctx.redis.url, '--redis-prefix', prefix);
  }

  let readyPort: number | undefined;
  const server = spawnServer({
    command: process.execPath,
    // one client per chain plus one for the pre-flight check
    args: [...serverNodeArgs(), script, '--port', String(port), '--clients', String(ctx.maxChains + 1), '--watch-stdin', ...redisArgs],
    cwd: ctx.root,
    env: { ...process.env, BENCH_SEED_TOKEN: seedToken },
    logFile: path.join(ctx.workDir, `reference-${adapter}.log`),
    onStdoutLine: (line) => {
      const m = /^READY (\d+)$/.exec(line);
      if (m) readyPort = Number(m[1]);
    },
  });
  try {
    await waitUntil('reference server', server, ctx.startTimeoutMs, async () => readyPort !== undefined);
    if (readyPort !== port) throw new Error(`reference server reported port ${readyPort}, expected ${port}`);
  } catch (err) {
    await server.stop();
    await redis?.restore();
    throw err;
  }

  const origin = `http://127.0.0.1:${port}`;
  const control = controlPool(origin);

  async function seed(clientId?: string): Promise<{ clientId: string; clientSecret: string; refreshToken: string }> {
    const query = clientId ? `?client_id=${encodeURIComponent(clientId)}` : '';
    const res = await requestJson(control, {
      method: 'POST',
      path: `/__bench/chain${query}`,
      headers: { authorization: `Bearer ${seedToken}` },
    });
    const id = stringField(res.json, 'client_id');
    const secret = stringField(res.json, 'client_secret');
    const refreshToken = stringField(res.json, 'refresh_token');
    if (res.status !== 201 || !id || !secret || !refreshToken) {
      throw new Error(`POST /__bench/chain: ${describeResponse(res)}`);
    }
    return { clientId: id, clientSecret: secret, refreshToken };
  }

  return {
    name: adapter === 'redis' ? 'oidc-provider-redis' : 'reference',
    note: redis?.statement,
    origin,
    tokenPath: '/token',
    jwksPath: '/jwks',
    pid: server.process.pid,
    logFile: server.logFile,
    async newChain() {
      const s = await seed();
      return { ...s, authorization: basicAuthorization(s.clientId, s.clientSecret) };
    },
    async restartChain(chain) {
      chain.refreshToken = (await seed(chain.clientId)).refreshToken;
    },
    async stop() {
      await control.close().catch(() => undefined);
      await server.stop();
      await redis?.restore();
    },
  };
}
