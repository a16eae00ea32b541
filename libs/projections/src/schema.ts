/**
 * Read-model tables, in the same database as the events (PGlite or PostgreSQL), so a projection's
 * checkpoint commits in the same transaction as the rows it changed. Idempotent; run on start.
 *
 * Each table is described once (columns, primary key, secondary indexes). READ_MODEL_SCHEMA is
 * generated from these descriptions, and so are the build copies a set-based rebuild fills before
 * it builds their indexes and swaps them in (rebuild-in-sql.ts): the two can never drift apart.
 *
 * rm_audit's text columns are only ever compared for equality, so they use the bytewise "C"
 * collation: same answers, and their six indexes sort (build) up to twice as fast. A table created
 * before this kept the database's collation; the next rebuild replaces it.
 */
export interface ReadModelTable {
  readonly name: string;
  /** Column definitions, without the primary key. */
  readonly columns: string;
  readonly primaryKey: string;
  /** Secondary indexes: name → `(columns) [where …]`. */
  readonly indexes: Readonly<Record<string, string>>;
  /** Storage parameters (`with (…)`), also set on a table created before them. */
  readonly storage?: string;
  /** Statements that bring a table created by an older version up to `columns`, run before its indexes. */
  readonly upgrade?: readonly string[];
}

/**
 * The minute a family's expiry (the earlier of idle and absolute) falls in, for the expiry sweeper's
 * index. Not the expiry itself: every rotation moves idle_expires_at, and an index on it made every
 * rotation's update of rm_families a non-HOT one (a new entry in each of its four indexes, a dead
 * row that only VACUUM removes — PGlite never runs one). The minute changes at most once a minute.
 * A floor, so `sweep_at <= now()` finds every family whose expiry has passed.
 */
const SWEEP_AT = `timestamptz generated always as (date_bin('1 minute', least(idle_expires_at, absolute_expires_at), timestamptz '2000-01-01 00:00:00+00')) stored`;

export const READ_MODEL_TABLES: Readonly<Record<string, ReadModelTable>> = {
  rm_families: {
    name: 'rm_families',
    columns: `
  family_id           text not null,
  subject             text not null,
  client_id           text not null,
  scope               jsonb not null,
  status              text not null,
  generation          integer not null,
  created_at          timestamptz,
  last_used_at        timestamptz,
  idle_expires_at     timestamptz,
  absolute_expires_at timestamptz,
  revoked_at          timestamptz,
  revoked_reason      text,
  last_context        jsonb,
  dpop_jkt            text,
  position            bigint not null,
  sweep_at            ${SWEEP_AT}`,
    primaryKey: 'family_id',
    indexes: {
      rm_families_subject: '(subject, status, created_at)',
      rm_families_sweep: `(sweep_at) where status = 'active'`,
      rm_families_client_active: `(client_id, created_at) where status = 'active'`,
    },
    // Every rotation rewrites its family's row; room on the page lets those updates be HOT.
    storage: 'fillfactor = 50',
    upgrade: [
      `alter table rm_families add column if not exists sweep_at ${SWEEP_AT}`,
      'drop index if exists rm_families_expiry',
    ],
  },
  rm_audit: {
    name: 'rm_audit',
    columns: `
  position    bigint not null,
  event_id    uuid not null,
  type        text collate "C" not null,
  family_id   text collate "C",
  subject     text collate "C",
  client_id   text collate "C",
  ip          text collate "C",
  occurred_at timestamptz not null,
  data        jsonb not null,
  metadata    jsonb not null`,
    primaryKey: 'position',
    indexes: {
      rm_audit_subject: '(subject, position)',
      rm_audit_client: '(client_id, position)',
      rm_audit_family: '(family_id, position)',
      rm_audit_type: '(type, position)',
      rm_audit_ip: '(ip, position)',
      rm_audit_time: '(occurred_at)',
    },
  },
  rm_anomalies: {
    name: 'rm_anomalies',
    columns: `
  anomaly_id  text not null,
  rule        text not null,
  severity    text not null,
  family_id   text,
  subject     text,
  detected_at timestamptz not null,
  evidence    jsonb not null,
  action      text not null,
  position    bigint not null,
  status      text not null default 'open',
  status_by   text,
  status_at   timestamptz,
  status_note text`,
    primaryKey: 'anomaly_id',
    indexes: {
      rm_anomalies_subject: '(subject, position)',
      rm_anomalies_rule: '(rule, position)',
      rm_anomalies_status: '(status, position)',
    },
  },
};

/** `create table` for a read-model table, under another (qualified) name for a build copy. */
export function createTableSql(table: ReadModelTable, options: { as?: string; ifNotExists?: boolean; primaryKey?: boolean } = {}): string {
  const pk = options.primaryKey === false ? '' : `,\n  primary key (${table.primaryKey})`;
  const storage = table.storage ? ` with (${table.storage})` : '';
  return `create table ${options.ifNotExists ? 'if not exists ' : ''}${options.as ?? table.name} (${table.columns}${pk}\n)${storage}`;
}

/**
 * `create index` statements of a table. For a build copy in another schema (`on`), the indexes
 * keep their names: an index lives in its table's schema, so they move with it on the swap.
 */
export function createIndexSql(table: ReadModelTable, options: { on?: string; ifNotExists?: boolean } = {}): string[] {
  return Object.entries(table.indexes).map(
    ([name, definition]) => `create index ${options.ifNotExists ? 'if not exists ' : ''}${name} on ${options.on ?? table.name} ${definition}`,
  );
}

export const READ_MODEL_SCHEMA = `
create table if not exists rm_checkpoints (
  projection text primary key,
  position   bigint not null,
  updated_at timestamptz not null default now()
);
${Object.values(READ_MODEL_TABLES)
  .map((t) =>
    [
      createTableSql(t, { ifNotExists: true }),
      ...(t.storage ? [`alter table ${t.name} set (${t.storage})`] : []),
      ...(t.upgrade ?? []),
      ...createIndexSql(t, { ifNotExists: true }),
    ]
      .map((s) => `${s};`)
      .join('\n'),
  )
  .join('\n\n')}

-- Added with anomaly triage: tables created before it get the columns (every row then is open).
alter table rm_anomalies add column if not exists status text not null default 'open';
alter table rm_anomalies add column if not exists status_by text;
alter table rm_anomalies add column if not exists status_at timestamptz;
alter table rm_anomalies add column if not exists status_note text;
create index if not exists rm_anomalies_status on rm_anomalies (status, position);

-- Added with DPoP (RFC 9449): families of tables created before it are unbound until a rebuild says otherwise.
alter table rm_families add column if not exists dpop_jkt text;
`;
