import type { RecordedEvent, SqlQueryable } from '@token-ledger/event-store';
import { header, type Projection, type SqlRebuild } from './projection';

/** AnomalyDetected events (appended by the anomaly engine; SPEC §5). */
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
    if (rows.length === 0) return;
    await tx.query(
      `insert into rm_anomalies (anomaly_id, rule, severity, family_id, subject, detected_at, evidence, action, position)
       select r."anomalyId", r.rule, r.severity, r."familyId", r.subject, r."detectedAt", r.evidence, r.action, r.position
         from jsonb_to_recordset($1::jsonb) as r("anomalyId" text, rule text, severity text, "familyId" text, subject text,
              "detectedAt" timestamptz, evidence jsonb, action text, position bigint)
       on conflict (anomaly_id) do nothing`,
      [JSON.stringify(rows)],
    );
  },
};

/**
 * The same rows as `apply`, built in SQL from tl_events (rebuild): a fold, since the first event of
 * an anomalyId wins; the build copy keeps its primary key and rows go in position order, as live. A JSON null
 * counts as absent, as `??` does.
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
  },
};
