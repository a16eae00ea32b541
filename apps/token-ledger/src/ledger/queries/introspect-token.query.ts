import { Inject } from '@nestjs/common';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { KeyRing, LedgerSecrets } from '@token-ledger/crypto';
import {
  authenticatePresentedToken,
  familyIsActiveAt,
  formatScope,
  parseRefreshToken,
  type FamilyEvent,
  type FamilyState,
} from '@token-ledger/domain';
import type { AggregateRepository } from '../aggregate-repository';
import { FAMILY_REPOSITORY } from '../tokens';

export type Introspection = { active: false } | ({ active: true } & Record<string, unknown>);

/** What a presented token is, resolved from the event store (never a cache): used by introspect and revoke. */
export type ResolvedToken =
  | { kind: 'refresh'; state: FamilyState; generation: number }
  | { kind: 'access'; state: FamilyState; claims: Record<string, unknown> & { jti: string; exp: number; sid: string } }
  | { kind: 'unknown' };

export class ResolveTokenQuery extends Query<ResolvedToken> {
  constructor(
    readonly token: string,
    readonly hint?: string,
  ) {
    super();
  }
}

@QueryHandler(ResolveTokenQuery)
export class ResolveTokenHandler implements IQueryHandler<ResolveTokenQuery, ResolvedToken> {
  constructor(
    @Inject(FAMILY_REPOSITORY) private readonly families: AggregateRepository<FamilyState, FamilyEvent>,
    @Inject(LedgerSecrets) private readonly secrets: LedgerSecrets,
    @Inject(KeyRing) private readonly keys: KeyRing,
  ) {}

  async execute({ token }: ResolveTokenQuery): Promise<ResolvedToken> {
    // The hint only orders the attempts (RFC 7009 §2.1); the token's own shape is unambiguous.
    const presented = parseRefreshToken(token);
    if (presented) {
      const { state } = await this.families.load(presented.familyId);
      if (state.status === 'none') return { kind: 'unknown' };
      const match = authenticatePresentedToken(state, presented.generation, presented.secret, this.secrets.tokenSecrets);
      return match === 'forged' ? { kind: 'unknown' } : { kind: 'refresh', state, generation: presented.generation };
    }
    if (token.split('.').length !== 3) return { kind: 'unknown' };
    let claims: Record<string, unknown>;
    try {
      claims = (await this.keys.verifyAccessToken(token)) as Record<string, unknown>;
    } catch {
      return { kind: 'unknown' };
    }
    if (typeof claims.sid !== 'string' || typeof claims.jti !== 'string' || typeof claims.exp !== 'number') return { kind: 'unknown' };
    const { state } = await this.families.load(claims.sid);
    if (state.status === 'none') return { kind: 'unknown' };
    return { kind: 'access', state, claims: claims as ResolvedToken & { jti: string; exp: number; sid: string } };
  }
}

/** Who asks: RFC 7662 §4 — a client sees only its own tokens, unless it holds the right to see all. */
export interface IntrospectionViewer {
  clientId: string;
  introspectAll: boolean;
}

/**
 * RFC 7662 answer for a resolved token at `now`, as `viewer` may see it: another client's token is
 * `{active: false}` (§4: the server may decide not to tell), indistinguishable from an unknown one.
 */
export function introspection(resolved: ResolvedToken, now: number, viewer: IntrospectionViewer): Introspection {
  if (resolved.kind !== 'unknown' && !viewer.introspectAll && resolved.state.clientId !== viewer.clientId) return { active: false };
  if (resolved.kind === 'refresh') {
    const { state, generation } = resolved;
    if (generation !== state.generation || !familyIsActiveAt(state, now)) return { active: false };
    return {
      active: true,
      token_type: 'refresh_token',
      scope: formatScope(state.scope),
      client_id: state.clientId,
      sub: state.subject,
      iat: Math.floor((state.rotatedAt ?? state.createdAt) / 1000),
      exp: Math.floor(Math.min(state.idleExpiresAt, state.absoluteExpiresAt) / 1000),
      sid: state.familyId,
      // RFC 9449 §6.2: a bound refresh token's key.
      ...(state.dpopJkt === undefined ? {} : { cnf: { jkt: state.dpopJkt } }),
    };
  }
  if (resolved.kind === 'access') {
    const { state, claims } = resolved;
    const revoked = state.status === 'revoked' || claims.jti in state.revokedJtis;
    if (revoked) return { active: false };
    // RFC 9449 §6.2: a DPoP-bound token says so, and its cnf (part of the claims) names the key.
    const cnf = claims.cnf as { jkt?: unknown } | undefined;
    return { ...claims, active: true, token_type: typeof cnf?.jkt === 'string' ? 'DPoP' : 'Bearer' };
  }
  return { active: false };
}
