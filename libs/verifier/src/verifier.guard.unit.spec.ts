import { ServiceUnavailableException, UnauthorizedException, type ExecutionContext } from '@nestjs/common';
import { AccessTokenGuard } from './verifier.guard';
import { VerifyError, type ResourceRequest, type Verifier } from './verifier';

/** A Verifier that records what the guard asked and answers as told: the guard's own logic under test. */
function recordingVerifier(answer: () => Promise<unknown> = async () => ({ payload: { sub: 's' }, stale: false, scheme: 'DPoP', jkt: 'j' })) {
  const seen: ResourceRequest[] = [];
  const verifier = { dpopAlgorithms: ['ES256', 'EdDSA'], verifyRequest: (r: ResourceRequest) => (seen.push(r), answer()) } as unknown as Verifier;
  return { verifier, seen };
}

function context(request: object): { ctx: ExecutionContext; headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  const reply = { header: (k: string, v: string) => (headers[k] = v) };
  const ctx = { switchToHttp: () => ({ getRequest: () => request, getResponse: () => reply }) } as unknown as ExecutionContext;
  return { ctx, headers };
}

const fastifyRequest = (over: object = {}) => ({
  method: 'GET',
  url: '/orders?x=1',
  originalUrl: '/orders?x=1',
  protocol: 'http',
  headers: { host: '127.0.0.1:3000', authorization: 'DPoP tok' },
  raw: { url: '/orders?x=1', rawHeaders: ['Host', '127.0.0.1:3000', 'DPoP', 'p1', 'dpop', 'p2'] },
  ...over,
});

describe('AccessTokenGuard', () => {
  it('Fastify: rebuilds the URL from protocol and Host; passes every DPoP header line', async () => {
    const { verifier, seen } = recordingVerifier();
    const request = fastifyRequest();
    expect(await new AccessTokenGuard(verifier).canActivate(context(request).ctx)).toBe(true);
    expect(seen[0]).toEqual({ method: 'GET', url: 'http://127.0.0.1:3000/orders?x=1', authorization: 'DPoP tok', dpop: ['p1', 'p2'] });
    expect(request).toMatchObject({ accessToken: { sub: 's' }, accessTokenJkt: 'j' });
  });

  it('Express (mounted router): originalUrl, req.protocol (trust proxy), rawHeaders on the request itself', async () => {
    const { verifier, seen } = recordingVerifier();
    const request = { method: 'POST', url: '/orders', originalUrl: '/api/orders', protocol: 'https', headers: { host: 'rs.example', authorization: 'DPoP tok', dpop: 'p1' }, rawHeaders: ['dpop', 'p1'] };
    await new AccessTokenGuard(verifier).canActivate(context(request).ctx);
    expect(seen[0]).toMatchObject({ method: 'POST', url: 'https://rs.example/api/orders', dpop: ['p1'] });
  });

  it('publicBaseUrl: the URL clients use (scheme, host, a prefix the proxy strips), whatever Host and protocol say', async () => {
    const { verifier, seen } = recordingVerifier();
    const guard = new AccessTokenGuard(verifier, { publicBaseUrl: 'https://API.example.com/shop/' });
    await guard.canActivate(context(fastifyRequest({ headers: { host: 'attacker.example', authorization: 'DPoP tok' } })).ctx);
    expect(seen[0].url).toBe('https://api.example.com/shop/orders?x=1');
    expect(() => new AccessTokenGuard(verifier, { publicBaseUrl: 'api.example.com' })).toThrow(/absolute URL/);
    expect(() => new AccessTokenGuard(verifier, { publicBaseUrl: 'https://api.example.com/?a=1' })).toThrow(/without query/);
  });

  it.each([
    ['invalid_request', new VerifyError('invalid_request', 'none'), 401, 'Bearer, DPoP algs="ES256 EdDSA"'],
    ['invalid_dpop_proof (DPoP)', new VerifyError('invalid_dpop_proof', 'DPoP proof "replayed"', 'DPoP'), 401, 'DPoP error="invalid_dpop_proof", error_description="DPoP proof replayed", algs="ES256 EdDSA"'],
    ['invalid_token (DPoP)', new VerifyError('invalid_token', 'Invalid DPoP key binding', 'DPoP'), 401, 'DPoP error="invalid_token", error_description="Invalid DPoP key binding", algs="ES256 EdDSA"'],
    ['token_revoked (DPoP)', new VerifyError('token_revoked', 'the token is revoked', 'DPoP'), 401, 'DPoP error="invalid_token", error_description="the token is revoked", algs="ES256 EdDSA"'],
    ['invalid_token (Bearer)', new VerifyError('invalid_token', 'sender-constrained', 'Bearer'), 401, 'Bearer error="invalid_token", error_description="sender-constrained"'],
  ])('%s → 401 and its WWW-Authenticate challenge', async (_label, error, status, challenge) => {
    const { verifier } = recordingVerifier(() => Promise.reject(error));
    const { ctx, headers } = context(fastifyRequest());
    const thrown = await new AccessTokenGuard(verifier).canActivate(ctx).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(UnauthorizedException);
    expect((thrown as UnauthorizedException).getStatus()).toBe(status);
    expect(headers['www-authenticate']).toBe(challenge);
  });

  it.each(['feed_unavailable', 'replay_cache_unavailable'] as const)('%s → 503 with Retry-After', async (code) => {
    const { verifier } = recordingVerifier(() => Promise.reject(new VerifyError(code, 'down', 'DPoP')));
    const { ctx, headers } = context(fastifyRequest());
    await expect(new AccessTokenGuard(verifier).canActivate(ctx)).rejects.toBeInstanceOf(ServiceUnavailableException);
    expect(headers['retry-after']).toBe('5');
  });
});
