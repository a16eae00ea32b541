/**
 * Read-model tables, in the same database as the events (PGlite or PostgreSQL), so a projection's
 * checkpoint commits in the same transaction as the rows it changed. Idempotent; run on start.
 */
export const READ_MODEL_SCHEMA = `
create table if not exists rm_checkpoints (
  projection text primary key,
  position   bigint not null,
  updated_at timestamptz not null default now()
);

create table if not exists rm_families (
  family_id           text primary key,
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
  position            bigint not null
);
create index if not exists rm_families_subject on rm_families (subject, status, created_at);
create index if not exists rm_families_expiry on rm_families (least(idle_expires_at, absolute_expires_at)) where status = 'active';

create table if not exists rm_audit (
  position    bigint primary key,
  event_id    uuid not null,
  type        text not null,
  family_id   text,
  subject     text,
  client_id   text,
  ip          text,
  occurred_at timestamptz not null,
  data        jsonb not null,
  metadata    jsonb not null
);
create index if not exists rm_audit_subject on rm_audit (subject, position);
create index if not exists rm_audit_client on rm_audit (client_id, position);
create index if not exists rm_audit_family on rm_audit (family_id, position);
create index if not exists rm_audit_type on rm_audit (type, position);
create index if not exists rm_audit_ip on rm_audit (ip, position);
create index if not exists rm_audit_time on rm_audit (occurred_at);

create table if not exists rm_anomalies (
  anomaly_id  text primary key,
  rule        text not null,
  severity    text not null,
  family_id   text,
  subject     text,
  detected_at timestamptz not null,
  evidence    jsonb not null,
  action      text not null,
  position    bigint not null
);
create index if not exists rm_anomalies_subject on rm_anomalies (subject, position);
create index if not exists rm_anomalies_rule on rm_anomalies (rule, position);
`;
