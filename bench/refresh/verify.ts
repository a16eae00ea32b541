import { createLocalJWKSet, decodeProtectedHeader, JSONWebKeySet, jwtVerify } from 'jose';
import { Dispatcher } from 'undici';

import { describeResponse, FORM_CONTENT_TYPE, isRecord, JsonResponse, refreshBody, requestJson, stringField } from './http';
import { Chain, RunningTarget, SCOPE } from './targets';

/**
 * Pre-flight check run on every server before it is measured, so that what is compared is what the
 * report claims: each refresh returns an RFC 9068 JWT access token (typ at+jwt, ES256, kid, signature
 * valid against the published JWKS, client_id/scope/sub/aud/exp/iat/jti present) and a NEW refresh
 * token; the predecessor is dead (presenting it is reuse: invalid_grant) and reuse revokes the chain
 * (its current token stops working too). Throws with the first violated expectation.
 */
export async function verifyTarget(target: RunningTarget, control: Dispatcher): Promise<string> {
  const chain = await target.newChain('preflight');
  const first = chain.refreshToken;

  const r1 = await refresh(target, control, chain);
  expectSuccess('first refresh', r1);
  const { header, claims } = await checkAccessToken(target, control, r1.json, chain);
  const second = stringField(r1.json, 'refresh_token') as string;
  if (second === first) throw new Error('first refresh: the refresh token was not rotated');

  // Keycloak detects a stale refresh token by comparing whole-second timestamps (the token's iat
  // against the client session's last refresh): a replay within the second of the rotation passes.
  // The check below waits past that second, for every target alike; the same-second replay is
  // probed separately and reported, not failed.
  await new Promise((r) => setTimeout(r, 1100));
  chain.refreshToken = second;
  const r2 = await refresh(target, control, chain);
  expectSuccess('second refresh', r2);
  const third = stringField(r2.json, 'refresh_token') as string;
  if (third === second || third === first) throw new Error('second refresh: the refresh token was not rotated');

  chain.refreshToken = first;
  const replay = await refresh(target, control, chain);
  expectInvalidGrant('replaying a rotated refresh token', replay);

  chain.refreshToken = third;
  const afterReuse = await refresh(target, control, chain);
  expectInvalidGrant('the current refresh token after reuse was detected', afterReuse);

  const sameSecond = await sameSecondReplay(target, control);
  return (
    `access token typ=${String(header.typ)} alg=${String(header.alg)} kid=${String(header.kid)} ` +
    `aud=${JSON.stringify(claims.aud)} scope="${String(claims.scope)}" (signature verified against ${target.jwksPath}); ` +
    `refresh token rotates on every use; replay → invalid_grant and revokes the chain; ${sameSecond}`
  );
}

/** Replays a token right after rotating it (same second): refused, or accepted (reported, not failed). */
async function sameSecondReplay(target: RunningTarget, control: Dispatcher): Promise<string> {
  const chain = await target.newChain('preflight-same-second');
  const old = chain.refreshToken;
  const r1 = await refresh(target, control, chain);
  expectSuccess('same-second probe: refresh', r1);
  chain.refreshToken = old;
  const replay = await refresh(target, control, chain);
  if (replay.status === 400 && stringField(replay.json, 'error') === 'invalid_grant') return 'an immediate replay is refused too';
  return `an immediate replay (same second as the rotation) was ACCEPTED: ${describeResponse(replay).slice(0, 40)}`;
}

function refresh(target: RunningTarget, control: Dispatcher, chain: Chain): Promise<JsonResponse> {
  return requestJson(control, {
    method: 'POST',
    path: target.tokenPath,
    headers: { authorization: chain.authorization, 'content-type': FORM_CONTENT_TYPE, accept: 'application/json' },
    body: refreshBody(chain.refreshToken),
  });
}

function expectSuccess(step: string, res: JsonResponse): void {
  if (res.status !== 200) throw new Error(`${step}: expected 200, got ${describeResponse(res)}`);
  for (const field of ['access_token', 'refresh_token', 'token_type']) {
    if (!stringField(res.json, field)) throw new Error(`${step}: response has no ${field}: ${res.text.slice(0, 300)}`);
  }
  if (stringField(res.json, 'token_type')?.toLowerCase() !== 'bearer') {
    throw new Error(`${step}: token_type is not Bearer`);
  }
  const cacheControl = String(res.headers['cache-control'] ?? '');
  if (!/no-store/i.test(cacheControl)) throw new Error(`${step}: response lacks Cache-Control: no-store`);
}

function expectInvalidGrant(step: string, res: JsonResponse): void {
  if (res.status !== 400 || stringField(res.json, 'error') !== 'invalid_grant') {
    throw new Error(`${step}: expected 400 invalid_grant, got ${describeResponse(res)}`);
  }
}

async function checkAccessToken(
  target: RunningTarget,
  control: Dispatcher,
  body: unknown,
  chain: Chain,
): Promise<{ header: Record<string, unknown>; claims: Record<string, unknown> }> {
  const accessToken = stringField(body, 'access_token') as string;
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(accessToken) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`access token is not a JWS: ${(err as Error).message}`);
  }
  const typ = String(header.typ ?? '').toLowerCase();
  if (typ !== 'at+jwt' && typ !== 'application/at+jwt') throw new Error(`access token typ is ${String(header.typ)}, expected at+jwt`);
  if (header.alg !== 'ES256') throw new Error(`access token alg is ${String(header.alg)}, expected ES256`);
  if (typeof header.kid !== 'string') throw new Error('access token header has no kid');

  const jwksRes = await requestJson(control, { method: 'GET', path: target.jwksPath });
  if (jwksRes.status !== 200 || !isRecord(jwksRes.json) || !Array.isArray(jwksRes.json.keys)) {
    throw new Error(`GET ${target.jwksPath}: ${describeResponse(jwksRes)}`);
  }
  const jwks = createLocalJWKSet(jwksRes.json as unknown as JSONWebKeySet);
  let claims: Record<string, unknown>;
  try {
    ({ payload: claims } = await jwtVerify(accessToken, jwks, { typ: 'at+jwt', algorithms: ['ES256'] }));
  } catch (err) {
    throw new Error(`access token does not verify against ${target.jwksPath}: ${(err as Error).message}`);
  }
  for (const claim of ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id', 'scope']) {
    if (claims[claim] === undefined) throw new Error(`access token has no ${claim} claim`);
  }
  if (claims.client_id !== chain.clientId) {
    throw new Error(`access token client_id is ${String(claims.client_id)}, expected ${chain.clientId}`);
  }
  if (!String(claims.scope).split(' ').includes(SCOPE)) throw new Error(`access token scope lacks ${SCOPE}`);
  return { header, claims };
}
