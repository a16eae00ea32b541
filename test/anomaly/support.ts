import { eventually } from '../messaging/support';
import type { LedgerClient } from '../support/ledger-harness';

/**
 * With reuse_detected configured as `revoke_subject` (critical): waits for the one reuse anomaly of
 * `subject`, on the family whose token was reused, then checks that it ended `other`, another
 * family of that subject, with reason `anomaly`.
 */
export async function expectReuseRevokedSubject(
  api: LedgerClient,
  client: { clientId: string; secret: string },
  o: { subject: string; reusedFamilyId: string; other: { family_id: string; refresh_token: string } },
): Promise<void> {
  let anomalies: any[] = [];
  await eventually(async () => {
    anomalies = (await api.admin('GET', `/v1/anomalies?subject=${o.subject}`)).body.items;
    return anomalies.length > 0;
  }, 'reuse anomaly');
  expect(anomalies).toEqual([
    expect.objectContaining({ rule: 'reuse_detected', severity: 'critical', action: 'revoke_subject', familyId: o.reusedFamilyId, subject: o.subject }),
  ]);
  await eventually(async () => (await api.admin('GET', `/v1/families/${o.other.family_id}`)).body.status === 'revoked', 'other family revoked');
  expect((await api.admin('GET', `/v1/families/${o.other.family_id}`)).body.revokedReason).toBe('anomaly');
  expect((await api.refresh(o.other.refresh_token, client)).body.error).toBe('invalid_grant');
}
