#!/usr/bin/env node
// Reference authorization server for `npm run bench:refresh`.
//
// panva/oidc-provider 9, configured as the closest equivalent of token-ledger's hot path:
//   * refresh tokens ALWAYS rotate (`rotateRefreshToken: true`); presenting a consumed refresh token
//     revokes the whole grant (oidc-provider's built-in reuse detection),
//   * access tokens are RFC 9068 JWTs (`typ: at+jwt`) signed with ES256, for one resource server
//     (https://api.example, scope api:read) selected through Resource Indicators (RFC 8707),
//   * the default in-memory adapter, confidential clients with client_secret_basic.
//
// Refresh chains are seeded without the interactive login: `POST /__bench/chain` (bearer
// BENCH_SEED_TOKEN) creates a Grant and a RefreshToken programmatically, exactly as the
// authorization_code grant would have (Grant with the resource scope, RefreshToken with
// gty=authorization_code, resource, scope), and answers {client_id, client_secret, refresh_token}.
// It uses the next unused client, or `?client_id=` to start a new grant on a given client. The route
// is served by a plain node:http handler in front of the provider and is never part of what is timed.
//
// With --redis URL (and --redis-prefix P), every model goes through a durable Redis adapter
// (redis-adapter.mjs) instead of the in-memory one: the `oidc-provider-redis` target.
//
// Usage: node bench/refresh/reference-server.mjs --port N [--clients N] [--watch-stdin] [--redis URL --redis-prefix P]
// Prints `READY <port>` on stdout once listening. Exits on SIGTERM/SIGINT, and with --watch-stdin
// also when stdin closes (so it never outlives the driver that started it with a stdin pipe).
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const RESOURCE = 'https://api.example';
const SCOPE = 'api:read';
const REFRESH_TTL = 14 * 24 * 60 * 60;
const ACCESS_TTL = 300;

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    clients: { type: 'string', default: '65' },
    'watch-stdin': { type: 'boolean', default: false },
    redis: { type: 'string' },
    'redis-prefix': { type: 'string', default: 'tl-bench:' },
  },
});
const redis = opts.redis ? (await import('./redis-adapter.mjs')).redisAdapter(opts.redis, opts['redis-prefix']) : undefined;
const port = Number(opts.port);
const clientCount = Number(opts.clients);
if (!Number.isInteger(port) || port < 0 || !Number.isInteger(clientCount) || clientCount < 1) {
  process.stderr.write('usage: reference-server.mjs [--port N] [--clients N]\n');
  process.exit(2);
}
const seedToken = process.env.BENCH_SEED_TOKEN || crypto.randomBytes(24).toString('base64url');

// One ephemeral ES256 signing key (the only key in the keystore, so every JWT it signs is ES256).
const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingJwk = {
  ...privateKey.export({ format: 'jwk' }),
  kid: `bench-es256-${crypto.randomBytes(4).toString('hex')}`,
  alg: 'ES256',
  use: 'sig',
};

// One confidential client per refresh chain (the driver creates one client per chain on every
// target, so no target gets to amortise per-client work across chains).
const clients = Array.from({ length: clientCount }, (_, i) => ({
  client_id: `bench-client-${i}`,
  client_secret: crypto.randomBytes(32).toString('base64url'),
  grant_types: ['refresh_token', 'authorization_code'],
  response_types: ['code'],
  redirect_uris: ['https://client.example/cb'],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: 'ES256',
}));

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  ...(redis ? { adapter: redis.RedisAdapter } : {}),
  clients,
  jwks: { keys: [signingJwk] },
  clientDefaults: {
    grant_types: ['authorization_code'],
    id_token_signed_response_alg: 'ES256',
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) throw new Provider.errors.InvalidTarget();
        return {
          scope: SCOPE,
          audience: RESOURCE,
          accessTokenTTL: ACCESS_TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  rotateRefreshToken: true,
  issueRefreshToken: async () => true,
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  ttl: {
    AccessToken: ACCESS_TTL,
    AuthorizationCode: 60,
    Grant: REFRESH_TTL,
    IdToken: 3600,
    Interaction: 3600,
    RefreshToken: REFRESH_TTL,
    Session: REFRESH_TTL,
  },
});

// Surface server-side failures (they would otherwise only show up as 500s in the driver).
provider.on('server_error', (_ctx, err) => {
  process.stderr.write(`reference: server_error ${err?.stack ?? err}\n`);
});

let nextClient = 0;

/**
 * Creates one refresh chain: what the authorization_code grant leaves behind, without the login.
 * Uses the next unused client, or `clientId` when given (to restart a chain on its own client).
 */
async function seedChain(clientId) {
  let meta;
  if (clientId) {
    meta = clients.find((c) => c.client_id === clientId);
    if (!meta) throw new Error(`unknown client ${clientId}`);
  } else {
    meta = clients[nextClient % clients.length];
    nextClient += 1;
  }
  const client = await provider.Client.find(meta.client_id);
  if (!client) throw new Error(`client ${meta.client_id} not found`);

  const accountId = `bench-user-${crypto.randomBytes(6).toString('hex')}`;
  const grant = new provider.Grant({ accountId, clientId: client.clientId });
  grant.addResourceScope(RESOURCE, SCOPE);
  const grantId = await grant.save();

  const refreshToken = new provider.RefreshToken({
    client,
    accountId,
    grantId,
    gty: 'authorization_code',
    authTime: Math.floor(Date.now() / 1000),
    scope: SCOPE,
    resource: RESOURCE,
    expiresWithSession: false,
  });
  const value = await refreshToken.save();
  return { client_id: meta.client_id, client_secret: meta.client_secret, refresh_token: value };
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const providerCallback = provider.callback();
const server = http.createServer((req, res) => {
  if (!req.url.startsWith('/__bench/')) {
    providerCallback(req, res);
    return;
  }
  // Bench-only control route, never part of what is measured.
  req.resume();
  const auth = req.headers.authorization ?? '';
  const expected = `Bearer ${seedToken}`;
  if (auth.length !== expected.length || !crypto.timingSafeEqual(Buffer.from(auth), Buffer.from(expected))) {
    sendJson(res, 401, { error: 'unauthorized' });
    return;
  }
  const url = new URL(req.url, 'http://bench');
  if (req.method === 'POST' && url.pathname === '/__bench/chain') {
    seedChain(url.searchParams.get('client_id') ?? undefined).then(
      (chain) => sendJson(res, 201, chain),
      (err) => sendJson(res, 500, { error: String(err?.stack ?? err) }),
    );
    return;
  }
  sendJson(res, 404, { error: 'not_found' });
});
server.keepAliveTimeout = 65_000;

server.listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  if (port === 0) {
    // The issuer is fixed at construction; with an ephemeral port it cannot name the real one.
    process.stderr.write('reference: with --port 0 the issuer (iss) does not carry the real port\n');
  }
  process.stdout.write(`READY ${actual}\n`);
});

function shutdown() {
  void redis?.close();
  server.close();
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 200).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (opts['watch-stdin']) {
  process.stdin.on('end', shutdown);
  process.stdin.on('close', shutdown);
  process.stdin.resume();
}
