import type { RecordedEvent, SqlQueryable } from '@token-ledger/event-store';

/**
 * A read model fed from the store's global order. `apply` gets a batch of events in position order
 * inside the transaction that also moves the projection's checkpoint, so a crash replays a batch but
 * never skips or doubles one.
 */
export interface Projection {
  readonly name: string;
  /** Tables to empty on rebuild (keys of READ_MODEL_TABLES). */
  readonly tables: readonly string[];
  apply(tx: SqlQueryable, events: readonly RecordedEvent[]): Promise<void>;
  /**
   * Optional: the same rows as `apply`, written in SQL from the events' own rows of tl_events, where
   * the events live in the read models' database (capabilities.eventsInSql); the runner then calls
   * this instead of `apply`. For read models that copy the events rather than fold them.
   */
  applyFromEventsTable?(tx: SqlQueryable, events: readonly RecordedEvent[]): Promise<void>;
}

/**
 * A projection's set-based rebuild, for stores whose events live in the same SQL database as the
 * read models (tl_events: the embedded and PostgreSQL stores). `fill` writes into empty build copies
 * of the projection's tables (`tables` maps each table name to its copy's qualified name) exactly
 * the rows `apply` would have written for the events of tl_events that match `events` (an SQL
 * condition on tl_events, with its parameters), read straight from tl_events: no event travels
 * through JavaScript. See rebuild-in-sql.ts.
 */
export interface SqlRebuild {
  /**
   * 'rows': one row per event, independent of the others: filled chunk by chunk (slices of the
   * events table, in any order, possibly at once). 'fold': the rows depend on whole histories:
   * filled once, with every event up to the head.
   */
  readonly granularity: 'rows' | 'fold';
  /** The fill relies on the primary key (on conflict): the copy keeps it; else it is built after. */
  readonly keepsPrimaryKey?: boolean;
  /** Relative cost per event of the fill (progress: audit's copy = 1). */
  readonly costPerEvent: number;
  fill(q: SqlQueryable, tables: Readonly<Record<string, string>>, events: { where: string; params: unknown[] }): Promise<void>;
}

/** The ledger's header fields, which the envelope keeps in metadata (libs/envelope/src/new-event.ts). */
export function header(event: RecordedEvent): { familyId: string; subject: string; clientId: string; occurredAt: string } {
  const m = event.metadata as Record<string, string>;
  return { familyId: m.familyId ?? '', subject: m.subject ?? '', clientId: m.clientId ?? '', occurredAt: m.occurredAt };
}
