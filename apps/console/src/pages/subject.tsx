/** A subject's signed-in devices (families), with revoke one / revoke all behind a confirmation. */
import { useContext, useState } from 'preact/hooks';
import type { FamilyView, Page } from '../api';
import { SessionContext } from '../context';
import { shortTime, utc } from '../format';
import { familyHref, href } from '../route';
import { can } from '../session';
import { useLoad } from '../use-load';
import { Problem } from '../components/problem';
import { ConfirmDialog } from '../components/confirm-dialog';
import { StatusBadge } from './family';

type Pending = { kind: 'family'; family: FamilyView } | { kind: 'all' };

const REASONS = ['admin', 'logout', 'password_change', 'anomaly'] as const;

export function SubjectPage({ subject }: { subject: string }) {
  const { api, principal, announce } = useContext(SessionContext);
  document.title = `${subject} — token-ledger console`;
  const [cursor, setCursor] = useState<string | undefined>();
  const list = useLoad((signal) => api.subjectFamilies(subject, cursor, signal), [subject, cursor]);
  const [pending, setPending] = useState<Pending>();
  const [reason, setReason] = useState<string>('admin');
  const mayRevokeFamily = can(principal, 'families:revoke');
  const mayRevokeAll = can(principal, 'subjects:revoke');

  // The read model catches up a moment after the command; show the command's answer meanwhile.
  const markRevoked = (ids: string[]) => {
    if (!list.data) return;
    const page: Page<FamilyView> = {
      ...list.data,
      items: list.data.items.map((f) => (ids.includes(f.familyId) && f.status === 'active' ? { ...f, status: 'revoked', revokedReason: reason } : f)),
    };
    list.set(page);
  };

  const confirm = async () => {
    const p = pending!;
    setPending(undefined);
    try {
      if (p.kind === 'family') {
        const r = await api.revokeFamily(p.family.familyId, reason);
        markRevoked([p.family.familyId]);
        announce(r.revoked ? `Revoked ${p.family.familyId}.` : `${p.family.familyId} was already ${r.status}.`);
      } else {
        const r = await api.revokeSubject(subject, reason);
        markRevoked(r.revokedFamilies);
        announce(`Revoked ${r.revokedFamilies.length} famil${r.revokedFamilies.length === 1 ? 'y' : 'ies'} of ${subject}.`);
      }
    } catch (e) {
      announce(`Revocation failed: ${(e as Error).message}`);
    }
  };

  const active = list.data?.items.filter((f) => f.status === 'active') ?? [];
  return (
    <section class="subject">
      <header class="page-head">
        <h1>
          Subject <code>{subject}</code>
        </h1>
        <p class="facts">
          <a href={href('search', { subject })}>Audit trail</a> · <a href={href('anomalies', { subject })}>Anomalies</a>
        </p>
        {mayRevokeAll && (
          <button type="button" class="danger" disabled={!list.data || active.length === 0} onClick={() => setPending({ kind: 'all' })}>
            Revoke all sessions…
          </button>
        )}
      </header>
      {list.error && <Problem error={list.error} />}
      {list.data && (
        <>
          <h2>Devices (token families)</h2>
          <div class="table-wrap">
            <table class="families stack">
              <thead>
                <tr>
                  <th scope="col">Family</th>
                  <th scope="col">Status</th>
                  <th scope="col">Client</th>
                  <th scope="col">Gen.</th>
                  <th scope="col">Signed in</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Last seen from</th>
                  {mayRevokeFamily && <th scope="col"><span class="visually-hidden">Actions</span></th>}
                </tr>
              </thead>
              <tbody>
                {list.data.items.map((f) => (
                  <tr key={f.familyId} data-family={f.familyId}>
                    <td data-label="Family">
                      <a href={familyHref(f.familyId)}>{f.familyId}</a>
                    </td>
                    <td data-label="Status">
                      <StatusBadge status={f.status} />
                      {f.revokedReason && <span class="reason">{f.revokedReason}</span>}
                    </td>
                    <td data-label="Client">{f.clientId}</td>
                    <td data-label="Gen.">{f.generation}</td>
                    <td class="nowrap" data-label="Signed in" title={utc(f.createdAt)}>{shortTime(f.createdAt)}</td>
                    <td class="nowrap" data-label="Last used" title={utc(f.lastUsedAt)}>{shortTime(f.lastUsedAt)}</td>
                    <td data-label="Seen from">
                      {f.lastContext?.ip ?? '—'}
                      {f.lastContext?.userAgent && <span class="detail">{f.lastContext.userAgent}</span>}
                    </td>
                    {mayRevokeFamily && (
                      <td class="actions-cell">
                        {f.status === 'active' && (
                          <button type="button" class="danger small" onClick={() => setPending({ kind: 'family', family: f })} aria-label={`Revoke ${f.familyId}`}>
                            Revoke…
                          </button>
                        )}
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {list.data.items.length === 0 && <p class="muted">No families for this subject.</p>}
          <nav class="pager" aria-label="Pages">
            {cursor && (
              <button type="button" class="link" onClick={() => setCursor(undefined)}>
                « Newest
              </button>
            )}
            {list.data.nextCursor && (
              <button type="button" class="link" onClick={() => setCursor(list.data!.nextCursor!)}>
                Older »
              </button>
            )}
          </nav>
        </>
      )}
      {pending && (
        <ConfirmDialog
          title={pending.kind === 'all' ? `Revoke every session of ${subject}?` : 'Revoke this device?'}
          confirmLabel={pending.kind === 'all' ? 'Revoke all' : 'Revoke'}
          onCancel={() => setPending(undefined)}
          onConfirm={confirm}
        >
          <p>
            {pending.kind === 'all' ? (
              <>
                Every device of <code>{subject}</code> is signed out ({active.length} active on this page), and so is any login that races with this.
              </>
            ) : (
              <>
                <code>{pending.family.familyId}</code> ({pending.family.clientId}, last seen from {pending.family.lastContext?.ip ?? 'an unknown address'}) is signed out.
              </>
            )}
          </p>
          <label for="revoke-reason">Reason</label>
          <select id="revoke-reason" value={reason} onChange={(e) => setReason(e.currentTarget.value)}>
            {REASONS.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </ConfirmDialog>
      )}
    </section>
  );
}
