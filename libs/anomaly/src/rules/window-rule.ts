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
): { marks: Mark[]; firedAt?: number; finding?: Finding } {
  const { marks, count, duplicate } = slide(window.marks, [o.at, o.position], limit.max, limit.windowSeconds);
  if (duplicate || count <= limit.max || quiet(window.firedAt, o.at, limit.windowSeconds)) {
    return { marks, firedAt: window.firedAt };
  }
  const inWindow = marks.filter((m) => m[0] <= o.at);
  return {
    marks,
    firedAt: o.at,
    finding: {
      rule,
      scope,
      scopeKey,
      evidence: {
        count,
        max: limit.max,
        windowSeconds: limit.windowSeconds,
        firstAt: new Date(inWindow[inWindow.length - count][0]).toISOString(),
        lastAt: new Date(o.at).toISOString(),
        ...(o.ip ? { lastIp: o.ip } : {}),
      },
    },
  };
}
