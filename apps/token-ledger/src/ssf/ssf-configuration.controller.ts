import { Controller, Get, Header, Inject } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { SSF_POLL, SSF_PUSH } from '@token-ledger/domain';
import type { LedgerConfig } from '../config/ledger-config';
import { LEDGER_CONFIG } from '../ledger/tokens';

/** SSF 1.0 §7.1 transmitter configuration metadata, at the §7.2 well-known location. */
@ApiTags('ssf')
@Controller('.well-known')
export class SsfConfigurationController {
  constructor(@Inject(LEDGER_CONFIG) private readonly config: LedgerConfig) {}

  @Get('ssf-configuration')
  @Header('cache-control', 'public, max-age=300')
  @ApiOperation({ summary: 'Shared Signals transmitter metadata (SSF 1.0 §7.1)' })
  @ApiOkResponse({ description: 'SSF transmitter configuration metadata' })
  metadata(): Record<string, unknown> {
    const iss = this.config.issuer;
    return {
      spec_version: '1_0',
      issuer: iss,
      jwks_uri: `${iss}/.well-known/jwks.json`,
      delivery_methods_supported: [SSF_PUSH, SSF_POLL],
      configuration_endpoint: `${iss}/ssf/streams`,
      status_endpoint: `${iss}/ssf/status`,
      add_subject_endpoint: `${iss}/ssf/subjects:add`,
      remove_subject_endpoint: `${iss}/ssf/subjects:remove`,
      verification_endpoint: `${iss}/ssf/verify`,
      authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6750' }],
      // A stream gets events only about the subjects added to it (docs/ssf.md).
      default_subjects: 'NONE',
    };
  }
}
