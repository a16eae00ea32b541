import type { Finding } from '../detection';
import type { Observation } from '../observation';
import type { WindowLimit } from '../rules-config';
import type { StormWindow } from '../state';
import { countIn, slide } from '../window';
import { markOf, windowEvidence, windowRule } from './window-rule';

/**
 * failed_refresh_storm on one key: every failure counts (by weight: an aggregated RefreshRejected
 * stands for many). Forged tokens are failures anyone who knows a family id can cause, so they never
 * make the rule revoke (SPEC §2 rule 4): a storm whose real failures alone do not pass `max` is an
 * alert-only finding (`alertOnly`), whatever action is configured. If real failures pass `max`
 * later within the quiet window of such a storm, it is reported again, this time with its action.
 */
export function failedRefreshStorm(
  scope: Finding['scope'],
  scopeKey: string,
  window: StormWindow,
  o: Observation,
  limit: WindowLimit,
  weight: number,
): { window: StormWindow; finding?: Finding } {
  const all = windowRule('failed_refresh_storm', scope, scopeKey, { marks: window.failures, firedAt: window.stormFiredAt }, o, limit, weight);
  const real = o.forged
    ? { marks: window.realFailures ?? [], duplicate: false }
    : slide(window.realFailures ?? [], markOf(o, weight), limit.max, limit.windowSeconds);
  const realCount = countIn(real.marks, o.at, limit.windowSeconds);
  const next: StormWindow = { failures: all.marks, realFailures: real.marks, stormFiredAt: all.firedAt, stormAlertOnly: window.stormAlertOnly };
  if (all.finding) {
    const alertOnly = realCount <= limit.max;
    const finding: Finding = { ...all.finding, evidence: { ...all.finding.evidence, realFailures: realCount }, ...(alertOnly ? { alertOnly } : {}) };
    return { window: { ...next, stormAlertOnly: alertOnly }, finding };
  }
  if (window.stormAlertOnly && !o.forged && !real.duplicate && realCount > limit.max) {
    const evidence = { ...windowEvidence(real.marks, realCount, o, limit), count: countIn(all.marks, o.at, limit.windowSeconds), realFailures: realCount };
    return { window: { ...next, stormFiredAt: o.at, stormAlertOnly: false }, finding: { rule: 'failed_refresh_storm', scope, scopeKey, evidence } };
  }
  return { window: next };
}
