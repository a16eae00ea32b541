import { Controller, Get, Header, Inject } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { KeyRing } from '@token-ledger/crypto';
import type { LedgerConfig } from '../config/ledger-config';
import { DPOP_SIGNING_ALGS } from '../dpop/dpop-proof';
import { LEDGER_CONFIG } from '../ledger/tokens';

@ApiTags('discovery')
@Controller('.well-known')
export class WellKnownController {
  constructor(
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
    @Inject(KeyRing) private readonly keys: KeyRing,
  ) {}

  /** RFC 8414 authorization server metadata. */
  @Get('oauth-authorization-server')
  @Header('cache-control', 'public, max-age=300')
  @ApiOkResponse({ description: 'RFC 8414 metadata' })
  metadata(): Record<string, unknown> {
    const iss = this.config.issuer;
    const authMethods = ['client_secret_basic', 'client_secret_post', 'none'];
    return {
      issuer: iss,
      token_endpoint: `${iss}/oauth/token`,
      revocation_endpoint: `${iss}/oauth/revoke`,
      introspection_endpoint: `${iss}/oauth/introspect`,
      jwks_uri: `${iss}/.well-known/jwks.json`,
      grant_types_supported: ['refresh_token'],
      response_types_supported: [],
      token_endpoint_auth_methods_supported: authMethods,
      revocation_endpoint_auth_methods_supported: authMethods,
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      access_token_signing_alg_values_supported: [this.config.signingAlg],
      // RFC 9449 §5.1.
      dpop_signing_alg_values_supported: [...DPOP_SIGNING_ALGS],
    };
  }

  /** Public signing keys, including retired ones until the tokens they signed have expired. */
  @Get('jwks.json')
  @Header('cache-control', 'public, max-age=60')
  @Header('content-type', 'application/jwk-set+json')
  @ApiOkResponse({ description: 'JWK Set (RFC 7517)' })
  jwks(): unknown {
    return this.keys.jwks();
  }
}
