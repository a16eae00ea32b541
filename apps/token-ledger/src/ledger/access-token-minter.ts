import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Optional } from '@nestjs/common';
import { KeyRing } from '@token-ledger/crypto';
import { formatScope, type FamilyState } from '@token-ledger/domain';
import { inSpan } from '@token-ledger/envelope';
import { LedgerMetrics } from '../health/metrics';

export interface MintedAccessToken {
  accessToken: string;
  expiresIn: number;
}

/** Mints RFC 9068 access tokens for a family: `sid` is the family id, so revoking it kills them. */
@Injectable()
export class AccessTokenMinter {
  constructor(
    @Inject(KeyRing) private readonly keys: KeyRing,
    @Optional() private readonly metrics?: LedgerMetrics,
  ) {}

  /** `dpopJkt`: the DPoP key the token is bound to (RFC 9449 §6: `cnf.jkt`). */
  async mint(family: FamilyState, scope: string[], now: number, dpopJkt?: string): Promise<MintedAccessToken> {
    const minted = await this.sign(family, scope, now, dpopJkt);
    this.issued();
    return minted;
  }

  /** Counts a token handed out; for a token signed ahead with sign(), which may be discarded. */
  issued(): void {
    this.metrics?.tokensIssued.inc({ kind: 'access' });
  }

  /** Signs without counting it as issued (mint() does both). */
  async sign(family: FamilyState, scope: string[], now: number, dpopJkt?: string): Promise<MintedAccessToken> {
    const iat = Math.floor(now / 1000);
    const ttl = family.policy.accessTokenTtl;
    const accessToken = await inSpan('jwt.sign', { 'jwt.alg': this.keys.activeAlg, 'jwt.kid': this.keys.activeKid }, () => this.keys.signAccessToken({
      sub: family.subject,
      client_id: family.clientId,
      scope: formatScope(scope),
      aud: family.audience.length === 1 ? family.audience[0] : family.audience,
      sid: family.familyId,
      jti: randomUUID(),
      iat,
      exp: iat + ttl,
      ...(dpopJkt === undefined ? {} : { cnf: { jkt: dpopJkt } }),
    }));
    return { accessToken, expiresIn: ttl };
  }
}
