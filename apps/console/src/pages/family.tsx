/**
 * A family's history from the event store: the chain of generations, every event with time, IP,
 * place and user agent, the state as of any instant (the slider sets `at=` in the URL and the
 * state comes from the timeline endpoint for that instant), the hash chain's verification and a
 * map of where it was used from.
 */
import { useContext, useEffect, useMemo, useState } from 'preact/hooks';
import type { FamilyView, LedgerEvent, Place } from '../api';
import { describe, generations, kindOf, sliderStops, stopIndex } from '../chain';
import { SessionContext } from '../context';
import { placeText, utc } from '../format';
import { familyHref, navigate, subjectHref } from '../route';
import { can } from '../session';
import { useLoad } from '../use-load';
import { Problem } from '../components/problem';
import { ConfirmDialog } from '../components/confirm-dialog';
import type WorldMapType from '../components/world-map';
import type { MapPoint } from '../components/world-map';

export function FamilyPage({ familyId, params }: { familyId: string; params: Record<string, string> }) {
  const { api, principal, announce } = useContext(SessionContext);
  document.title = `${familyId} — token-ledger console`;
  const at = params.at;
  const full = useLoad((signal) => api.timeline(familyId, undefined, signal), [familyId]);
  const asOf = useLoad((signal) => (at ? api.timeline(familyId, at, signal) : Promise.resolve(undefined)), [familyId, at]);
  const verification = useLoad((signal) => api.verification(familyId, signal), [familyId, full.data?.events.length]);
  const [confirming, setConfirming] = useState(false);

  if (full.error) return <Problem error={full.error} />;
  if (!full.data) return <p class="muted">Loading {familyId}…</p>;
  const events = full.data.events;
  const stops = sliderStops(events);
  const index = Math.max(0, stopIndex(stops, at));
  const atMs = at ? Date.parse(at) : Number.POSITIVE_INFINITY;
  const state: FamilyView | null | undefined = at ? asOf.data?.state : full.data.state;
  const gens = generations(events.filter((e) => Date.parse(e.occurredAt) <= atMs));
  const attribution = full.data.attribution;

  const setStop = (i: number) => {
    const next = i >= stops.length ? undefined : stops[i];
    navigate(familyHref(familyId, next ? { at: next } : {}), { replace: true });
  };

  return (
    <article class="family">
      <header class="page-head">
        <h1>
          Family <code>{familyId}</code>
        </h1>
        {state && (
          <p class="facts">
            <StatusBadge status={state.status} /> subject <a href={subjectHref(state.subject)}>{state.subject}</a> · client {state.clientId} · generation{' '}
            {state.generation}
            {state.revokedReason && <> · revoked ({state.revokedReason}) at {utc(state.revokedAt)}</>}
          </p>
        )}
        {can(principal, 'families:revoke') && full.data.state?.status === 'active' && !at && (
          <button type="button" class="danger" onClick={() => setConfirming(true)}>
            Revoke this family…
          </button>
        )}
      </header>

      <section class="as-of" aria-labelledby="as-of-title">
        <h2 id="as-of-title">State as of</h2>
        <div class="slider-row">
          <button type="button" onClick={() => setStop(index - 1)} disabled={index <= 0} aria-label="Previous event">
            ◀
          </button>
          <input
            id="as-of-slider"
            type="range"
            min={0}
            max={stops.length}
            step={1}
            value={at ? index : stops.length}
            aria-label="Instant"
            aria-valuetext={at ? utc(stops[index]) : 'now'}
            onInput={(e) => setStop(Number(e.currentTarget.value))}
          />
          <button type="button" onClick={() => setStop(index + 1)} disabled={!at} aria-label="Next event">
            ▶
          </button>
        </div>
        <p class="as-of-state" data-testid="as-of">
          <strong>{at ? utc(at) : 'now'}</strong>:{' '}
          {asOf.loading && at ? (
            'loading…'
          ) : state ? (
            <>
              <StatusBadge status={state.status} /> generation {state.generation}, last used {utc(state.lastUsedAt)}
            </>
          ) : (
            'did not exist yet'
          )}
        </p>
        <form
          class="exact-instant"
          onSubmit={(e) => {
            e.preventDefault();
            const value = new FormData(e.currentTarget).get('at');
            const ms = typeof value === 'string' ? Date.parse(value) : NaN;
            if (Number.isFinite(ms)) navigate(familyHref(familyId, { at: new Date(ms).toISOString() }));
            else announce('Give an ISO-8601 instant, e.g. 2026-01-01T12:00:00Z');
          }}
        >
          <label for="exact-at">Any instant (ISO-8601)</label>
          <input id="exact-at" name="at" key={at ?? 'now'} defaultValue={at ?? ''} placeholder="2026-01-01T12:00:00.000Z" spellcheck={false} />
          <button type="submit">Show</button>
          {at && <a href={familyHref(familyId)}>Now</a>}
        </form>
        {asOf.error && <Problem error={asOf.error} />}
      </section>

      <section aria-labelledby="chain-title">
        <h2 id="chain-title">Chain of generations</h2>
        <ol class="generations">
          {gens.map((g) => (
            <li key={g.generation} class={`gen fate-${g.fate}`}>
              <span class="gen-no">gen {g.generation}</span>
              <span class="gen-fate">{g.fate === 'head' ? 'current' : g.fate}</span>
              {g.marks.map((m) => (
                <span key={m.kind} class={`mark mark-${m.kind}`}>
                  {m.kind === 'reuse' ? 'reused' : m.kind}
                  {m.count > 1 ? ` ×${m.count}` : ''}
                </span>
              ))}
            </li>
          ))}
        </ol>
      </section>

      <div class="family-grid">
        <section aria-labelledby="history-title">
          <h2 id="history-title">History ({events.length} events)</h2>
          <ol class="history">
            {events.map((e) => (
              <HistoryItem key={e.eventId} event={e} future={Date.parse(e.occurredAt) > atMs} />
            ))}
          </ol>
          {full.data.nextCursor && <p class="muted">Only the first {events.length} events are shown.</p>}
        </section>
        <aside>
          <section aria-labelledby="verify-title">
            <h2 id="verify-title">Hash chain</h2>
            {verification.error ? (
              <Problem error={verification.error} />
            ) : verification.data ? (
              <p class={`verify verify-${verification.data.status}`} data-testid="verification">
                {verification.data.status === 'ok'
                  ? `Verified: ${verification.data.checkedEvents} events, every link intact.`
                  : verification.data.status === 'unkeyed'
                    ? `Links intact over ${verification.data.checkedEvents} events, but not keyed (no LEDGER_KEK, or events older than it): a rewrite with recomputed hashes would not show.`
                    : `Broken: ${verification.data.problemCount ?? verification.data.problems.length} problem(s) in ${verification.data.checkedEvents} events.`}
              </p>
            ) : (
              <p class="muted">Checking…</p>
            )}
            {verification.data && verification.data.problems.length > 0 && (
              <ul class="problems">
                {verification.data.problems.map((p, i) => (
                  <li key={i}>
                    revision {p.revision}
                    {p.position !== null && <> (position {p.position})</>}: <code>{p.kind}</code> {p.detail}
                  </li>
                ))}
              </ul>
            )}
          </section>
          <section aria-labelledby="map-title">
            <h2 id="map-title">Where it was used</h2>
            <Places events={events} atMs={atMs} />
            {attribution ? (
              <p class="attribution">
                <a href={attribution.url} rel="noopener noreferrer" target="_blank">
                  {attribution.text}
                </a>
              </p>
            ) : (
              <p class="attribution">
                <a href="https://db-ip.com" rel="noopener noreferrer" target="_blank">
                  IP Geolocation by DB-IP
                </a>
              </p>
            )}
          </section>
        </aside>
      </div>
      {confirming && (
        <ConfirmDialog
          title="Revoke this family?"
          confirmLabel="Revoke family"
          onCancel={() => setConfirming(false)}
          onConfirm={async () => {
            setConfirming(false);
            try {
              const r = await api.revokeFamily(familyId, 'admin');
              announce(`Family ${familyId} ${r.revoked ? 'revoked' : 'was already ended'}.`);
              full.reload();
            } catch (e) {
              announce(`Revocation failed: ${(e as Error).message}`);
            }
          }}
        >
          <p>
            Every refresh token and access token of <code>{familyId}</code> stops working. The device must sign in again.
          </p>
        </ConfirmDialog>
      )}
    </article>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge status-${status}`}>{status}</span>;
}

function HistoryItem({ event, future }: { event: LedgerEvent; future: boolean }) {
  const ctx = event.metadata?.context ?? event.data?.context ?? {};
  const kind = kindOf(event.type);
  return (
    <li class={`event kind-${kind}${future ? ' future' : ''}`} data-type={event.type}>
      <div class="event-head">
        <span class={`tag t-${event.type}`}>{event.type}</span>
        <time dateTime={event.occurredAt}>{utc(event.occurredAt)}</time>
        {future && <span class="muted">(after the selected instant)</span>}
      </div>
      <p class="event-what">{describe(event)}</p>
      <dl class="event-ctx">
        {ctx.ip && (
          <div>
            <dt>IP</dt>
            <dd>{ctx.ip}</dd>
          </div>
        )}
        {event.place && (
          <div>
            <dt>Place</dt>
            <dd>{placeText(event.place)}</dd>
          </div>
        )}
        {ctx.userAgent && (
          <div>
            <dt>User agent</dt>
            <dd>{ctx.userAgent}</dd>
          </div>
        )}
        {ctx.deviceId && (
          <div>
            <dt>Device</dt>
            <dd>{ctx.deviceId}</dd>
          </div>
        )}
        {event.metadata?.actor && (
          <div>
            <dt>Actor</dt>
            <dd>{event.metadata.actor}</dd>
          </div>
        )}
      </dl>
    </li>
  );
}

function Places({ events, atMs }: { events: LedgerEvent[]; atMs: number }) {
  // The map (geometry included) is a chunk of its own, loaded once the history is on screen.
  const [WorldMap, setWorldMap] = useState<typeof WorldMapType>();
  useEffect(() => {
    import('../components/world-map').then((m) => setWorldMap(() => m.default));
  }, []);
  const { points, route } = useMemo(() => {
    const byKey = new Map<string, MapPoint>();
    const route: Place[] = [];
    for (const e of events) {
      const place = e.place;
      if (!place) continue;
      const key = `${place.latitude},${place.longitude}`;
      const future = Date.parse(e.occurredAt) > atMs;
      const p = byKey.get(key);
      if (p) {
        p.count++;
        p.future = p.future && future;
      } else byKey.set(key, { place, count: 1, label: place.city ?? place.countryCode ?? '', future });
      if (!future) route.push(place);
    }
    return { points: [...byKey.values()], route };
  }, [events, atMs]);
  const unlocated = events.filter((e) => e.place === null && (e.metadata?.context?.ip ?? '')).length;
  return (
    <>
      {WorldMap ? <WorldMap points={points} route={route} /> : <p class="muted">Loading map…</p>}
      <ul class="places">
        {points.map((p) => (
          <li key={`${p.place.latitude},${p.place.longitude}`}>
            {placeText(p.place)} — {p.count} event{p.count === 1 ? '' : 's'}
          </li>
        ))}
        {unlocated > 0 && <li class="muted">{unlocated} event(s) from addresses the database cannot place (private or unknown)</li>}
      </ul>
    </>
  );
}
