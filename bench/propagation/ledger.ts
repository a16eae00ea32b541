import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Pool } from 'undici';

import { describeResponse, jsonBody, requestJson, stringField } from '../refresh/http';
import { freePort, spawnServer, type ChildServer } from '../refresh/processes';
import { createDatabase, waitReady } from '../refresh/targets';

export const SCOPE = 'api:read';

export interface Family {
  familyId: string;
  accessToken: string;
}

export interface RunningLedger {
  origin: string;
  adminToken: string;
  pid: number | undefined;
  logFile: string;
  /** Admin requests (client, families) and the measured revocations; `connections` ≥ concurrency. */
  pool: Pool;
  registerClient(clientId: string): Promise<void>;
  issueFamily(clientId: string, subject: string): Promise<Family>;
  /** POST /v1/families/{id}/revoke; resolves when the whole response has arrived. */
  revoke(familyId: string): Promise<{ status: number; body: string }>;
  stop(): Promise<void>;
}

export interface LedgerContext {
  root: string;
  workDir: string;
  runId: string;
  databaseUrl: string;
  brokers: string[];
  ledgerCli: string;
  startTimeoutMs: number;
  connections: number;
  log: (line: string) => void;
}

/** The caller's env without settings that would point the server at other infrastructure. */
function serverEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ['KAFKA_BROKERS', 'EVENTSTORE_URL', 'DATABASE_URL', 'LEDGER_DATA_DIR', 'LEDGER_STORE', 'PORT', 'HOST', 'LEDGER_ISSUER']) {
    delete env[key];
  }
  return { ...env, ...extra };
}

/**
 * `token-ledger serve` with LEDGER_STORE=postgres on a fresh database `tl_bench_<runId>` (created
 * here, dropped by stop() and on SIGINT) and KAFKA_BROKERS, so it runs the relay, the Kafka
 * propagator and the SSE hub. Ready when /readyz answers 200 (store and broker checked; serve starts
 * the background work — relay, propagator group joined — before it listens).
 */
export async function startLedger(ctx: LedgerContext): Promise<RunningLedger> {
  const cli = path.resolve(ctx.root, ctx.ledgerCli);
  if (!fs.existsSync(cli)) throw new Error(`${cli} does not exist: build token-ledger first (npm run build)`);
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const adminToken = crypto.randomBytes(32).toString('base64url');
  const db = await createDatabase(ctx.databaseUrl, ctx.runId, ctx.log);
  let server: ChildServer | undefined;
  const pool = new Pool(origin, { connections: ctx.connections, headersTimeout: 30_000, bodyTimeout: 30_000 });
  try {
    server = spawnServer({
      command: process.execPath,
      args: [cli, 'serve'],
      cwd: ctx.root,
      env: serverEnv({
        PORT: String(port),
        HOST: '127.0.0.1',
        LEDGER_ISSUER: origin,
        LEDGER_ADMIN_TOKEN: adminToken,
        LEDGER_STORE: 'postgres',
        DATABASE_URL: db.url,
        KAFKA_BROKERS: ctx.brokers.join(','),
      }),
      logFile: path.join(ctx.workDir, 'token-ledger.log'),
    });
    await waitReady('token-ledger', server, pool, ctx.startTimeoutMs);
  } catch (err) {
    await pool.close().catch(() => undefined);
    await server?.stop();
    await db.drop();
    throw err;
  }
  const running = server;
  const admin = { authorization: `Bearer ${adminToken}` };

  return {
    origin,
    adminToken,
    pid: running.process.pid,
    logFile: running.logFile,
    pool,
    async registerClient(clientId) {
      const req = jsonBody({ clientId, type: 'confidential', secret: crypto.randomBytes(24).toString('base64url'), allowedScopes: [SCOPE] });
      const res = await requestJson(pool, { method: 'POST', path: '/v1/clients', headers: { ...req.headers, ...admin }, body: req.body });
      if (res.status !== 201) throw new Error(`POST /v1/clients: expected 201, got ${describeResponse(res)}`);
    },
    async issueFamily(clientId, subject) {
      const req = jsonBody({ subject, clientId, scope: SCOPE });
      const res = await requestJson(pool, { method: 'POST', path: '/v1/families', headers: { ...req.headers, ...admin }, body: req.body });
      const familyId = stringField(res.json, 'family_id');
      const accessToken = stringField(res.json, 'access_token');
      if (res.status !== 201 || !familyId || !accessToken) {
        throw new Error(`POST /v1/families: expected 201 with family_id and access_token, got ${describeResponse(res)}`);
      }
      return { familyId, accessToken };
    },
    async revoke(familyId) {
      const res = await pool.request({
        method: 'POST',
        path: `/v1/families/${encodeURIComponent(familyId)}/revoke`,
        headers: { 'content-type': 'application/json', ...admin },
        body: '{"reason":"admin"}',
      });
      const body = await res.body.text();
      return { status: res.statusCode, body };
    },
    async stop() {
      await pool.close().catch(() => undefined);
      await running.stop();
      await db.drop();
    },
  };
}

