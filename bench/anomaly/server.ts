import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { Pool } from 'undici';

import { basicAuthorization, controlPool, describeResponse, jsonBody, requestJson, stringField } from '../refresh/http';
import { freePort, spawnServer, type ChildServer } from '../refresh/processes';
import { createDatabase, SCOPE, waitReady, type Chain, type RunningTarget } from '../refresh/targets';

/**
 * `token-ledger serve` with LEDGER_STORE=postgres on a fresh database `tl_bench_<runId>` (created
 * here, dropped by stop() and on Ctrl-C), optionally with KAFKA_BROKERS. The same thing as
 * bench/refresh's startTarget('postgres'), which always strips KAFKA_BROKERS from the server's
 * environment: this one also serves the --kafka variant. It is a RunningTarget, so bench/refresh's
 * load driver (runLoad) drives it unchanged.
 */
export interface AnomalyServer extends RunningTarget {
  /** URL of the throw-away database, for the bench's own PostgresEventStore. */
  readonly databaseUrl: string;
  readonly tail: (lines?: number) => string;
  /** Admin + probe requests (not the load's connections). */
  readonly control: Pool;
  readonly adminHeaders: Record<string, string>;
  /** POST /v1/clients: a confidential client with reuse grace 0 (so a second use is reuse, not a replay). */
  registerClient(clientId: string): Promise<{ clientId: string; secret: string; authorization: string }>;
  /** POST /v1/families. */
  issueFamily(clientId: string, subject: string): Promise<{ familyId: string; refreshToken: string }>;
}

export interface ServerContext {
  root: string;
  workDir: string;
  runId: string;
  databaseUrl: string;
  ledgerCli: string;
  /** Set: the server runs the Kafka relay and reads events.v1 for the anomaly engine. */
  brokers?: string[];
  /** LEDGER_ANOMALY_RULES for the server (absolute path). */
  rulesFile?: string;
  startTimeoutMs: number;
  log: (line: string) => void;
}

/** The caller's env without settings that would point the server at other infrastructure. */
function serverEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of [
    'KAFKA_BROKERS',
    'EVENTSTORE_URL',
    'DATABASE_URL',
    'LEDGER_DATA_DIR',
    'LEDGER_STORE',
    'PORT',
    'HOST',
    'LEDGER_ISSUER',
    'LEDGER_ANOMALY_ENGINE',
    'LEDGER_ANOMALY_RULES',
    'LEDGER_ANOMALY_WEBHOOK_URL',
  ]) {
    delete env[key];
  }
  return { ...env, ...extra };
}

/** Extra node flags for the server, e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" (as bench/refresh). */
function serverNodeArgs(): string[] {
  return (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
}

export async function startServer(ctx: ServerContext): Promise<AnomalyServer> {
  const cli = path.resolve(ctx.root, ctx.ledgerCli);
  if (!fs.existsSync(cli)) throw new Error(`${cli} does not exist: build token-ledger first (npm run build)`);
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const adminToken = crypto.randomBytes(32).toString('base64url');
  const db = await createDatabase(ctx.databaseUrl, ctx.runId, ctx.log);
  const env: Record<string, string> = {
    PORT: String(port),
    HOST: '127.0.0.1',
    LEDGER_ISSUER: origin,
    LEDGER_ADMIN_TOKEN: adminToken,
    LEDGER_STORE: 'postgres',
    DATABASE_URL: db.url,
  };
  if (ctx.brokers) env.KAFKA_BROKERS = ctx.brokers.join(',');
  if (ctx.rulesFile) env.LEDGER_ANOMALY_RULES = ctx.rulesFile;
  let server: ChildServer | undefined;
  const control = controlPool(origin);
  try {
    server = spawnServer({
      command: process.execPath,
      args: [...serverNodeArgs(), cli, 'serve'],
      cwd: ctx.root,
      env: serverEnv(env),
      logFile: path.join(ctx.workDir, 'token-ledger.log'),
    });
    await waitReady('token-ledger', server, control, ctx.startTimeoutMs);
  } catch (err) {
    await control.close().catch(() => undefined);
    await server?.stop();
    await db.drop();
    throw err;
  }
  const running = server;
  const adminHeaders = { authorization: `Bearer ${adminToken}` };

  async function registerClient(clientId: string): Promise<{ clientId: string; authorization: string; secret: string }> {
    const secret = crypto.randomBytes(32).toString('base64url');
    const req = jsonBody({ clientId, type: 'confidential', secret, allowedScopes: [SCOPE], reuseGraceSeconds: 0 });
    const res = await requestJson(control, { method: 'POST', path: '/v1/clients', headers: { ...req.headers, ...adminHeaders }, body: req.body });
    if (res.status !== 201) throw new Error(`POST /v1/clients: expected 201, got ${describeResponse(res)}`);
    return { clientId, secret, authorization: basicAuthorization(clientId, secret) };
  }

  async function issueFamily(clientId: string, subject: string): Promise<{ familyId: string; refreshToken: string }> {
    const req = jsonBody({ subject, clientId, scope: SCOPE });
    const res = await requestJson(control, { method: 'POST', path: '/v1/families', headers: { ...req.headers, ...adminHeaders }, body: req.body });
    const familyId = stringField(res.json, 'family_id');
    const refreshToken = stringField(res.json, 'refresh_token');
    if (res.status !== 201 || !familyId || !refreshToken) {
      throw new Error(`POST /v1/families: expected 201 with family_id and refresh_token, got ${describeResponse(res)}`);
    }
    return { familyId, refreshToken };
  }

  let subjects = 0;
  return {
    name: 'postgres',
    origin,
    tokenPath: '/oauth/token',
    jwksPath: '/.well-known/jwks.json',
    pid: running.process.pid,
    logFile: running.logFile,
    databaseUrl: db.url,
    tail: (lines) => running.tail(lines),
    control,
    adminHeaders,
    registerClient,
    issueFamily,
    async newChain(label): Promise<Chain> {
      const client = await registerClient(`bench-${ctx.runId}-${label}`);
      const { refreshToken } = await issueFamily(client.clientId, `bench-user-${ctx.runId}-${label}-${subjects++}`);
      return { clientId: client.clientId, clientSecret: client.secret, authorization: client.authorization, refreshToken };
    },
    async restartChain(chain) {
      chain.refreshToken = (await issueFamily(chain.clientId, `bench-user-${ctx.runId}-${chain.clientId}-${subjects++}`)).refreshToken;
    },
    async stop() {
      await control.close().catch(() => undefined);
      await running.stop();
      await db.drop();
    },
  };
}

