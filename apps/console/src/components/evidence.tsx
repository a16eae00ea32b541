import { label } from '../format';

/** Anomaly evidence (any JSON) as nested key/value lists, readable without knowing the rule. */
export function Evidence({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <span class="muted">—</span>;
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v !== 'object' || v === null)) return <span>{value.map(String).join(', ') || '—'}</span>;
    return (
      <ol class="evidence-list">
        {value.map((v, i) => (
          <li key={i}>
            <Evidence value={v} />
          </li>
        ))}
      </ol>
    );
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return <span class="muted">—</span>;
    return (
      <dl class="evidence">
        {entries.map(([k, v]) => (
          <div key={k}>
            <dt>{label(k)}</dt>
            <dd>
              <Evidence value={v} />
            </dd>
          </div>
        ))}
      </dl>
    );
  }
  return <span>{String(value)}</span>;
}
