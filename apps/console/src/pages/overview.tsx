/** Refreshes, reuse detections, revocations and anomalies over time, and the live revocation feed. */
import { useContext, useEffect, useState } from 'preact/hooks';
import type { Bucket } from '../api';
import { SessionContext } from '../context';
import { shortTime, utc } from '../format';
import { familyHref, href } from '../route';
import { can } from '../session';
import { useLoad } from '../use-load';
import { Problem } from '../components/problem';
import { BarChart } from '../components/bar-chart';
import { openRevocationFeed, type RevocationItem } from '../revocation-feed';

const RANGES: Record<string, { label: string; ms: number; bucket: Bucket }> = {
  '1h': { label: 'Last hour', ms: 3_600_000, bucket: 'minute' },
  '24h': { label: 'Last 24 hours', ms: 86_400_000, bucket: 'hour' },
  '30d': { label: 'Last 30 days', ms: 30 * 86_400_000, bucket: 'day' },
};

export function OverviewPage({ params }: { params: Record<string, string> }) {
  const { api, principal } = useContext(SessionContext);
  document.title = 'Overview — token-ledger console';
  const range = RANGES[params.range ?? ''] ? params.range! : '1h';
  const { ms, bucket } = RANGES[range];
  const stats = useLoad((signal) => {
    const to = new Date();
    // Whole buckets: the window ends at the next bucket boundary.
    const step = bucket === 'minute' ? 60_000 : bucket === 'hour' ? 3_600_000 : 86_400_000;
    const end = new Date(Math.ceil(to.getTime() / step) * step);
    return api.overview(new Date(end.getTime() - ms).toISOString(), end.toISOString(), bucket, signal);
  }, [range]);
  const series = stats.data?.series ?? [];
  const pick = (k: 'refreshes' | 'reuseDetections' | 'revocations' | 'anomalies') => series.map((s) => ({ at: s.at, value: s[k] }));
  return (
    <section>
      <header class="page-head">
        <h1>Overview</h1>
        <nav class="ranges" aria-label="Time range">
          {Object.entries(RANGES).map(([k, r]) => (
            <a key={k} href={href('overview', { range: k })} aria-current={k === range ? 'true' : undefined}>
              {r.label}
            </a>
          ))}
        </nav>
      </header>
      {stats.error && <Problem error={stats.error} />}
      <div class="charts">
        <BarChart title="Refreshes" tone="refreshes" points={pick('refreshes')} />
        <BarChart title="Reuse detections" tone="reuse" points={pick('reuseDetections')} />
        <BarChart title="Revocations" tone="revocations" points={pick('revocations')} />
        <BarChart title="Anomalies" tone="anomalies" points={pick('anomalies')} />
      </div>
      {stats.data && (
        <p class="muted">
          {utc(stats.data.from)} – {utc(stats.data.to)}, per {stats.data.bucket}. <a href={href('anomalies', { status: 'open' })}>Open anomalies</a>
        </p>
      )}
      {can(principal, 'revocations:read') ? <LiveFeed /> : <p class="muted">The live revocation feed needs the revocations:read scope.</p>}
    </section>
  );
}

function LiveFeed() {
  const { api } = useContext(SessionContext);
  const [items, setItems] = useState<RevocationItem[]>([]);
  const [state, setState] = useState('connecting');
  useEffect(
    () =>
      openRevocationFeed(api, {
        onRevocation: (item) => setItems((list) => (list.some((i) => i.position === item.position) ? list : [item, ...list].slice(0, 50))),
        onState: setState,
      }),
    [api],
  );
  return (
    <section class="feed" aria-labelledby="feed-title">
      <h2 id="feed-title">
        Live revocations <span class={`badge feed-${state}`}>{state}</span>
      </h2>
      <p class="muted">Revocations whose access tokens may still be in use, then every new one as it happens (newest first).</p>
      <ol class="feed-list" aria-live="polite" aria-relevant="additions">
        {items.map((i) => (
          <li key={i.position}>
            <time dateTime={i.revokedAt}>{shortTime(i.revokedAt)}</time> <a href={familyHref(i.familyId)}>{i.familyId}</a> <span class="tag">{i.reason}</span>
            {i.jti && <span class="detail">access token {i.jti}</span>}
          </li>
        ))}
      </ol>
      {items.length === 0 && <p class="muted">No revocations yet.</p>}
    </section>
  );
}
