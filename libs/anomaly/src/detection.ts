import { createHash } from 'node:crypto';
import { SEVERITIES, type AnomalyAction, type RuleName, type Severity } from './rules-config';

/** What a rule reports: which rule, about what (a family, a subject or an IP), and why. */
export interface Finding {
  rule: RuleName;
  scope: 'family' | 'subject' | 'ip';
  /** The family id, subject or IP address the finding is about. */
  scopeKey: string;
  evidence: Record<string, unknown>;
  /** Report it, never act on it (a storm made by forged tokens: they must not revoke anyone). */
  alertOnly?: boolean;
}

/** A finding with the rule's configured severity and action, tied to the event that triggered it. */
export interface Detection extends Finding {
  anomalyId: string;
  severity: Severity;
  action: AnomalyAction;
  familyId: string;
  subject: string;
  clientId: string;
  trigger: { eventId: string; position: number; occurredAt: string; correlationId?: string };
}

/**
 * Deterministic: the same rule, about the same thing, triggered by the same event, is the same
 * anomaly — so re-processing (a restart, a Kafka redelivery) can never record it twice.
 */
export function anomalyIdOf(rule: string, scope: string, scopeKey: string, triggerEventId: string): string {
  const digest = createHash('sha256').update(`${rule}\u0000${scope}\u0000${scopeKey}\u0000${triggerEventId}`).digest('hex');
  return `anm_${digest.slice(0, 32)}`;
}

/**
 * The order in which a batch's detections are recorded: the most severe on their own first, then the
 * rest together (each group in its original order). Behind a wave of medium refresh_burst alerts —
 * every family of a busy client crosses its limit within the same second — a reuse alert would
 * otherwise wait for the wave's group commit.
 */
export function mostSevereFirst(detections: readonly Detection[]): Detection[][] {
  if (detections.length === 0) return [];
  const rank = (d: Detection) => SEVERITIES.indexOf(d.severity);
  const top = Math.max(...detections.map(rank));
  const first = detections.filter((d) => rank(d) === top);
  const rest = detections.filter((d) => rank(d) !== top);
  return rest.length > 0 ? [first, rest] : [first];
}
