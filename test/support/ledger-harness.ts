import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { freePort } from './free-port';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { openEventStore, dropPostgresSchema, type OpenedStore } from '@token-ledger/event-store';
import { freshEmbeddedDataDir } from '../../libs/event-store/src/testing/embedded-template';
import { embeddedThreadEnv } from './embedded-thread';
import { createApp, loadConfig, openRuntime, startBackgroundWork, type LedgerRuntime, type MessagingNames } from '../../apps/token-ledger/src';

/** Random per run: a published value would be refused at start-up (config/admin-token.ts). */
export const ADMIN_TOKEN = randomBytes(32).toString('base64url');

export type StoreKind = { kind: 'embedded' } | { kind: 'postgres'; url: string };

/** A running token-ledger on a real store and a real port, with its log lines captured. */
export interface Ledger {
  baseUrl: string;
  app: NestFastifyApplication;
  runtime: LedgerRuntime;
  store: OpenedStore;
  dataDir: string;
  /** Postgres schema of this run (unused on the embedded store). */
  schema: string;
  logs: string[];
  /** Stops the app and the store but keeps the data (for restart tests). */
  stop(): Promise<void>;
  /** Stops and deletes the data. */
  destroy(): Promise<void>;
}

export interface StartOptions {
  store?: StoreKind;
  env?: Record<string, string>;
  /** Reuse the data of an earlier run (restart). */
  dataDir?: string;
  schema?: string;
  /** Kafka topic names and consumer-group prefix (runs on a shared broker use their own). */
  messaging?: MessagingNames;
  /** What the app is given instead of the opened store: a wrapper of it (fault injection). */
  wrapStore?: (store: OpenedStore) => OpenedStore;
}

export async function startLedger(opts: StartOptions = {}): Promise<Ledger> {
  const kind = opts.store ?? { kind: 'embedded' };
  // A new embedded store starts from a copy of an initialised cluster: PGlite's initdb is the slowest part of a start.
  const dataDir = opts.dataDir ?? (kind.kind === 'embedded' ? await freshEmbeddedDataDir('tl-e2e-') : mkdtempSync(path.join(tmpdir(), 'tl-e2e-')));
  const schema = opts.schema ?? `tl_e2e_${randomBytes(6).toString('hex')}`;
  const port = await freePort();
  const config = loadConfig({
    LEDGER_ADMIN_TOKEN: ADMIN_TOKEN,
    LEDGER_DATA_DIR: dataDir,
    LOG_LEVEL: 'debug',
    PORT: String(port),
    HOST: '127.0.0.1',
    LEDGER_ISSUER: `http://127.0.0.1:${port}`,
    ...(kind.kind === 'postgres' ? { LEDGER_STORE: 'postgres', DATABASE_URL: kind.url } : {}),
    ...embeddedThreadEnv(),
    ...opts.env,
  });
  const logs: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _enc, done) {
        logs.push(String(chunk));
        done();
      },
    }),
  );
  const store =
    kind.kind === 'postgres'
      ? await openEventStore({ store: 'postgres', url: kind.url, schema, acquireTimeoutMs: config.databaseAcquireTimeoutMs })
      : await openEventStore({ store: 'embedded', dataDir, thread: config.embeddedThread });
  const runtime = await openRuntime(config, logger, { store: opts.wrapStore ? opts.wrapStore(store) : store, messaging: opts.messaging });
  const app = await createApp(runtime);
  const stopBackground = await startBackgroundWork(app, runtime);
  await app.listen({ port: config.port, host: '127.0.0.1' });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await stopBackground();
    await app.close();
    await runtime.close();
  };
  return {
    baseUrl: config.issuer,
    app,
    runtime,
    store,
    dataDir,
    schema,
    logs,
    stop,
    async destroy() {
      await stop();
      if (kind.kind === 'postgres') await dropPostgresSchema(kind.url, schema);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Small HTTP helpers speaking the SPEC's shapes. */
export class LedgerClient {
  constructor(readonly baseUrl: string) {}

  async admin(method: string, route: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers }> {
    const res = await fetch(`${this.baseUrl}${route}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  }

  async registerClient(input: Record<string, unknown>): Promise<{ clientId: string; secret: string }> {
    const secret = (input.secret as string | undefined) ?? `secret-${randomBytes(12).toString('hex')}`;
    const res = await this.admin('POST', '/v1/clients', { type: 'confidential', allowedScopes: ['api:read', 'api:write', 'offline_access'], ...input, secret: input.type === 'public' ? undefined : secret });
    if (res.status !== 201) throw new Error(`register client: ${res.status} ${JSON.stringify(res.body)}`);
    return { clientId: input.clientId as string, secret };
  }

  async issue(input: Record<string, unknown>): Promise<any> {
    const res = await this.admin('POST', '/v1/families', input);
    if (res.status !== 201) throw new Error(`issue: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  async form(route: string, params: Record<string, string>, client?: { clientId: string; secret?: string }, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
    const auth: Record<string, string> = {};
    if (client?.secret !== undefined) {
      auth.authorization = `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.secret)}`).toString('base64')}`;
    } else if (client) {
      params = { ...params, client_id: client.clientId };
    }
    const res = await fetch(`${this.baseUrl}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth, ...headers },
      body: new URLSearchParams(params).toString(),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text for the assertion message */
    }
    return { status: res.status, body, headers: res.headers };
  }

  refresh(refreshToken: string, client: { clientId: string; secret?: string }, extra: Record<string, string> = {}) {
    return this.form('/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken, ...extra }, client);
  }
}

