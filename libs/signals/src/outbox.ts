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

/** A push stream's delivery settings as they are now and the next SETs of its queue, in order (one round trip). */
export interface PushWindow {
  stream: RoutedStream;
  /** Up to the window's size of the oldest undelivered, unrefused rows, lowest seq first. */
  entries: OutboxEntry[];
}

/**
 * The stream and its next `$3` rows after seq `$2`. `seq > $2` is what lets a statement that deletes
 * the delivered rows in a CTE read the next window (the CTE's deletes are not visible to the select).
 */
const PUSH_WINDOW = `select s.*,
     (select coalesce(jsonb_agg(to_jsonb(w) order by w.seq), '[]'::jsonb)
        from (select o.seq, o.stream_id, o.jti, o.event_type, o.claims, o.created_at, o.attempts, o.next_attempt_at
                from ssf_outbox o where o.stream_id = s.stream_id and o.failed_at is null and o.seq > $2 order by o.seq limit $3) w) as window_rows
   from ssf_streams s
  where s.stream_id = $1`;

function toPushWindow(row: Record<string, unknown> | undefined): PushWindow | undefined {
  if (!row || row.stream_id === null || row.stream_id === undefined) return undefined;
  const rows = (typeof row.window_rows === 'string' ? JSON.parse(row.window_rows) : row.window_rows) as Record<string, unknown>[];
  return { stream: rowToStream(row), entries: rows.map(toEntry) };
}

/** The stream and its next `size` SETs; undefined when the stream is gone. */
export async function pushWindow(sql: SqlQueryable, streamId: string, size: number): Promise<PushWindow | undefined> {
  return toPushWindow((await sql.query<Record<string, unknown>>(PUSH_WINDOW, [streamId, 0, size]))[0]);
}

/**
 * Takes (or renews) the stream's push lease and reads the stream and its next `size` SETs, in one
 * statement. `previousOwner`: who held the lease as this statement's snapshot saw it — when it was
 * another instance, the window is read again under the lease (that one may have just delivered some).
 */
export async function leaseAndWindow(
  sql: SqlQueryable,
  streamId: string,
  owner: string,
  ms: number,
  size: number,
): Promise<{ leased: boolean; previousOwner: string | null; window?: PushWindow }> {
  const rows = await sql.query<Record<string, unknown>>(
    `with prev as (select owner from ssf_leases where stream_id = $1),
     lease as (
       insert into ssf_leases (stream_id, owner, expires_at) values ($1, $4, now() + ($5::bigint * interval '1 millisecond'))
       on conflict (stream_id) do update set owner = excluded.owner, expires_at = excluded.expires_at
        where ssf_leases.owner = excluded.owner or ssf_leases.expires_at < now()
       returning owner)
     select (select count(*) from lease)::int as leased, (select owner from prev) as previous_owner, h.*
       from (select 1) one left join (${PUSH_WINDOW}) h on true`,
    [streamId, 0, size, owner, ms],
  );
  const row = rows[0];
  return { leased: Number(row.leased) === 1, previousOwner: (row.previous_owner as string | null) ?? null, window: toPushWindow(row) };
}

/**
 * Deletes the delivered rows of a window (all before `after`, the last of them) and reads the next
 * window, in one statement.
 */
export async function deliveredThenWindow(sql: SqlQueryable, streamId: string, delivered: readonly number[], size: number): Promise<PushWindow | undefined> {
  if (delivered.length === 0) return pushWindow(sql, streamId, size);
  const rows = await sql.query<Record<string, unknown>>(
    `with delivered as (delete from ssf_outbox where stream_id = $1 and seq = any($4::bigint[])) ${PUSH_WINDOW}`,
    [streamId, Math.max(...delivered), size, [...delivered]],
  );
  return toPushWindow(rows[0]);
}

/** Deletes delivered rows (a window cut short by stop()). */
export async function deleteDelivered(sql: SqlQueryable, streamId: string, delivered: readonly number[]): Promise<void> {
  if (delivered.length > 0) await sql.query('delete from ssf_outbox where stream_id = $1 and seq = any($2::bigint[])', [streamId, [...delivered]]);
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
