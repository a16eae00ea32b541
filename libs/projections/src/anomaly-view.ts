import type { RecordedEvent, SqlQueryable } from '@token-ledger/event-store';
import { header, type Projection } from './projection';

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
