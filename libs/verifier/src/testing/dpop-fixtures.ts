import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { accessTokenHash } from '../dpop-proof';
import { createVerifier, type Verifier, type VerifierOptions } from '../verifier';

/** A client's DPoP key: its private key signs proofs, its public JWK goes in their header. */
export interface DpopKey {
  alg: string;
  privateKey: KeyLike;
  publicJwk: JWK;
  jkt: string;
}

export async function dpopKey(alg = 'ES256'): Promise<DpopKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { alg, privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

export interface ProofInput {
  htm?: string;
  htu?: string;
  accessToken?: string;
  /** Payload members to set (undefined deletes one). */
  claims?: Record<string, unknown>;
  /** Protected header members to set (undefined deletes one). */
  header?: Record<string, unknown>;
  /** Sign with this key instead (its header jwk stays the DpopKey's). */
  signWith?: KeyLike | Uint8Array;
}

/** A DPoP proof JWT (RFC 9449 §4.2) built with jose; every member overridable to build bad ones. */
export async function dpopProof(key: DpopKey, input: ProofInput = {}): Promise<string> {
  const payload: Record<string, unknown> = {
    jti: randomUUID(),
    htm: input.htm ?? 'GET',
    htu: input.htu ?? 'https://rs.example/orders',
    iat: Math.floor(Date.now() / 1000),
    ...(input.accessToken === undefined ? {} : { ath: accessTokenHash(input.accessToken) }),
  };
  const header: Record<string, unknown> = { alg: key.alg, typ: 'dpop+jwt', jwk: key.publicJwk };
  for (const [k, v] of Object.entries(input.claims ?? {})) if (v === undefined) delete payload[k];
  else payload[k] = v;
  for (const [k, v] of Object.entries(input.header ?? {})) if (v === undefined) delete header[k];
  else header[k] = v;
  return new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(input.signWith ?? key.privateKey);
}

/** An issuer with a JWKS on a local HTTP server (port 0), minting RFC 9068 access tokens, optionally DPoP-bound. */
export interface TestIssuer {
  issuer: string;
  jwksUri: string;
  accessToken(claims?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export async function testIssuer(issuer = 'https://ledger.test'): Promise<TestIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'test-1', alg: 'ES256', use: 'sig' };
  const server: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    issuer,
    jwksUri: `http://127.0.0.1:${port}/jwks.json`,
    accessToken: (claims = {}) =>
      new SignJWT({ sub: 'alice', client_id: 'app', scope: 'api:read', sid: `fam-${randomBytes(4).toString('hex')}`, jti: randomUUID(), ...claims })
        .setProtectedHeader({ alg: 'ES256', kid: 'test-1', typ: 'at+jwt' })
        .setIssuer(issuer)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * A verifier for unit tests: tokens from `issuer`; its revocation feed points at a closed port and
 * fail-open is unbounded, so tokens are checked against the (locally filled) revocation set only.
 */
export function unitVerifier(issuer: TestIssuer, extra: Partial<VerifierOptions> = {}): Verifier {
  return createVerifier({
    issuer: issuer.issuer,
    jwksUri: issuer.jwksUri,
    revocations: { sse: { url: 'http://127.0.0.1:1/v1/revocations/stream', token: 'unused' } },
    failMode: 'open',
    maxStalenessMs: 1_000,
    failOpenMaxMs: Number.MAX_SAFE_INTEGER,
    retry: { maxAttempts: 1 },
    ...extra,
  });
}
