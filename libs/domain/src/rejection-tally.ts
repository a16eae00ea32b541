import type { RejectionReason, RejectionSource, RequestContext } from './events';

/**
 * Refused refreshes of one family are recorded one by one only while they are rare: within this
 * long after a recorded RefreshRejected, further refusals are tallied by the caller and recorded
 * together (one RefreshRejected per reason) when the interval is flushed. A flood of forged tokens
 * aimed at a family (its id is public: the access token's `sid`) thus costs its stream about one
 * append per interval, and its owner's rotations at most one lost race per interval.
 */
export const REJECTION_RECORD_INTERVAL_MS = 10_000;

/** Source addresses one aggregated RefreshRejected names; the rest are only counted (bounded events). */
export const MAX_REJECTION_SOURCES = 32;

/** A refusal the decider did not record (it fell within the interval): the caller tallies it. */
export interface UnrecordedRejection {
  reason: RejectionReason;
  presentedGeneration: number;
  context?: RequestContext;
  /** Epoch ms. */
  at: number;
}

/** Refusals of one reason on one family, waiting to be recorded as one RefreshRejected. */
export interface RejectionTally {
  reason: RejectionReason;
  count: number;
  /** Epoch ms of the first and last refusal. */
  from: number;
  to: number;
  presentedGeneration: number;
  context?: RequestContext;
  /** Per address, first come first named, at most MAX_REJECTION_SOURCES. */
  sources: RejectionSource[];
  /** Refusals without an address or from an address beyond the named ones. */
  otherSources: number;
}

/** Whether a refusal at `now` falls within the interval of the family's last recorded one. */
export function isWithinRejectionInterval(lastRejectedAt: number | undefined, now: number): boolean {
  // A negative age (another node's clock slightly ahead) counts as inside: it was just recorded.
  return lastRejectedAt !== undefined && now - lastRejectedAt < REJECTION_RECORD_INTERVAL_MS;
}

/** `tallies` with `r` counted in (pure: the inputs are not changed). One tally per reason. */
export function tallyRejection(tallies: readonly RejectionTally[], r: UnrecordedRejection): RejectionTally[] {
  const index = tallies.findIndex((t) => t.reason === r.reason);
  const current: RejectionTally =
    index >= 0 ? tallies[index] : { reason: r.reason, count: 0, from: r.at, to: r.at, presentedGeneration: r.presentedGeneration, sources: [], otherSources: 0 };
  const ip = r.context?.ip;
  let sources = current.sources;
  let otherSources = current.otherSources;
  const known = ip === undefined ? -1 : sources.findIndex((s) => s.ip === ip);
  if (known >= 0) sources = sources.map((s, i) => (i === known ? { ip: s.ip, count: s.count + 1 } : s));
  else if (ip !== undefined && sources.length < MAX_REJECTION_SOURCES) sources = [...sources, { ip, count: 1 }];
  else otherSources++;
  const next: RejectionTally = {
    reason: r.reason,
    count: current.count + 1,
    from: Math.min(current.from, r.at),
    to: Math.max(current.to, r.at),
    presentedGeneration: r.presentedGeneration,
    ...(r.context ? { context: { ...r.context } } : current.context ? { context: current.context } : {}),
    sources,
    otherSources,
  };
  return index >= 0 ? tallies.map((t, i) => (i === index ? next : t)) : [...tallies, next];
}

/** Two tallies of the same family merged (a flush that failed goes back into the pending ones). */
export function mergeTallies(a: readonly RejectionTally[], b: readonly RejectionTally[]): RejectionTally[] {
  const out = [...a];
  for (const t of b) {
    const index = out.findIndex((o) => o.reason === t.reason);
    if (index < 0) {
      out.push(t);
      continue;
    }
    const o = out[index];
    const byIp = new Map(o.sources.map((s) => [s.ip, s.count]));
    let otherSources = o.otherSources + t.otherSources;
    for (const s of t.sources) {
      if (byIp.has(s.ip)) byIp.set(s.ip, byIp.get(s.ip)! + s.count);
      else if (byIp.size < MAX_REJECTION_SOURCES) byIp.set(s.ip, s.count);
      else otherSources += s.count;
    }
    const later = t.to >= o.to ? t : o;
    out[index] = {
      reason: o.reason,
      count: o.count + t.count,
      from: Math.min(o.from, t.from),
      to: Math.max(o.to, t.to),
      presentedGeneration: later.presentedGeneration,
      ...(later.context ? { context: later.context } : {}),
      sources: [...byIp].map(([ip, count]) => ({ ip, count })),
      otherSources,
    };
  }
  return out;
}
