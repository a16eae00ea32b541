/**
 * A family's events as a chain of generations (pure, so it is unit-tested): which generation each
 * event touched and what became of every generation — superseded by a rotation, replayed in the
 * grace window, reused after rotation, the head when the family was revoked or expired.
 */
import type { LedgerEvent } from './api';

export type EventKind = 'issued' | 'rotated' | 'replayed' | 'rejected' | 'reuse' | 'revoked' | 'expired' | 'access-revoked' | 'other';

export function kindOf(type: string): EventKind {
  switch (type) {
    case 'TokenFamilyIssued':
      return 'issued';
    case 'TokenRotated':
      return 'rotated';
    case 'TokenRotationReplayed':
      return 'replayed';
    case 'RefreshRejected':
      return 'rejected';
    case 'TokenReuseDetected':
      return 'reuse';
    case 'TokenFamilyRevoked':
      return 'revoked';
    case 'TokenFamilyExpired':
      return 'expired';
    case 'AccessTokenRevoked':
      return 'access-revoked';
    default:
      return 'other';
  }
}

/** One line of what happened, in words. */
export function describe(event: LedgerEvent): string {
  const d = event.data ?? {};
  switch (event.type) {
    case 'TokenFamilyIssued':
      return `Issued generation ${d.generation ?? 1}${Array.isArray(d.scope) ? ` (scope ${d.scope.join(' ')})` : ''}`;
    case 'TokenRotated':
      return `Rotated: generation ${d.fromGeneration} → ${d.generation}`;
    case 'TokenRotationReplayed':
      return `Grace replay: generation ${d.presentedGeneration} presented again, generation ${d.generation} handed out again`;
    case 'RefreshRejected': {
      const times = typeof d.count === 'number' && d.count > 1 ? ` ×${d.count}` : '';
      return `Rejected (${d.reason})${times}: generation ${d.presentedGeneration} presented`;
    }
    case 'TokenReuseDetected':
      return `Reuse detected: generation ${d.presentedGeneration} presented after rotation to ${d.headGeneration}`;
    case 'TokenFamilyRevoked':
      return `Family revoked (${d.reason})`;
    case 'TokenFamilyExpired':
      return `Expired (${d.reason})`;
    case 'AccessTokenRevoked':
      return `Access token revoked (${d.jti})`;
    case 'AnomalyDetected':
      return `Anomaly: ${String(d.rule ?? '').replace(/_/g, ' ')} (${d.severity}, ${d.action})`;
    case 'AnomalyAcknowledged':
    case 'AnomalyDismissed':
      return `Anomaly ${event.type === 'AnomalyAcknowledged' ? 'acknowledged' : 'dismissed'} by ${d.by}${d.note ? `: “${d.note}”` : ''}`;
    case 'SubjectRevoked':
      return `Subject revoked (${d.reason}), ${Array.isArray(d.familyIds) ? d.familyIds.length : 0} families`;
    default:
      return event.type;
  }
}

export interface Generation {
  generation: number;
  /** When it was handed out. */
  issuedAt: string;
  fate: 'head' | 'rotated' | 'revoked' | 'expired';
  /** Marks on this generation: replays, rejections, reuse of it. */
  marks: { kind: EventKind; count: number }[];
}

export function generations(events: LedgerEvent[]): Generation[] {
  const gens = new Map<number, Generation>();
  const get = (g: number, at: string): Generation => {
    let gen = gens.get(g);
    if (!gen) {
      gen = { generation: g, issuedAt: at, fate: 'head', marks: [] };
      gens.set(g, gen);
    }
    return gen;
  };
  const mark = (g: number | undefined, kind: EventKind, at: string, count = 1) => {
    if (typeof g !== 'number') return;
    const gen = get(g, at);
    const existing = gen.marks.find((m) => m.kind === kind);
    if (existing) existing.count += count;
    else gen.marks.push({ kind, count });
  };
  let head: number | undefined;
  for (const e of events) {
    const d = e.data ?? {};
    switch (e.type) {
      case 'TokenFamilyIssued':
        head = d.generation ?? 1;
        get(head!, e.occurredAt);
        break;
      case 'TokenRotated':
        get(d.fromGeneration, e.occurredAt).fate = 'rotated';
        head = d.generation;
        get(d.generation, e.occurredAt);
        break;
      case 'TokenRotationReplayed':
        mark(d.presentedGeneration, 'replayed', e.occurredAt);
        break;
      case 'RefreshRejected':
        mark(d.presentedGeneration, 'rejected', e.occurredAt, typeof d.count === 'number' ? d.count : 1);
        break;
      case 'TokenReuseDetected':
        mark(d.presentedGeneration, 'reuse', e.occurredAt);
        break;
      case 'TokenFamilyRevoked':
        if (head !== undefined) get(head, e.occurredAt).fate = 'revoked';
        break;
      case 'TokenFamilyExpired':
        if (head !== undefined && gens.get(head)?.fate === 'head') gens.get(head)!.fate = 'expired';
        break;
    }
  }
  return [...gens.values()].sort((a, b) => a.generation - b.generation);
}

/**
 * The instants the slider stops at: each distinct occurredAt, in order (events decided together —
 * a reuse and the revocation it causes — share one instant, so they appear together).
 */
export function sliderStops(events: LedgerEvent[]): string[] {
  const seen = new Set<string>();
  const stops: string[] = [];
  for (const e of [...events].sort((a, b) => Date.parse(a.occurredAt) - Date.parse(b.occurredAt))) {
    const iso = new Date(e.occurredAt).toISOString();
    if (!seen.has(iso)) {
      seen.add(iso);
      stops.push(iso);
    }
  }
  return stops;
}

/** The stop at or before `at` (index), or -1 when `at` is before the first event. */
export function stopIndex(stops: string[], at: string | undefined): number {
  if (!at) return stops.length; // "now"
  const t = Date.parse(at);
  let i = -1;
  for (let k = 0; k < stops.length; k++) if (Date.parse(stops[k]) <= t) i = k;
  return i;
}
