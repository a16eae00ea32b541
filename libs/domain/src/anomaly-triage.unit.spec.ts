import { ANOMALY_NOTE_MAX, canMoveAnomaly, decideAnomalyTriage, evolveAnomaly, initialAnomalyState, type AnomalyState, type AnomalyStatus, type AnomalyTriageCommand } from './anomaly-triage';
import { DomainError } from './errors';
import type { AnomalyDetected, AnomalyEvent } from './events';
import { deciderSpec } from './testing/decider-spec';

const T0 = Date.UTC(2025, 0, 1);
const ID = 'anm_reuse_1';

const triage = deciderSpec({
  initialState: () => initialAnomalyState(ID),
  evolve: evolveAnomaly,
  decide: (command: AnomalyTriageCommand, state: AnomalyState) => ({ events: decideAnomalyTriage(command, state) }),
});

const detected: AnomalyDetected = {
  type: 'AnomalyDetected',
  familyId: 'fam_x',
  subject: 'alice',
  clientId: 'web',
  occurredAt: new Date(T0).toISOString(),
  data: {
    anomalyId: ID,
    rule: 'impossible_travel',
    severity: 'high',
    action: 'alert',
    scope: 'subject',
    scopeKey: 'alice',
    evidence: {},
    trigger: { eventId: 'e', position: 1, occurredAt: new Date(T0).toISOString() },
  },
};

const ack = (now: number, note?: string): AnomalyTriageCommand => ({ type: 'AcknowledgeAnomaly', anomalyId: ID, actor: 'api-key:key_a', note, now });
const dismiss = (now: number, note?: string): AnomalyTriageCommand => ({ type: 'DismissAnomaly', anomalyId: ID, actor: 'admin-token', note, now });
const header = (at: number) => ({ familyId: 'fam_x', subject: 'alice', clientId: 'web', occurredAt: new Date(at).toISOString() });

describe('anomaly triage decider', () => {
  it('acknowledges an open anomaly once, with the actor and note, under the detection header', () => {
    triage
      .given([detected])
      .when(ack(T0 + 1, 'looking into it'))
      .thenEvents([{ type: 'AnomalyAcknowledged', ...header(T0 + 1), data: { anomalyId: ID, by: 'api-key:key_a', note: 'looking into it' } }])
      .thenStateMatches({ status: 'acknowledged', statusBy: 'api-key:key_a', statusAt: T0 + 1, statusNote: 'looking into it' });
  });

  it('dismisses an open or acknowledged anomaly; dismissed is final', () => {
    triage
      .given([detected])
      .when(dismiss(T0 + 2))
      .thenEvents([{ type: 'AnomalyDismissed', ...header(T0 + 2), data: { anomalyId: ID, by: 'admin-token', note: null } }])
      .thenStateMatches({ status: 'dismissed', statusBy: 'admin-token', statusNote: null });
    triage.given([detected]).after(ack(T0 + 1)).when(dismiss(T0 + 2, 'false positive')).thenStateMatches({ status: 'dismissed', statusNote: 'false positive' });
    for (const next of [ack(T0 + 3), dismiss(T0 + 3)]) {
      expect(() => triage.given([detected]).after(dismiss(T0 + 2)).when(next).outcome()).toThrow(expect.objectContaining({ code: 'anomaly_triage_conflict' }));
    }
    expect(() => triage.given([detected]).after(ack(T0 + 1)).when(ack(T0 + 2)).outcome()).toThrow(expect.objectContaining({ code: 'anomaly_triage_conflict' }));
  });

  it('an anomaly never detected is not found; bad input is refused', () => {
    expect(() => triage.given().when(ack(T0)).outcome()).toThrow(expect.objectContaining({ code: 'anomaly_not_found' }));
    expect(() => triage.given([detected]).when(ack(T0, 'x'.repeat(ANOMALY_NOTE_MAX + 1))).outcome()).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
    expect(() => triage.given([detected]).when({ ...ack(T0), actor: '' }).outcome()).toThrow(DomainError);
    triage.given([detected]).when(ack(T0, 'x'.repeat(ANOMALY_NOTE_MAX))).thenStateMatches({ status: 'acknowledged' });
  });

  it('any sequence of commands gives at most one acknowledgement and one dismissal, in that order', () => {
    const statuses: AnomalyStatus[] = ['open', 'acknowledged', 'dismissed'];
    expect(statuses.flatMap((f) => statuses.filter((t) => canMoveAnomaly(f, t)).map((t) => `${f}→${t}`))).toEqual(['open→acknowledged', 'open→dismissed', 'acknowledged→dismissed']);
    for (let seed = 0; seed < 64; seed++) {
      let state = evolveAnomaly(initialAnomalyState(ID), detected);
      const log: AnomalyEvent[] = [];
      for (let i = 0; i < 6; i++) {
        const command = ((seed >> i) & 1) === 0 ? ack(T0 + i) : dismiss(T0 + i);
        try {
          const events = decideAnomalyTriage(command, state);
          log.push(...events);
          state = events.reduce(evolveAnomaly, state);
        } catch (error) {
          expect(error).toMatchObject({ code: 'anomaly_triage_conflict' });
        }
      }
      const types = log.map((e) => e.type).join(',');
      expect(['AnomalyDismissed', 'AnomalyAcknowledged,AnomalyDismissed', 'AnomalyAcknowledged']).toContain(types);
    }
  });
});
