import { Issuer } from 'openid-client';
import { LedgerClient, startLedger, type Ledger } from './support/ledger-harness';

/** A real OAuth client library we did not write (openid-client) against the running service. */
describe('openid-client against token-ledger', () => {
  let ledger: Ledger;
  let api: LedgerClient;

  beforeAll(async () => {
    ledger = await startLedger();
    api = new LedgerClient(ledger.baseUrl);
  });
  afterAll(() => ledger?.destroy());

  it('discovers RFC 8414 metadata, refreshes, introspects and revokes', async () => {
    const registered = await api.registerClient({ clientId: 'oidc-lib' });
    const issued = await api.issue({ subject: 'zoe', clientId: 'oidc-lib', scope: 'api:read' });

    const issuer = await Issuer.discover(`${ledger.baseUrl}/.well-known/oauth-authorization-server`);
    expect(issuer.metadata.issuer).toBe(ledger.baseUrl);
    const client = new issuer.Client({ client_id: registered.clientId, client_secret: registered.secret, token_endpoint_auth_method: 'client_secret_basic' });

    const refreshed = await client.refresh(issued.refresh_token);
    expect(refreshed.access_token).toBeTruthy();
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(issued.refresh_token);
    expect(refreshed.token_type).toBe('Bearer');

    const introspected = await client.introspect(refreshed.access_token!);
    expect(introspected).toMatchObject({ active: true, sub: 'zoe', client_id: 'oidc-lib' });

    // Reuse of the first token is refused with the RFC error the library surfaces.
    await expect(client.refresh(issued.refresh_token)).rejects.toMatchObject({ error: 'invalid_grant' });

    const second = await api.issue({ subject: 'zoe', clientId: 'oidc-lib', scope: 'api:read' });
    await client.revoke(second.refresh_token, 'refresh_token');
    expect((await client.introspect(second.refresh_token, 'refresh_token')).active).toBe(false);
    await expect(client.refresh(second.refresh_token)).rejects.toMatchObject({ error: 'invalid_grant' });

    // The access token verifies against the published JWKS (RFC 9068 header).
    const { createRemoteJWKSet, jwtVerify } = await import('jose');
    const third = await api.issue({ subject: 'zoe', clientId: 'oidc-lib', scope: 'api:read' });
    const jwks = createRemoteJWKSet(new URL(issuer.metadata.jwks_uri!));
    const { payload, protectedHeader } = await jwtVerify(third.access_token, jwks, { issuer: ledger.baseUrl, typ: 'at+jwt' });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({ sub: 'zoe', client_id: 'oidc-lib', sid: third.family_id, scope: 'api:read' });
  });

  it('client_secret_post and public clients work; bad credentials get 401 invalid_client', async () => {
    const conf = await api.registerClient({ clientId: 'poster' });
    const issued = await api.issue({ subject: 'yan', clientId: 'poster', scope: 'api:read' });
    const post = await api.form('/oauth/token', { grant_type: 'refresh_token', refresh_token: issued.refresh_token, client_id: conf.clientId, client_secret: conf.secret });
    expect(post.status).toBe(200);

    const bad = await api.refresh(post.body.refresh_token, { clientId: 'poster', secret: 'wrong-secret-wrong-secret' });
    expect(bad.status).toBe(401);
    expect(bad.body.error).toBe('invalid_client');
    expect(bad.headers.get('www-authenticate')).toMatch(/^Basic /);

    await api.registerClient({ clientId: 'spa', type: 'public' });
    const pub = await api.issue({ subject: 'yan', clientId: 'spa', scope: 'api:read' });
    const res = await api.refresh(pub.refresh_token, { clientId: 'spa' });
    expect(res.status).toBe(200);
    // A token of another client is refused (RFC 6749 §6).
    const foreign = await api.refresh(res.body.refresh_token, { clientId: 'poster', secret: conf.secret });
    expect(foreign.body.error).toBe('invalid_grant');
  });
});
