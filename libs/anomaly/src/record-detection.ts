import { createHash } from 'node:crypto';
import { anomalyStreamId, sealEvents, toNewEvent } from '@token-ledger/envelope';
import { DuplicateEventIdError, WrongExpectedRevisionError, type EventStore, type NewEvent } from '@token-ledger/event-store';
import type { Detection } from './detection';

export const ANOMALY_ACTOR = 'anomaly-engine';

/** The AnomalyDetected event of a detection (SPEC §2, §5); its eventId follows from the anomalyId. */
export function anomalyDetectedEvent(d: Detection, detectedAt: Date): NewEvent {
  return toNewEvent(
    {
      type: 'AnomalyDetected',
      familyId: d.familyId,
      subject: d.subject,
      clientId: d.clientId,
      occurredAt: detectedAt.toISOString(),
      data: {
        anomalyId: d.anomalyId,
        rule: d.rule,
        severity: d.severity,
        action: d.action,
        scope: d.scope,
        scopeKey: d.scopeKey,
        evidence: d.evidence,
        trigger: d.trigger,
      },
    },
    { correlationId: d.trigger.correlationId || undefined, causationId: d.trigger.eventId, actor: ANOMALY_ACTOR },
    uuidFrom(d.anomalyId),
  );
}

/** Whether the anomaly has been recorded (its stream exists). */
export async function isRecorded(store: EventStore, anomalyId: string): Promise<boolean> {
  const events = await store.readStream(anomalyStreamId(anomalyId), { maxCount: 1 });
  return events.length > 0;
}

/**
 * Appends AnomalyDetected to the anomaly's own stream (`anomaly-<anomalyId>`) with expected revision
 * "no stream": the store itself guarantees the same evidence is recorded once, across restarts,
 * redeliveries and nodes. Resolves false when it was already recorded.
 */
export async function recordDetection(store: EventStore, d: Detection, detectedAt: Date, macKey?: Uint8Array): Promise<boolean> {
  const streamId = anomalyStreamId(d.anomalyId);
  const { events } = sealEvents(streamId, 0, null, [anomalyDetectedEvent(d, detectedAt)], { macKey });
  try {
    await store.append(streamId, events, { expectedRevision: 'no_stream' });
    return true;
  } catch (error) {
    if (error instanceof WrongExpectedRevisionError || error instanceof DuplicateEventIdError) return false;
    throw error;
  }
}

/** A UUID (version nibble 8: custom, RFC 9562 §5.8) derived from the anomaly id. */
function uuidFrom(anomalyId: string): string {
  const h = createHash('sha256').update(anomalyId).digest();
  h[6] = (h[6] & 0x0f) | 0x80;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}
