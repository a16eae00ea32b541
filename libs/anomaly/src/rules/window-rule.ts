import type { Finding } from '../detection';
import type { Observation } from '../observation';
import type { RuleName, WindowLimit } from '../rules-config';
import type { Mark } from '../state';
import { quiet, slide } from '../window';

/**
 * The sliding-window rules (refresh_burst, failed_refresh_storm): count the event into the key's
 * window; more than `max` within `windowSeconds` fires once, then the rule stays quiet for one
 * window so a sustained burst is one anomaly, not one per event.
 */
export function windowRule(
  rule: RuleName,
  scope: Finding['scope'],
  scopeKey: string,
  window: { marks: Mark[]; firedAt?: number },
  o: Observation,
  limit: WindowLimit,
  /** How many events this one counts for (an aggregated RefreshRejected: its count). */
  weight = 1,
): { marks: Mark[]; firedAt?: number; finding?: Finding } {
  const { marks, count, duplicate } = slide(window.marks, markOf(o, weight), limit.max, limit.windowSeconds);
  if (duplicate || count <= limit.max || quiet(window.firedAt, o.at, limit.windowSeconds)) {
    return { marks, firedAt: window.firedAt };
  }
  return { marks, firedAt: o.at, finding: { rule, scope, scopeKey, evidence: windowEvidence(marks, count, o, limit) } };
}

export function markOf(o: Observation, weight: number): Mark {
  return weight === 1 ? [o.at, o.position] : [o.at, o.position, weight];
}

/** count, max, window, the first and last counted event's time and the last address. */
export function windowEvidence(marks: readonly Mark[], count: number, o: Observation, limit: WindowLimit): Record<string, unknown> {
  const counted = marks.filter((m) => m[0] <= o.at && m[0] > o.at - limit.windowSeconds * 1000);
  return {
    count,
    max: limit.max,
    windowSeconds: limit.windowSeconds,
    firstAt: new Date(counted.length > 0 ? counted[0][0] : o.at).toISOString(),
    lastAt: new Date(o.at).toISOString(),
    ...(o.ip ? { lastIp: o.ip } : {}),
  };
}
