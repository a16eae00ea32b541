import type { PublicEvent } from '@token-ledger/envelope';
import { anomalyIdOf, type Detection, type Finding } from './detection';
import type { GeoPoint } from './geo';
import { observe, type Observation } from './observation';
import { deviceChange } from './rules/device-change';
import { failedRefreshStorm } from './rules/failed-refresh-storm';
import { geoMismatch } from './rules/geo-mismatch';
import { impossibleTravel } from './rules/impossible-travel';
import { reuseDetected } from './rules/reuse-detected';
import { windowRule } from './rules/window-rule';
import type { RulesConfig } from './rules-config';
import {
  familyKey,
  ipKey,
  subjectKey,
  type AnomalyStateStore,
  type FamilyTrack,
  type IpTrack,
  type StateMap,
  type SubjectTrack,
} from './state';
import { userAgentFamily } from './user-agent';

export interface RuleContext {
  rules: RulesConfig;
  /** Synchronous IP → location (undefined for private, reserved and unknown addresses). */
  locate(ip: string): GeoPoint | undefined;
}

/** The state keys one event reads and writes. */
export function stateKeysOf(o: Observation): string[] {
  if (o.kind === 'other') return [];
  const keys = [familyKey(o.familyId)];
  if (o.subject) keys.push(subjectKey(o.subject));
  if (o.kind === 'failure') keys.push(...o.sources.map((s) => ipKey(s.ip)));
  return keys;
}

/**
 * One event through every rule: reads and updates `states` (which must hold the event's keys as
 * loaded) and returns what fired. Pure apart from mutating `states`: the same events over the same
 * states yield the same detections, which is what makes replays, backtests and redeliveries agree.
 */
export function step(o: Observation, states: StateMap, ctx: RuleContext): Detection[] {
  if (o.kind === 'other') return [];
  const findings: Array<Finding | undefined> = [];
  stepFamily(o, states, ctx, findings);
  if (o.subject) stepSubject(o, states, ctx, findings);
  if (o.kind === 'failure') stepIp(o, states, ctx, findings);
  return findings.filter((f): f is Finding => f !== undefined).map((f) => detectionOf(f, o, ctx.rules));
}

function stepFamily(o: Observation, states: StateMap, ctx: RuleContext, findings: Array<Finding | undefined>): void {
  const key = familyKey(o.familyId);
  const previous = (states.get(key) as FamilyTrack | null | undefined) ?? { kind: 'family', pos: 0, refreshes: [] };
  if (o.position <= previous.pos) return; // already applied (redelivery)
  if (o.kind === 'end') {
    states.set(key, null); // an ended family is never used again; late events start a fresh track
    return;
  }
  const { rules } = ctx;
  const track: FamilyTrack = { ...previous, pos: o.position };
  if (rules.reuse_detected.enabled) findings.push(reuseDetected(o));
  if (o.kind === 'use') {
    const point = o.ip ? ctx.locate(o.ip) : undefined;
    if (point && o.ip) {
      if (point.precision === 'city') {
        const site = { at: o.at, ip: o.ip, country: point.country, city: point.city, lat: point.lat, lon: point.lon };
        if (rules.impossible_travel.enabled) findings.push(impossibleTravel(o.familyId, previous.lastCity, site, rules.impossible_travel));
        track.lastCity = site;
      }
      const here = { country: point.country, at: o.at, ip: o.ip };
      if (rules.geo_mismatch.enabled) findings.push(geoMismatch(o.familyId, previous.lastCountry, here));
      track.lastCountry = here;
    }
    const device = { deviceId: o.deviceId, userAgentFamily: userAgentFamily(o.userAgent) };
    if (rules.device_change.enabled) findings.push(deviceChange(o.familyId, previous, device));
    if (device.deviceId) track.deviceId = device.deviceId;
    if (device.userAgentFamily) track.userAgentFamily = device.userAgentFamily;
    const limit = rules.refresh_burst.perFamily;
    if (o.refresh && rules.refresh_burst.enabled && limit.enabled) {
      const w = windowRule('refresh_burst', 'family', o.familyId, { marks: track.refreshes, firedAt: track.burstFiredAt }, o, limit);
      track.refreshes = w.marks;
      track.burstFiredAt = w.firedAt;
      findings.push(w.finding);
    }
  }
  states.set(key, track);
}

function stepSubject(o: Observation, states: StateMap, ctx: RuleContext, findings: Array<Finding | undefined>): void {
  const key = subjectKey(o.subject);
  const previous = (states.get(key) as SubjectTrack | null | undefined) ?? { kind: 'subject', pos: 0, refreshes: [], failures: [] };
  if (o.position <= previous.pos) return;
  const track: SubjectTrack = { ...previous, pos: o.position };
  const burst = ctx.rules.refresh_burst;
  if (o.refresh && burst.enabled && burst.perSubject.enabled) {
    const w = windowRule('refresh_burst', 'subject', o.subject, { marks: track.refreshes, firedAt: track.burstFiredAt }, o, burst.perSubject);
    track.refreshes = w.marks;
    track.burstFiredAt = w.firedAt;
    findings.push(w.finding);
  }
  const storm = ctx.rules.failed_refresh_storm;
  if (o.kind === 'failure' && storm.enabled && storm.perSubject.enabled) {
    const w = failedRefreshStorm('subject', o.subject, track, o, storm.perSubject, o.weight);
    Object.assign(track, w.window);
    findings.push(w.finding);
  }
  states.set(key, track);
}

/** Per address: an aggregated RefreshRejected counts each of its named addresses by its own count. */
function stepIp(o: Observation, states: StateMap, ctx: RuleContext, findings: Array<Finding | undefined>): void {
  const storm = ctx.rules.failed_refresh_storm;
  if (!storm.enabled || !storm.perIp.enabled) return;
  for (const source of o.sources) {
    const key = ipKey(source.ip);
    const previous = (states.get(key) as IpTrack | null | undefined) ?? { kind: 'ip', failures: [] };
    const w = failedRefreshStorm('ip', source.ip, previous, { ...o, ip: source.ip }, storm.perIp, source.count);
    states.set(key, { kind: 'ip', ...w.window });
    findings.push(w.finding);
  }
}

function detectionOf(finding: Finding, o: Observation, rules: RulesConfig): Detection {
  const rule = rules[finding.rule];
  const { alertOnly, ...found } = finding;
  const withheld = alertOnly === true && rule.action !== 'alert';
  return {
    ...found,
    ...(withheld ? { evidence: { ...found.evidence, actionWithheld: rule.action } } : {}),
    anomalyId: anomalyIdOf(finding.rule, finding.scope, finding.scopeKey, o.eventId),
    severity: rule.severity,
    action: withheld ? 'alert' : rule.action,
    familyId: o.familyId,
    subject: o.subject,
    clientId: o.clientId,
    trigger: { eventId: o.eventId, position: o.position, occurredAt: new Date(o.at).toISOString(), correlationId: o.correlationId },
  };
}

/**
 * Runs batches of events through the rules with state from `store`: loads every key the batch
 * touches (one read), steps each event in order, and returns the detections together with a
 * `commit` that saves the new state. The caller records the detections first and commits after, so
 * a crash in between re-detects the same (idempotent) anomalies instead of losing them.
 */
export class AnomalyEngine {
  constructor(
    private readonly store: AnomalyStateStore,
    private readonly ctx: RuleContext,
  ) {}

  async evaluate(events: readonly PublicEvent[]): Promise<{ detections: Detection[]; commit: () => Promise<void> }> {
    const observations = events.map(observe).filter((o) => o.kind !== 'other');
    const keys = [...new Set(observations.flatMap(stateKeysOf))];
    const states = keys.length > 0 ? await this.store.load(keys) : new Map();
    const detections: Detection[] = [];
    for (const o of observations) detections.push(...step(o, states, this.ctx));
    return { detections, commit: () => (states.size > 0 ? this.store.save(states) : Promise.resolve()) };
  }
}
