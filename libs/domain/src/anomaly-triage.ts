import { DomainError } from './errors';
import type { AnomalyAcknowledged, AnomalyDismissed, AnomalyEvent } from './events';
import { fromIso, toIso } from './time';

/**
 * Triage of a detected anomaly (stream `anomaly-<anomalyId>`): an analyst acknowledges it (seen,
 * being handled) or dismisses it (closed). open → acknowledged → dismissed, or open → dismissed;
 * dismissed is final, and each accepted transition is exactly one event.
 */
export type AnomalyStatus = 'open' | 'acknowledged' | 'dismissed';

export const ANOMALY_NOTE_MAX = 500;

/** Anomaly ids as the engine derives them (libs/anomaly detection.ts): `anm_` + 32 hex digits. */
export const ANOMALY_ID_PATTERN = /^anm_[0-9a-f]{32}$/;

export function isAnomalyId(s: unknown): s is string {
  return typeof s === 'string' && ANOMALY_ID_PATTERN.test(s);
}

export interface AnomalyState {
  v: 1;
  anomalyId: string;
  /** 'none' until AnomalyDetected. */
  status: 'none' | AnomalyStatus;
  familyId: string;
  subject: string;
  clientId: string;
  /** Who moved it to its status, when (epoch ms) and why; null while open. */
  statusBy: string | null;
  statusAt: number | null;
  statusNote: string | null;
}

export type AnomalyTriageCommand = {
  type: 'AcknowledgeAnomaly' | 'DismissAnomaly';
  anomalyId: string;
  /** The acting principal (`api-key:<keyId>` or `admin-token`). */
  actor: string;
  note?: string | null;
  now: number;
};

export function initialAnomalyState(anomalyId: string): AnomalyState {
  return { v: 1, anomalyId, status: 'none', familyId: '', subject: '', clientId: '', statusBy: null, statusAt: null, statusNote: null };
}

/** Transitions the triage allows: from each status, the statuses it may move to. */
const ALLOWED: Record<AnomalyStatus, readonly AnomalyStatus[]> = {
  open: ['acknowledged', 'dismissed'],
  acknowledged: ['dismissed'],
  dismissed: [],
};

export function canMoveAnomaly(from: AnomalyStatus, to: AnomalyStatus): boolean {
  return ALLOWED[from].includes(to);
}

/**
 * 'anomaly_not_found' when nothing was detected under the id; 'anomaly_triage_conflict' for a
 * transition the rules do not allow (acknowledging twice, anything after a dismissal).
 */
export function decideAnomalyTriage(command: AnomalyTriageCommand, state: AnomalyState): AnomalyEvent[] {
  if (!Number.isSafeInteger(command.now) || command.now < 0) throw new DomainError('invalid_argument', 'now must be epoch milliseconds');
  if (typeof command.actor !== 'string' || command.actor === '') throw new DomainError('invalid_argument', 'an actor is required');
  const note = command.note ?? null;
  if (note !== null && (typeof note !== 'string' || note.length > ANOMALY_NOTE_MAX)) {
    throw new DomainError('invalid_argument', `note must be a string of at most ${ANOMALY_NOTE_MAX} characters`);
  }
  if (state.status === 'none') throw new DomainError('anomaly_not_found', `no anomaly ${command.anomalyId}`);
  const to: AnomalyStatus = command.type === 'AcknowledgeAnomaly' ? 'acknowledged' : 'dismissed';
  if (!canMoveAnomaly(state.status, to)) {
    throw new DomainError('anomaly_triage_conflict', `anomaly ${command.anomalyId} is ${state.status}: it cannot be ${to}`);
  }
  const header = { familyId: state.familyId, subject: state.subject, clientId: state.clientId, occurredAt: toIso(command.now) };
  const data = { anomalyId: state.anomalyId, by: command.actor, note };
  const event: AnomalyAcknowledged | AnomalyDismissed =
    to === 'acknowledged' ? { type: 'AnomalyAcknowledged', ...header, data } : { type: 'AnomalyDismissed', ...header, data };
  return [event];
}

export function evolveAnomaly(state: AnomalyState, event: AnomalyEvent): AnomalyState {
  switch (event.type) {
    case 'AnomalyDetected':
      // Recorded once per stream; a second one (impossible: appended with "no stream") changes nothing.
      if (state.status !== 'none') return state;
      return { ...state, anomalyId: event.data.anomalyId, status: 'open', familyId: event.familyId, subject: event.subject, clientId: event.clientId };
    case 'AnomalyAcknowledged':
    case 'AnomalyDismissed':
      return {
        ...state,
        status: event.type === 'AnomalyAcknowledged' ? 'acknowledged' : 'dismissed',
        statusBy: event.data.by,
        statusAt: fromIso(event.occurredAt),
        statusNote: event.data.note ?? null,
      };
    default:
      return state;
  }
}
