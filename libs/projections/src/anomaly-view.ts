import type { RecordedEvent, SqlQueryable } from '@token-ledger/event-store';
import { header, type Projection, type SqlRebuild } from './projection';

const TRIAGE_STATUS: Record<string, 'acknowledged' | 'dismissed'> = { AnomalyAcknowledged: 'acknowledged', AnomalyDismissed: 'dismissed' };

/**
 * AnomalyDetected events (appended by the anomaly engine; SPEC §5), and their triage
 * (AnomalyAcknowledged, AnomalyDismissed: status, by whom, when, why). A dismissal is final here as
 * in the decider, so replaying an older acknowledgement never reopens it.
 */
export const anomalyProjection: Projection = {
  name: 'anomalies',
  tables: ['rm_anomalies'],
  async apply(tx: SqlQueryable, events: readonly RecordedEvent[]): Promise<void> {
    const rows = events
      .filter((e) => e.type === 'AnomalyDetected')
      .map((e) => {
        const d = e.data as Record<string, unknown>;
        const h = header(e);
        return {
          anomalyId: (d.anomalyId as string) ?? e.eventId,
          rule: d.rule,
          severity: d.severity,
          familyId: h.familyId || null,
          subject: h.subject || null,
          detectedAt: h.occurredAt,
          evidence: d.evidence ?? {},
          action: d.action,
          position: e.position,
        };
      });
    if (rows.length > 0) await insertDetections(tx, rows);
    const triage = events
      .filter((e) => TRIAGE_STATUS[e.type])
      .map((e) => {
        const d = e.data as Record<string, unknown>;
        return { anomalyId: d.anomalyId, status: TRIAGE_STATUS[e.type], by: d.by ?? null, at: header(e).occurredAt, note: d.note ?? null, position: e.position };
      });
    if (triage.length === 0) return;
    await tx.query(
      `update rm_anomalies a set status = t.status, status_by = t."by", status_at = t.at, status_note = t.note
         from (${triagePick(`jsonb_to_recordset($1::jsonb) as r("anomalyId" text, status text, "by" text, at timestamptz, note text, position bigint)`, 'rm_anomalies')}) t
        where a.anomaly_id = t.anomaly_id and a.status <> 'dismissed'`,
      [JSON.stringify(triage)],
    );
  },
};

/**
 * Which triage event of each anomaly sets its status, live (one batch of events) and in a rebuild
 * (all of them) alike: only events after the detection count; the first dismissal wins, since it
 * is final; without one, the last acknowledgement. (Live, a row already dismissed is left alone.)
 */
function triagePick(events: string, anomalies: string): string {
  return `select distinct on (r."anomalyId") r."anomalyId" as anomaly_id, r.status, r."by", r.at, r.note
   from ${events}
   join ${anomalies} x on x.anomaly_id = r."anomalyId" and r.position > x.position
  order by r."anomalyId", (r.status = 'dismissed') desc, case when r.status = 'dismissed' then r.position else -r.position end`;
}

async function insertDetections(tx: SqlQueryable, rows: readonly Record<string, unknown>[]): Promise<void> {
  await tx.query(
    `insert into rm_anomalies (anomaly_id, rule, severity, family_id, subject, detected_at, evidence, action, position)
     select r."anomalyId", r.rule, r.severity, r."familyId", r.subject, r."detectedAt", r.evidence, r.action, r.position
       from jsonb_to_recordset($1::jsonb) as r("anomalyId" text, rule text, severity text, "familyId" text, subject text,
            "detectedAt" timestamptz, evidence jsonb, action text, position bigint)
     on conflict (anomaly_id) do nothing`,
    [JSON.stringify(rows)],
  );
}

/**
 * The same rows as `apply`, built in SQL from tl_events (rebuild): a fold, since the first event of
 * an anomalyId wins; the build copy keeps its primary key and rows go in position order, as live. A JSON null
 * counts as absent, as `??` does. Then each anomaly's triage (triagePick).
 */
export const anomalySqlRebuild: SqlRebuild = {
  granularity: 'fold',
  keepsPrimaryKey: true,
  costPerEvent: 0.05,
  async fill(q, tables, events) {
    await q.query(
      `insert into ${tables.rm_anomalies} (anomaly_id, rule, severity, family_id, subject, detected_at, evidence, action, position)
       select coalesce(data ->> 'anomalyId', event_id::text), data ->> 'rule', data ->> 'severity',
              nullif(metadata ->> 'familyId', ''), nullif(metadata ->> 'subject', ''), (metadata ->> 'occurredAt')::timestamptz,
              coalesce(nullif(data -> 'evidence', 'null'::jsonb), '{}'::jsonb), data ->> 'action', position
         from tl_events
        where type = 'AnomalyDetected' and ${events.where}
        order by position
       on conflict (anomaly_id) do nothing`,
      events.params,
    );
    const triage = `(select data ->> 'anomalyId' as "anomalyId", case type when 'AnomalyDismissed' then 'dismissed' else 'acknowledged' end as status,
                            data ->> 'by' as "by", (metadata ->> 'occurredAt')::timestamptz as at, data ->> 'note' as note, position
                       from tl_events where type in ('AnomalyAcknowledged', 'AnomalyDismissed') and ${events.where}) r`;
    await q.query(
      `update ${tables.rm_anomalies} a set status = t.status, status_by = t."by", status_at = t.at, status_note = t.note
         from (${triagePick(triage, tables.rm_anomalies)}) t
        where a.anomaly_id = t.anomaly_id`,
      events.params,
    );
  },
};
