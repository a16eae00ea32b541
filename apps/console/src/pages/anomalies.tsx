/** Anomalies by severity and rule, filters in the URL, evidence as key/value, acknowledge / dismiss. */
import { useContext, useState } from 'preact/hooks';
import type { Anomaly } from '../api';
import { SessionContext } from '../context';
import { RULES, SEVERITIES, utc } from '../format';
import { familyHref, href, navigate, subjectHref } from '../route';
import { can } from '../session';
import { useLoad } from '../use-load';
import { Problem } from '../components/problem';
import { Evidence } from '../components/evidence';

const STATUSES = ['open', 'acknowledged', 'dismissed'] as const;
const FILTERS = ['status', 'severity', 'rule', 'subject', 'familyId'] as const;

export function AnomaliesPage({ params }: { params: Record<string, string> }) {
  const { api, principal } = useContext(SessionContext);
  document.title = 'Anomalies — token-ledger console';
  const filters = Object.fromEntries(FILTERS.map((k) => [k, params[k]])) as Record<string, string | undefined>;
  const list = useLoad((signal) => api.anomalies({ ...filters, cursor: params.cursor }, signal), [JSON.stringify(params)]);
  const set = (name: string, value: string) => navigate(href('anomalies', { ...filters, [name]: value }));
  const select = (name: string, label: string, options: readonly string[]) => (
    <div class="field">
      <label for={`a-${name}`}>{label}</label>
      <select id={`a-${name}`} value={filters[name] ?? ''} onChange={(e) => set(name, e.currentTarget.value)}>
        <option value="">any</option>
        {options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    </div>
  );
  const mayTriage = can(principal, 'anomalies:triage');
  return (
    <section>
      <h1>Anomalies</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
        {select('status', 'Status', STATUSES)}
        {select('severity', 'Severity', SEVERITIES)}
        {select('rule', 'Rule', RULES)}
        {(filters.subject || filters.familyId) && (
          <p class="field">
            {filters.subject && <>subject {filters.subject} </>}
            {filters.familyId && <>family {filters.familyId} </>}
            <a href={href('anomalies', { ...filters, subject: undefined, familyId: undefined })}>clear</a>
          </p>
        )}
      </form>
      {list.error && <Problem error={list.error} />}
      {list.data && (
        <>
          <ul class="anomalies">
            {list.data.items.map((a) => (
              <AnomalyCard key={a.anomalyId} anomaly={a} mayTriage={mayTriage} />
            ))}
          </ul>
          {list.data.items.length === 0 && <p class="muted">No anomalies match.</p>}
          <nav class="pager" aria-label="Pages">
            {params.cursor && <a href={href('anomalies', filters)}>« Newest</a>}
            {list.data.nextCursor && <a href={href('anomalies', { ...filters, cursor: list.data.nextCursor })}>Older »</a>}
          </nav>
        </>
      )}
      {list.loading && <p class="muted">Loading…</p>}
    </section>
  );
}

function AnomalyCard({ anomaly, mayTriage }: { anomaly: Anomaly; mayTriage: boolean }) {
  const { api, announce } = useContext(SessionContext);
  const [a, setA] = useState(anomaly);
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const status = a.status ?? 'open';
  const triage = async (decision: 'acknowledge' | 'dismiss') => {
    setBusy(true);
    try {
      const r = await api.triage(a.anomalyId, decision, note.trim() || undefined);
      setA({ ...a, status: r.status, statusBy: r.by, statusAt: r.at, statusNote: note.trim() || null });
      setNote('');
      announce(`${a.rule.replace(/_/g, ' ')}: ${r.status}.`);
    } catch (e) {
      announce(`Could not ${decision}: ${(e as Error).message}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <li class={`anomaly sev-${a.severity}`} data-anomaly={a.anomalyId} aria-labelledby={`an-${a.anomalyId}`}>
      <div class="anomaly-head">
        <span class={`badge sev sev-${a.severity}`}>{a.severity}</span>
        <h2 id={`an-${a.anomalyId}`}>{a.rule.replace(/_/g, ' ')}</h2>
        <span class={`badge triage-${status}`} data-testid="anomaly-status">
          {status}
        </span>
      </div>
      <p class="facts">
        <time dateTime={a.detectedAt}>{utc(a.detectedAt)}</time> · action {a.action}
        {a.familyId && (
          <>
            {' '}
            · family <a href={familyHref(a.familyId)}>{a.familyId}</a>
          </>
        )}
        {a.subject && (
          <>
            {' '}
            · subject <a href={subjectHref(a.subject)}>{a.subject}</a>
          </>
        )}
      </p>
      <details open={a.severity === 'critical' || a.severity === 'high'}>
        <summary>Evidence</summary>
        <Evidence value={a.evidence} />
      </details>
      {a.statusBy && (
        <p class="triage-record">
          {status} by <code>{a.statusBy}</code> at <time dateTime={a.statusAt ?? undefined}>{utc(a.statusAt)}</time>
          {a.statusNote && <> — “{a.statusNote}”</>}
        </p>
      )}
      {mayTriage && status !== 'dismissed' && (
        <div class="triage">
          <label for={`note-${a.anomalyId}`} class="visually-hidden">
            Note
          </label>
          <input id={`note-${a.anomalyId}`} placeholder="Note (optional)" value={note} maxLength={500} onInput={(e) => setNote(e.currentTarget.value)} />
          {status === 'open' && (
            <button type="button" disabled={busy} onClick={() => triage('acknowledge')}>
              Acknowledge
            </button>
          )}
          <button type="button" disabled={busy} onClick={() => triage('dismiss')}>
            Dismiss
          </button>
        </div>
      )}
    </li>
  );
}
