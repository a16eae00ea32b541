import type { FamilyEvent, FamilyState } from '@token-ledger/domain';
import { parseRefreshToken } from '@token-ledger/domain';
import { familyStreamId, subjectStreamId } from '@token-ledger/envelope';
import type { EventStore, SqlQueryable } from '@token-ledger/event-store';
import { familyStatusesOf } from '@token-ledger/projections';
import type { AggregateRepository } from '../../apps/token-ledger/src/ledger/aggregate-repository';
import { IssueTokenCommand, type IssuedTokens } from '../../apps/token-ledger/src/ledger/commands/issue-token.command';
import { RegisterClientCommand } from '../../apps/token-ledger/src/ledger/commands/register-client.command';
import { RevokeSubjectCommand, type SubjectRevocation } from '../../apps/token-ledger/src/ledger/commands/revoke-subject.command';
import { RotateTokenCommand, type RotatedTokens } from '../../apps/token-ledger/src/ledger/commands/rotate-token.command';
import { FAMILY_REPOSITORY } from '../../apps/token-ledger/src/ledger/tokens';
import type { LedgerInstance } from './ledger-instance';

/** The ledger's commands as a test sends them to one process (no HTTP), and what it reads back. */
export const META = { actor: 'test' };

export function registerClient(p: LedgerInstance, clientId: string, policy: { maxFamiliesPerSubject?: number; reuseGraceSeconds?: number } = {}): Promise<unknown> {
  return p.bus.execute(
    new RegisterClientCommand({ clientId, type: 'confidential', secret: `secret-${clientId}`, allowedScopes: ['api:read'], reuseGraceSeconds: 0, ...policy }, META),
  );
}

export function issue(p: LedgerInstance, subject: string, clientId: string): Promise<IssuedTokens> {
  return p.bus.execute(new IssueTokenCommand({ subject, clientId, scope: ['api:read'] }, META));
}

export function revokeSubject(p: LedgerInstance, subject: string, reason: 'admin' | 'password_change' = 'admin'): Promise<SubjectRevocation> {
  return p.bus.execute(new RevokeSubjectCommand(subject, reason, META));
}

export function rotate(p: LedgerInstance, refreshToken: string, clientId: string): Promise<RotatedTokens> {
  const parts = parseRefreshToken(refreshToken)!;
  return p.bus.execute(new RotateTokenCommand({ familyId: parts.familyId, generation: parts.generation, secret: parts.secret }, clientId, undefined, undefined, META));
}

export async function familyState(p: LedgerInstance, familyId: string): Promise<FamilyState> {
  const repo = p.context.get<symbol, AggregateRepository<FamilyState, FamilyEvent>>(FAMILY_REPOSITORY);
  return (await repo.load(familyId)).state;
}

/** The subject stream as the store holds it: links (with the position), revocations, completions. */
export async function subjectHistory(store: EventStore, subject: string): Promise<{ type: string; familyId?: string; position: number; reason?: string }[]> {
  return (await store.readStream(subjectStreamId(subject))).map((e) => {
    const data = e.data as { familyId?: string; reason?: string };
    return { type: e.type, familyId: data.familyId, reason: data.reason, position: e.position };
  });
}

export async function familyEvents(store: EventStore, familyId: string): Promise<{ type: string; reason?: string }[]> {
  return (await store.readStream(familyStreamId(familyId))).map((e) => ({ type: e.type, reason: (e.data as { reason?: string }).reason }));
}

export async function activeInView(sql: SqlQueryable, subject: string, clientId: string): Promise<string[]> {
  return [...(await familyStatusesOf(sql, subject, clientId))].filter(([, status]) => status === 'active').map(([familyId]) => familyId);
}
