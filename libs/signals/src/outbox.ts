import type { SqlClient, SqlQueryable } from '@token-ledger/event-store';
import type { SetClaims } from './set-claims';
import { rowToStream, type RoutedStream } from './outbox-consumer';

/** One pending SET of a stream. */
export interface OutboxEntry {
  seq: number;
  streamId: string;
  jti: string;
  eventType: string;
  claims: SetClaims;
  createdAt: Date;
  attempts: number;
  nextAttemptAt: Date;
}

function toEntry(r: Record<string, unknown>): OutboxEntry {
  return {
    seq: Number(r.seq),
    streamId: r.stream_id as string,
    jti: r.jti as string,
    eventType: r.event_type as string,
    claims: r.claims as SetClaims,
    createdAt: new Date(r.created_at as string | Date),
    attempts: Number(r.attempts),
    nextAttemptAt: new Date(r.next_attempt_at as string | Date),
  };
}

export async function loadRoutedStream(sql: SqlQueryable, streamId: string): Promise<RoutedStream | undefined> {
  const [row] = await sql.query<Record<string, unknown>>('select * from ssf_streams where stream_id = $1', [streamId]);
  return row ? rowToStream(row) : undefined;
}

export async function markDelivered(sql: SqlQueryable, seq: number): Promise<void> {
  await sql.query('delete from ssf_outbox where seq = $1', [seq]);
}

/** The head of a push stream's queue with the stream's delivery settings as they are now (one round trip). */
export interface PushHead {
  stream: RoutedStream;
  entry?: OutboxEntry;
}

const PUSH_HEAD = `select s.*, o.seq, o.jti, o.event_type, o.claims, o.created_at, o.attempts, o.next_attempt_at
   from ssf_streams s
   left join lateral (select * from ssf_outbox o where o.stream_id = s.stream_id and o.failed_at is null and o.seq > $2 order by o.seq limit 1) o on true
  where s.stream_id = $1`;

function toPushHead(row: Record<string, unknown> | undefined): PushHead | undefined {
  if (!row) return undefined;
  return { stream: rowToStream(row), entry: row.seq === null || row.seq === undefined ? undefined : toEntry(row) };
}

/** The stream and its head; undefined when the stream is gone. */
export async function pushHead(sql: SqlQueryable, streamId: string): Promise<PushHead | undefined> {
  return toPushHead((await sql.query<Record<string, unknown>>(PUSH_HEAD, [streamId, 0]))[0]);
}

/**
 * Takes (or renews) the stream's push lease and reads the stream and its head, in one statement.
 * `previousOwner`: who held the lease as this statement's snapshot saw it — when it was another
 * instance, the head is read again under the lease (that one may have just delivered it).
 */
export async function leaseAndHead(
  sql: SqlQueryable,
  streamId: string,
  owner: string,
  ms: number,
): Promise<{ leased: boolean; previousOwner: string | null; head?: PushHead }> {
  const rows = await sql.query<Record<string, unknown>>(
    `with prev as (select owner from ssf_leases where stream_id = $1),
     lease as (
       insert into ssf_leases (stream_id, owner, expires_at) values ($1, $3, now() + ($4::bigint * interval '1 millisecond'))
       on conflict (stream_id) do update set owner = excluded.owner, expires_at = excluded.expires_at
        where ssf_leases.owner = excluded.owner or ssf_leases.expires_at < now()
       returning owner)
     select (select count(*) from lease)::int as leased, (select owner from prev) as previous_owner, h.*
       from (select 1) one left join (${PUSH_HEAD}) h on true`,
    [streamId, 0, owner, ms],
  );
  const row = rows[0];
  return {
    leased: Number(row.leased) === 1,
    previousOwner: (row.previous_owner as string | null) ?? null,
    head: row.stream_id === null || row.stream_id === undefined ? undefined : toPushHead(row),
  };
}

/** Deletes the delivered row and reads the next head, in one statement (the next head is after it). */
export async function deliveredThenHead(sql: SqlQueryable, streamId: string, seq: number): Promise<PushHead | undefined> {
  const rows = await sql.query<Record<string, unknown>>(`with delivered as (delete from ssf_outbox where seq = $2) ${PUSH_HEAD}`, [streamId, seq]);
  return toPushHead(rows[0]);
}

/** The receiver refused the SET (RFC 8935 §2.3): kept, marked, never sent again; the stream moves on. */
export async function markRefused(sql: SqlQueryable, seq: number, error: string): Promise<void> {
  await sql.query('update ssf_outbox set failed_at = now(), attempts = attempts + 1, last_error = $2 where seq = $1', [seq, error.slice(0, 500)]);
}

export async function scheduleRetry(sql: SqlQueryable, seq: number, delayMs: number, error: string): Promise<void> {
  await sql.query(
    `update ssf_outbox set attempts = attempts + 1, last_error = $3, next_attempt_at = now() + ($2::bigint * interval '1 millisecond') where seq = $1`,
    [seq, Math.round(delayMs), error.slice(0, 500)],
  );
}

/**
 * Takes (or renews) the push lease of a stream for `ms`, unless another live instance holds it.
 * The database's clock decides expiry, so instances need not agree on time.
 */
export async function takeLease(sql: SqlQueryable, streamId: string, owner: string, ms: number): Promise<boolean> {
  const rows = await sql.query(
    `insert into ssf_leases (stream_id, owner, expires_at) values ($1, $2, now() + ($3::bigint * interval '1 millisecond'))
     on conflict (stream_id) do update set owner = excluded.owner, expires_at = excluded.expires_at
      where ssf_leases.owner = excluded.owner or ssf_leases.expires_at < now()
     returning owner`,
    [streamId, owner, ms],
  );
  return rows.length === 1;
}

export async function releaseLease(sql: SqlQueryable, streamId: string, owner: string): Promise<void> {
  await sql.query('delete from ssf_leases where stream_id = $1 and owner = $2', [streamId, owner]);
}

/** Enabled push streams with a SET due now. */
export async function dueStreams(sql: SqlQueryable, pushMethod: string): Promise<string[]> {
  const rows = await sql.query<{ stream_id: string }>(
    `select distinct o.stream_id from ssf_outbox o join ssf_streams s on s.stream_id = o.stream_id
      where s.status = 'enabled' and s.method = $1 and o.failed_at is null and o.next_attempt_at <= now()`,
    [pushMethod],
  );
  return rows.map((r) => r.stream_id);
}

/** Outbox depth (rows neither delivered nor refused) and the age of the oldest, for the metrics. */
export async function outboxStats(sql: SqlQueryable): Promise<{ pending: number; oldestSeconds: number; refused: number }> {
  const [row] = await sql.query<{ pending: string | number; refused: string | number; oldest: number | string | null }>(
    `select count(*) filter (where failed_at is null) as pending, count(*) filter (where failed_at is not null) as refused,
            extract(epoch from (now() - min(created_at) filter (where failed_at is null)))::float8 as oldest
       from ssf_outbox`,
  );
  return { pending: Number(row.pending), refused: Number(row.refused), oldestSeconds: row.oldest === null ? 0 : Number(row.oldest) };
}

export interface PollRequest {
  maxEvents: number;
  ack: readonly string[];
  setErrs: Readonly<Record<string, { err: string; description?: string }>>;
}

/**
 * RFC 8936 §2.4: acknowledged SETs and SETs the receiver reports errors for are deleted first (only
 * this stream's), then up to maxEvents pending SETs are returned in order; they stay until acked.
 */
export async function pollOutbox(sql: SqlClient, streamId: string, request: PollRequest): Promise<{ entries: OutboxEntry[]; moreAvailable: boolean; acked: number; errored: number }> {
  return sql.transaction(async (tx) => {
    let acked = 0;
    let errored = 0;
    if (request.ack.length > 0) {
      acked = (await tx.query('delete from ssf_outbox where stream_id = $1 and jti = any($2::text[]) returning seq', [streamId, [...request.ack]])).length;
    }
    const errJtis = Object.keys(request.setErrs);
    if (errJtis.length > 0) {
      errored = (await tx.query('delete from ssf_outbox where stream_id = $1 and jti = any($2::text[]) returning seq', [streamId, errJtis])).length;
    }
    if (request.maxEvents === 0) return { entries: [], moreAvailable: (await countPending(tx, streamId)) > 0, acked, errored };
    const rows = await tx.query<Record<string, unknown>>(
      'select * from ssf_outbox where stream_id = $1 and failed_at is null order by seq limit $2',
      [streamId, request.maxEvents + 1],
    );
    return { entries: rows.slice(0, request.maxEvents).map(toEntry), moreAvailable: rows.length > request.maxEvents, acked, errored };
  });
}

async function countPending(sql: SqlQueryable, streamId: string): Promise<number> {
  const [row] = await sql.query<{ n: string | number }>('select count(*) as n from ssf_outbox where stream_id = $1 and failed_at is null', [streamId]);
  return Number(row.n);
}
