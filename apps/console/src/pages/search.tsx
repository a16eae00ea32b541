/** The audit view: filters in the URL, newest first, cursor pagination, links to families and subjects. */
import { useContext, useState } from 'preact/hooks';
import { SessionContext } from '../context';
import { EVENT_TYPES, isoToLocalInput, localInputToIso, shortTime, utc } from '../format';
import { familyHref, href, navigate, subjectHref } from '../route';
import { useLoad } from '../use-load';
import { Problem } from '../components/problem';
import { describe } from '../chain';

const FILTERS = ['subject', 'clientId', 'familyId', 'ip', 'type', 'from', 'to'] as const;

export function SearchPage({ params }: { params: Record<string, string> }) {
  const { api } = useContext(SessionContext);
  document.title = 'Search — token-ledger console';
  const filters = Object.fromEntries(FILTERS.map((k) => [k, params[k]]));
  const result = useLoad((signal) => api.audit({ ...filters, cursor: params.cursor, limit: '50' }, signal), [JSON.stringify(params)]);
  const [form, setForm] = useState<Record<string, string>>(() => ({ ...filters, from: isoToLocalInput(params.from), to: isoToLocalInput(params.to) }) as Record<string, string>);
  const field = (name: string, label: string, placeholder = '') => (
    <div class="field">
      <label for={`f-${name}`}>{label}</label>
      <input id={`f-${name}`} name={name} value={form[name] ?? ''} placeholder={placeholder} onInput={(e) => setForm({ ...form, [name]: e.currentTarget.value })} />
    </div>
  );
  const submit = (e: Event) => {
    e.preventDefault();
    navigate(href('search', { ...form, from: localInputToIso(form.from ?? ''), to: localInputToIso(form.to ?? '') }));
  };
  return (
    <section>
      <h1>Search the audit trail</h1>
      <form class="filters" onSubmit={submit} role="search">
        {field('subject', 'Subject')}
        {field('clientId', 'Client')}
        {field('familyId', 'Family', 'fam_…')}
        {field('ip', 'IP address')}
        <div class="field">
          <label for="f-type">Event type</label>
          <select id="f-type" name="type" value={form.type ?? ''} onChange={(e) => setForm({ ...form, type: e.currentTarget.value })}>
            <option value="">any</option>
            {EVENT_TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </div>
        <div class="field wide">
          <label for="f-from">From (UTC)</label>
          <input id="f-from" name="from" type="datetime-local" step="1" value={form.from ?? ''} onInput={(e) => setForm({ ...form, from: e.currentTarget.value })} />
        </div>
        <div class="field wide">
          <label for="f-to">To (UTC)</label>
          <input id="f-to" name="to" type="datetime-local" step="1" value={form.to ?? ''} onInput={(e) => setForm({ ...form, to: e.currentTarget.value })} />
        </div>
        <div class="field actions">
          <button type="submit" class="primary">
            Search
          </button>
          <a href={href('search')} onClick={() => setForm({})}>
            Clear
          </a>
        </div>
      </form>
      {result.error && <Problem error={result.error} />}
      {result.data && (
        <>
          <div class="table-wrap">
            <table class="audit stack">
              <caption class="visually-hidden">Audit events, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Event</th>
                  <th scope="col">Family</th>
                  <th scope="col">Subject</th>
                  <th scope="col">Client</th>
                  <th scope="col">IP</th>
                </tr>
              </thead>
              <tbody>
                {result.data.items.map((e) => (
                  <tr key={e.eventId} class={`kind-${e.type}`}>
                    <td data-label="Time">
                      <time dateTime={e.occurredAt} title={utc(e.occurredAt)}>
                        {shortTime(e.occurredAt)}
                      </time>
                    </td>
                    <td data-label="Event">
                      <span class={`tag t-${e.type}`}>{e.type}</span>
                      <span class="detail">{describe(e) !== e.type ? describe(e) : ''}</span>
                    </td>
                    <td data-label="Family">{e.familyId ? <a href={familyHref(e.familyId)}>{e.familyId}</a> : '—'}</td>
                    <td data-label="Subject">{e.subject ? <a href={subjectHref(e.subject)}>{e.subject}</a> : '—'}</td>
                    <td data-label="Client">{e.clientId || '—'}</td>
                    <td data-label="IP">{e.metadata?.context?.ip ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {result.data.items.length === 0 && <p class="muted">No events match.</p>}
          <nav class="pager" aria-label="Pages">
            {params.cursor && <a href={href('search', filters)}>« Newest</a>}
            {result.data.nextCursor && (
              <a href={href('search', { ...filters, cursor: result.data.nextCursor })} rel="next">
                Older »
              </a>
            )}
          </nav>
        </>
      )}
      {result.loading && <p class="muted" aria-live="polite">Loading…</p>}
    </section>
  );
}
