import { createHash, timingSafeEqual } from 'node:crypto';
import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { LedgerConfig } from '../config/ledger-config';
import { ProblemError } from '../http/problem';
import { LEDGER_CONFIG } from '../ledger/tokens';
import { ApiKeyLimiter, AuthFailureLimiter } from '../rate-limit';

/**
 * `/v1/*` needs `Authorization: Bearer <LEDGER_ADMIN_TOKEN>`, compared in constant time. Failures
 * count against the caller's address (guessing) and successes against the key (README "Rate limits").
 */
@Injectable()
export class AdminAuthGuard implements CanActivate {
  private readonly expected?: Buffer;

  constructor(
    @Inject(LEDGER_CONFIG) config: LedgerConfig,
    private readonly authFailures: AuthFailureLimiter,
    private readonly perKey: ApiKeyLimiter,
  ) {
    // Comparing digests gives equal lengths, so timing reveals neither content nor length.
    this.expected = config.adminToken ? digest(config.adminToken) : undefined;
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    await this.authFailures.assertNotBlocked(request.ip);
    const match = /^Bearer ([\x21-\x7e]+)$/.exec(request.headers.authorization ?? '');
    const presented = digest(match ? match[1] : '');
    if (!this.expected || !timingSafeEqual(presented, this.expected) || !match) {
      await this.authFailures.recordFailure(request.ip);
      throw new ProblemError(401, 'Unauthorized', this.expected ? 'a valid admin bearer token is required' : 'the admin API is disabled: set LEDGER_ADMIN_TOKEN');
    }
    await this.perKey.assertWithinLimit(match[1]);
    return true;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
