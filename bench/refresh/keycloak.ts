/**
 * The `keycloak` target: Keycloak (keycloak-quarkus-dist) started by the bench on a fresh PostgreSQL
 * database, configured through its admin REST API as the closest equivalent of token-ledger's hot
 * path: every refresh rotates (revokeRefreshToken, refreshTokenMaxReuse 0: a replayed refresh token
 * is refused and ends the client session, so the chain's current token dies too), access tokens are
 * RFC 9068 JWTs (`typ: at+jwt`) signed ES256 with an `ecdsa-generated` P-256 key.
 * Each chain's first refresh token comes from a password grant (direct access grants), not timed.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type { Pool } from 'undici';

import { basicAuthorization, controlPool, describeResponse, formEncode, jsonBody, requestJson, stringField } from './http';
import { PrerequisiteMissing, findJava, run } from './prerequisites';
import { freePort, spawnServer } from './processes';
import { Chain, createDatabase, RunningTarget, SCOPE, TargetContext, waitUntil } from './targets';

export const KEYCLOAK_RESOURCE = 'https://api.example';

/** Build-time options (baked into the server image by `kc.sh build`; rebuilt only when they change). */
const BUILD_OPTIONS = ['--db=postgres', '--health-enabled=true', '--metrics-enabled=true', '--cache=local'];

/** ~/.cache/token-ledger/keycloak: downloads and unpacks live here, never in the repository. */
export function keycloakCacheDir(): string {
  return path.join(os.homedir(), '.cache', 'token-ledger', 'keycloak');
}

/**
 * An unpacked Keycloak `version`: `home` as given, or ~/.cache/token-ledger/keycloak/keycloak-<version>,
 * fetched from Maven Central with `mvn dependency:copy` and unzipped on first use.
 */
async function ensureKeycloak(version: string, home: string | undefined, log: (line: string) => void): Promise<string> {
  if (home) {
    const kc = path.join(path.resolve(home), 'bin', 'kc.sh');
    if (!fs.existsSync(kc)) throw new PrerequisiteMissing(`--keycloak-home ${home} has no bin/kc.sh`);
    return path.resolve(home);
  }
  const dir = keycloakCacheDir();
  const unpacked = path.join(dir, `keycloak-${version}`);
  if (fs.existsSync(path.join(unpacked, 'bin', 'kc.sh'))) return unpacked;
  fs.mkdirSync(dir, { recursive: true });
  const zip = path.join(dir, `keycloak-quarkus-dist-${version}.zip`);
  if (!fs.existsSync(zip)) {
    log(`downloading org.keycloak:keycloak-quarkus-dist:${version}:zip with mvn into ${dir}`);
    try {
      await run('mvn', ['-q', '-B', 'dependency:copy', `-Dartifact=org.keycloak:keycloak-quarkus-dist:${version}:zip`, `-DoutputDirectory=${dir}`], { timeoutMs: 15 * 60_000 });
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.code === 'ENOENT') throw new PrerequisiteMissing('Keycloak is not in ~/.cache/token-ledger/keycloak and there is no mvn to fetch it (or pass --keycloak-home)');
      throw new Error(`mvn could not fetch keycloak-quarkus-dist ${version}: ${e.message}`);
    }
  }
  log(`unpacking ${path.basename(zip)}`);
  try {
    await run('unzip', ['-q', '-o', zip, '-d', dir], { timeoutMs: 5 * 60_000 });
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') throw new PrerequisiteMissing(`no unzip to unpack ${zip}`);
    throw err;
  }
  if (!fs.existsSync(path.join(unpacked, 'bin', 'kc.sh'))) throw new Error(`${zip} did not unpack to ${unpacked}`);
  return unpacked;
}

/** `kc.sh build` when the image was built with other options (a marker file remembers them). */
async function ensureBuilt(home: string, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<void> {
  const marker = path.join(home, '.tl-bench-build');
  const wanted = BUILD_OPTIONS.join(' ');
  if (fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === wanted) return;
  log(`building the Keycloak server image (${wanted}); a few minutes, once`);
  const started = Date.now();
  await run(path.join(home, 'bin', 'kc.sh'), ['build', ...BUILD_OPTIONS], { cwd: home, env, timeoutMs: 15 * 60_000 });
  fs.writeFileSync(marker, wanted);
  log(`built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

export interface KeycloakOptions {
  version: string;
  home: string | undefined;
}

export async function startKeycloak(ctx: TargetContext, kcOpts: KeycloakOptions): Promise<RunningTarget> {
  const { java, description } = await findJava(17);
  const home = await ensureKeycloak(kcOpts.version, kcOpts.home, ctx.log);
  ctx.log(`Keycloak ${path.basename(home)} on ${description}`);

  const env: NodeJS.ProcessEnv = { ...process.env };
  if (java !== 'java') env.JAVA = java;
  for (const key of Object.keys(env)) if (key.startsWith('KC_') || key.startsWith('KEYCLOAK_')) delete env[key];
  await ensureBuilt(home, env, ctx.log);

  const db = await createDatabase(ctx.databaseUrl, ctx.runId, ctx.log, 'keycloak_bench_');
  const pg = new URL(db.url);
  const jdbc = `jdbc:postgresql://${pg.hostname}:${pg.port || '5432'}${pg.pathname}`;
  const port = await freePort();
  const managementPort = await freePort();
  const adminUser = 'bench-admin';
  const adminPassword = crypto.randomBytes(18).toString('base64url');
  const server = spawnServer({
    command: path.join(home, 'bin', 'kc.sh'),
    args: [
      'start',
      '--optimized',
      `--db-url=${jdbc}`,
      `--db-username=${decodeURIComponent(pg.username) || 'postgres'}`,
      // trust auth ignores it; the JDBC driver wants one
      `--db-password=${decodeURIComponent(pg.password) || 'unused'}`,
      '--http-enabled=true',
      '--http-host=127.0.0.1',
      `--http-port=${port}`,
      `--http-management-port=${managementPort}`,
      '--hostname-strict=false',
      '--log-level=warn',
    ],
    cwd: home,
    env: { ...env, KC_BOOTSTRAP_ADMIN_USERNAME: adminUser, KC_BOOTSTRAP_ADMIN_PASSWORD: adminPassword },
    logFile: path.join(ctx.workDir, 'keycloak.log'),
  });
  const origin = `http://127.0.0.1:${port}`;
  const management = controlPool(`http://127.0.0.1:${managementPort}`);
  const control = controlPool(origin);
  const stopAll = async () => {
    await control.close().catch(() => undefined);
    await management.close().catch(() => undefined);
    await server.stop();
    await db.drop();
  };
  try {
    // a cold JVM that also creates its schema takes minutes on a busy 2-core machine (> 5 min seen)
    const timeoutMs = Math.max(ctx.startTimeoutMs, 900_000);
    const started = Date.now();
    await waitUntil('keycloak', server, timeoutMs, async () => (await requestJson(management, { method: 'GET', path: '/health/ready' })).status === 200);
    ctx.log(`keycloak ready after ${((Date.now() - started) / 1000).toFixed(0)} s`);
    const realm = `bench-${ctx.runId}`;
    const admin = new KeycloakAdmin(control, adminUser, adminPassword);
    await setUpRealm(admin, realm);
    // kc.sh runs java as its child (and forwards SIGTERM to it): CPU accounting needs java's pid
    const pid = javaChild(server.process.pid) ?? server.process.pid;
    return keycloakTarget(ctx, pid, server.logFile, origin, control, admin, realm, stopAll);
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** The java process kc.sh started (Linux /proc), or undefined. */
function javaChild(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return children.find((c) => fs.readFileSync(`/proc/${c}/comm`, 'utf8').trim() === 'java');
  } catch {
    return undefined;
  }
}

/** Admin REST calls with a master-realm token, renewed before its 60 s lifetime runs out. */
class KeycloakAdmin {
  private token: string | undefined;
  private tokenAt = 0;

  constructor(
    private readonly control: Pool,
    private readonly user: string,
    private readonly password: string,
  ) {}

  private async bearer(): Promise<string> {
    if (this.token && Date.now() - this.tokenAt < 30_000) return this.token;
    const res = await requestJson(this.control, {
      method: 'POST',
      path: '/realms/master/protocol/openid-connect/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=password&client_id=admin-cli&username=${formEncode(this.user)}&password=${formEncode(this.password)}`,
    });
    const token = stringField(res.json, 'access_token');
    if (res.status !== 200 || !token) throw new Error(`keycloak admin login: ${describeResponse(res)}`);
    this.token = token;
    this.tokenAt = Date.now();
    return token;
  }

  async call(method: 'GET' | 'POST', apiPath: string, body?: unknown, expect = method === 'POST' ? 201 : 200): Promise<unknown> {
    const req = body === undefined ? { headers: {}, body: undefined } : jsonBody(body);
    const res = await requestJson(this.control, {
      method,
      path: `/admin${apiPath}`,
      headers: { ...req.headers, authorization: `Bearer ${await this.bearer()}` },
      body: req.body,
    });
    if (res.status !== expect) throw new Error(`keycloak ${method} /admin${apiPath}: expected ${expect}, got ${describeResponse(res)}`);
    return res.json;
  }
}

async function setUpRealm(admin: KeycloakAdmin, realm: string): Promise<void> {
  await admin.call('POST', '/realms', {
    realm,
    enabled: true,
    revokeRefreshToken: true,
    refreshTokenMaxReuse: 0,
    defaultSignatureAlgorithm: 'ES256',
    accessTokenLifespan: 300,
  });
  const { id: realmId } = (await admin.call('GET', `/realms/${realm}`)) as { id: string };
  // A new realm has RSA and HMAC keys only; ES256 needs a P-256 key provider.
  await admin.call('POST', `/realms/${realm}/components`, {
    name: 'bench-ecdsa-p256',
    providerId: 'ecdsa-generated',
    providerType: 'org.keycloak.keys.KeyProvider',
    parentId: realmId,
    config: { priority: ['200'], enabled: ['true'], active: ['true'], ecdsaEllipticCurveKey: ['P-256'] },
  });
  const keys = (await admin.call('GET', `/realms/${realm}/keys`)) as { keys?: { algorithm?: string; status?: string }[] };
  if (!keys.keys?.some((k) => k.algorithm === 'ES256' && k.status === 'ACTIVE')) throw new Error('keycloak: no active ES256 key after adding ecdsa-generated');
  // the scope the other targets grant, as a client scope that appears in the token's scope claim
  await admin.call('POST', `/realms/${realm}/client-scopes`, {
    name: SCOPE,
    protocol: 'openid-connect',
    attributes: { 'include.in.token.scope': 'true', 'display.on.consent.screen': 'false' },
  });
}

function keycloakTarget(
  ctx: TargetContext,
  pid: number | undefined,
  logFile: string,
  origin: string,
  control: Pool,
  admin: KeycloakAdmin,
  realm: string,
  stopAll: () => Promise<void>,
): RunningTarget {
  const tokenPath = `/realms/${realm}/protocol/openid-connect/token`;
  const passwords = new Map<string, { username: string; password: string }>();

  async function passwordGrant(clientId: string, authorization: string): Promise<string> {
    const user = passwords.get(clientId);
    if (!user) throw new Error(`no user for ${clientId}`);
    const res = await requestJson(control, {
      method: 'POST',
      path: tokenPath,
      headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=password&username=${formEncode(user.username)}&password=${formEncode(user.password)}`,
    });
    const refreshToken = stringField(res.json, 'refresh_token');
    if (res.status !== 200 || !refreshToken) throw new Error(`keycloak password grant: ${describeResponse(res)}`);
    return refreshToken;
  }

  return {
    name: 'keycloak',
    origin,
    tokenPath,
    jwksPath: `/realms/${realm}/protocol/openid-connect/certs`,
    pid,
    logFile,
    async newChain(label) {
      const clientId = `bench-${ctx.runId}-${label}`;
      const clientSecret = crypto.randomBytes(32).toString('base64url');
      await admin.call('POST', `/realms/${realm}/clients`, {
        clientId,
        enabled: true,
        publicClient: false,
        clientAuthenticatorType: 'client-secret',
        secret: clientSecret,
        directAccessGrantsEnabled: true,
        standardFlowEnabled: false,
        protocol: 'openid-connect',
        // RFC 9068 header (typ at+jwt), like the other targets
        attributes: { 'access.token.header.type.rfc9068': 'true' },
        // sub from "basic", scope api:read; no profile/email/roles claims
        defaultClientScopes: ['basic', SCOPE],
        optionalClientScopes: [],
        protocolMappers: [
          {
            name: 'audience',
            protocol: 'openid-connect',
            protocolMapper: 'oidc-audience-mapper',
            config: { 'included.custom.audience': KEYCLOAK_RESOURCE, 'access.token.claim': 'true', 'id.token.claim': 'false' },
          },
          {
            // RFC 9068 client_id (Keycloak puts the client in azp)
            name: 'client_id',
            protocol: 'openid-connect',
            protocolMapper: 'oidc-hardcoded-claim-mapper',
            config: { 'claim.name': 'client_id', 'claim.value': clientId, 'jsonType.label': 'String', 'access.token.claim': 'true', 'id.token.claim': 'false', 'userinfo.token.claim': 'false' },
          },
        ],
      });
      const username = `bench-user-${ctx.runId}-${label}`;
      const password = crypto.randomBytes(18).toString('base64url');
      await admin.call('POST', `/realms/${realm}/users`, {
        username,
        enabled: true,
        emailVerified: true,
        firstName: 'Bench',
        lastName: label,
        email: `${username}@bench.invalid`,
        credentials: [{ type: 'password', value: password, temporary: false }],
      });
      passwords.set(clientId, { username, password });
      const authorization = basicAuthorization(clientId, clientSecret);
      return { clientId, clientSecret, authorization, refreshToken: await passwordGrant(clientId, authorization) };
    },
    async restartChain(chain: Chain) {
      chain.refreshToken = await passwordGrant(chain.clientId, chain.authorization);
    },
    stop: stopAll,
  };
}
