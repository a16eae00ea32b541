import { createHash } from 'node:crypto';
import {
  SSF_PUSH,
  ledgerSubjectKey,
  ssfSubjectKey,
  type LedgerEvent,
  type SsfStreamConfig,
  type SsfStreamEvent,
  type SsfStreamStatus,
} from '@token-ledger/domain';
import { toDomainEvent } from '@token-ledger/envelope';
import { BatchedConsumer, type RecordedEvent, type SqlBackedStore, type SqlQueryable } from '@token-ledger/event-store';
import { buildSetClaims, type SetClaims } from './set-claims';
import { ALWAYS_DELIVERED, signalsFor, type FamilyScope, type Signal } from './set-mapping';
import { migrateSignals } from './schema';

const CHECKPOINT = 'ssf-outbox';

export class OutboxCheckpointConflictError extends Error {
  constructor() {
    super('ssf outbox: checkpoint moved under us (another instance); restarting from it');
    this.name = 'OutboxCheckpointConflictError';
  }
}

/** A stream as the outbox routes to it. */
export interface RoutedStream {
  streamId: string;
  status: SsfStreamStatus;
  method: string;
  endpointUrl: string;
  authorizationSealed: string | null;
  aud: string[];
  eventsDelivered: string[];
}

export interface OutboxConsumerOptions {
  issuer: string;
  /** Epoch ms; the SETs' `iat`. Default Date.now. */
  now?: () => number;
  batchSize?: number;
  /** After each committed batch: the streams that got new rows (the pusher and long polls wake on it). */
  onRows?: (streamIds: ReadonlySet<string>, count: number) => void;
  onError?: (error: unknown) => void;
  /** Pause before restarting after a failure; default 500 ms (a lost checkpoint race: 10 ms). */
  retryDelayMs?: number;
}

/** `jti`: derived from the event, the stream and the event type, so it is the same however often the row is built or sent. */
export function setJti(eventId: string, streamId: string, eventType: string): string {
  return createHash('sha256').update(`${eventId}\n${streamId}\n${eventType}`).digest('base64url').slice(0, 32);
}

interface OutboxRow {
  stream_id: string;
  jti: string;
  event_type: string;
  claims: SetClaims;
}

/**
 * Follows the store's global order from its own checkpoint and, in ONE transaction per batch with
 * that checkpoint, folds the Ssf* events into its routing tables and writes one outbox row per SET
 * per matching stream: exactly once across crashes (a batch is all or nothing) and across instances
 * (the checkpoint row is locked and compared, as the read models do: the later instance restarts).
 *
 * Routing rules: a subject's events go to the streams that follow it (default_subjects NONE) and
 * deliver the event type; verification and stream-updated go to their stream whatever it delivers;
 * paused streams accumulate, disabled streams get nothing (their pending rows are dropped when they
 * are disabled), deleted streams lose everything.
 */
export class OutboxConsumer {
  private checkpoint = 0;
  /** How many SSF streams (not deleted) the committed routing state holds. */
  private streams = 0;
  private readonly consumer: BatchedConsumer;
  private readonly now: () => number;

  constructor(
    private readonly store: SqlBackedStore,
    private readonly options: OutboxConsumerOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.consumer = new BatchedConsumer(
      store,
      {
        resumeAfter: async () => {
          this.streams = await countRoutedStreams(this.store.sql);
          return (this.checkpoint = await readOutboxCheckpoint(this.store.sql));
        },
        commit: async (events) => {
          const { position, touched, count, streams } = await this.store.sql.transaction((tx) => this.commit(tx, events));
          this.checkpoint = position;
          this.streams = streams;
          if (touched.size > 0) this.options.onRows?.(touched, count);
        },
        onError: (error) => {
          if (!(error instanceof OutboxCheckpointConflictError)) this.options.onError?.(error);
        },
        retryDelayMs: (error) => (error instanceof OutboxCheckpointConflictError ? 10 : (this.options.retryDelayMs ?? 500)),
      },
      options.batchSize ?? 500,
      // Woken at each append, not after the embedded store's gather delay, so the pusher starts right
      // after this batch commits (docs/ssf-delivery.md#latency) — but only while some SSF stream
      // exists: without one, reading and committing at every append would only tax the refresh path.
      { prompt: () => this.streams > 0 },
    );
  }

  /** The last store position whose rows are committed. */
  get position(): number {
    return this.checkpoint;
  }

  async start(): Promise<void> {
    await migrateSignals(this.store.sql);
    await this.consumer.start();
  }

  stop(): Promise<void> {
    return this.consumer.stop();
  }

  async waitFor(position: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.checkpoint < position) {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 5));
    }
    return true;
  }

  private async commit(tx: SqlQueryable, events: readonly RecordedEvent[]): Promise<{ position: number; touched: Set<string>; count: number; streams: number }> {
    const last = events[events.length - 1].position;
    // The subjects, subject revocations and families this batch can touch (from all its events: a
    // superset of those after the checkpoint, the lookups are by key).
    const keys = new Set<string>();
    const familyIds = new Set<string>();
    for (const e of events) {
      const m = (e.metadata ?? {}) as Record<string, unknown>;
      if (typeof m.subject === 'string' && m.subject) keys.add(ledgerSubjectKey(m.subject));
      if (typeof m.clientId === 'string' && m.clientId) keys.add(`client:${m.clientId}`);
      if (typeof m.familyId === 'string' && m.familyId && (e.type === 'TokenRotated' || e.type === 'TokenFamilyRevoked' || e.type === 'TokenFamilyExpired')) familyIds.add(m.familyId);
    }
    // One round trip: the checkpoint row, created if need be and locked (an upsert locks it like
    // `for update`), the streams, and what the batch's keys find. A second instance's batch waits
    // here, then sees a moved checkpoint.
    const [head] = await tx.query<{ position: string | number; streams: Record<string, unknown>[]; found: { kind: string; a: string; b: string | null; granted: string[] | null; last_scope: string[] | null }[] }>(
      `with cp as (
         insert into ssf_checkpoints (name, position) values ($1, 0)
         on conflict (name) do update set name = excluded.name
         returning position)
       select cp.position,
              (select coalesce(jsonb_agg(to_jsonb(s)), '[]'::jsonb) from ssf_streams s) as streams,
              (select coalesce(jsonb_agg(to_jsonb(f)), '[]'::jsonb) from (
                 select 'subject' as kind, subject_key as a, stream_id as b, null::jsonb as granted, null::jsonb as last_scope from ssf_subjects where subject_key = any($2::text[])
                 union all select 'revoking', subject_key, null, null, null from ssf_subject_revocations where subject_key = any($2::text[])
                 union all select 'family', family_id, null, granted, last_scope from ssf_families where family_id = any($3::text[])) f) as found
         from cp`,
      [CHECKPOINT, [...keys], [...familyIds]],
    );
    if (Number(head.position) !== this.checkpoint) throw new OutboxCheckpointConflictError();
    const pending = events.filter((e) => e.position > this.checkpoint);

    const streams = new Map<string, RoutedStream>();
    for (const r of parseJson(head.streams)) {
      const s = rowToStream(r);
      streams.set(s.streamId, s);
    }
    const followers = new Map<string, Set<string>>(); // subject key → stream ids
    const revoking = new Set<string>(); // subject keys with a subject revocation under way
    const families = new Map<string, FamilyScope>();
    for (const r of parseJson(head.found)) {
      if (r.kind === 'subject') follow(followers, r.a, r.b!);
      else if (r.kind === 'revoking') revoking.add(r.a);
      else families.set(r.a, { granted: r.granted!, last: r.last_scope! });
    }
    // Family scopes and subject revocations this batch changed: written with the rows, in one statement.
    const touched: Touched = { families: new Set(), revoking: new Set() };
    let rows: OutboxRow[] = [];
    const dropRows = (streamId: string) => (rows = rows.filter((r) => r.stream_id !== streamId));
    if (streams.size > 0 || pending.some((e) => e.type.startsWith('Ssf'))) {
      const iat = Math.floor(this.now() / 1000);
      for (const recorded of pending) {
        if (!recorded.metadata || typeof (recorded.metadata as Record<string, unknown>).occurredAt !== 'string') continue;
        const event = toDomainEvent(recorded);
        if (event.type.startsWith('Ssf')) await this.route(tx, event as SsfStreamEvent, streams, followers, dropRows);
        const family = this.trackFamily(event, followers, families, touched);
        const subjectRevocationPending = this.trackSubjectRevocation(event, followers, revoking, touched);
        for (const signal of signalsFor(event, { issuer: this.options.issuer, family, subjectRevocationPending })) {
          for (const stream of targets(signal, streams, followers)) {
            const jti = setJti(recorded.eventId, stream.streamId, signal.eventType);
            const correlationId = (recorded.metadata as Record<string, unknown>).correlationId;
            rows.push({
              stream_id: stream.streamId,
              jti,
              event_type: signal.eventType,
              claims: buildSetClaims({
                issuer: this.options.issuer,
                aud: stream.aud,
                iat,
                jti,
                txn: typeof correlationId === 'string' ? correlationId : null,
                subId: signal.subId,
                eventType: signal.eventType,
                payload: signal.payload,
              }),
            });
          }
        }
      }
    }
    const familyRows = [...touched.families].filter((id) => families.has(id)).map((id) => ({ family_id: id, granted: families.get(id)!.granted, last_scope: families.get(id)!.last }));
    const familiesGone = [...touched.families].filter((id) => !families.has(id));
    const revokingNow = [...touched.revoking].filter((k) => revoking.has(k));
    const revokingDone = [...touched.revoking].filter((k) => !revoking.has(k));
    // The rows, the family scopes, the subject revocations and the checkpoint in one statement.
    // `with ordinality … order by`: seq follows the store's order, so each stream's rows are in it.
    await tx.query(
      `with inserted as (
         insert into ssf_outbox (stream_id, jti, event_type, claims)
         select r.stream_id, r.jti, r.event_type, r.claims
           from rows from (jsonb_to_recordset($1::jsonb) as (stream_id text, jti text, event_type text, claims jsonb)) with ordinality as r(stream_id, jti, event_type, claims, n)
          order by n
         on conflict (jti) do nothing),
       fam_set as (
         insert into ssf_families (family_id, granted, last_scope)
         select f.family_id, f.granted, f.last_scope from jsonb_to_recordset($4::jsonb) as f(family_id text, granted jsonb, last_scope jsonb)
         on conflict (family_id) do update set granted = excluded.granted, last_scope = excluded.last_scope),
       fam_gone as (delete from ssf_families where family_id = any($5::text[])),
       rev_set as (insert into ssf_subject_revocations (subject_key) select unnest($6::text[]) on conflict do nothing),
       rev_gone as (delete from ssf_subject_revocations where subject_key = any($7::text[]))
       update ssf_checkpoints set position = $3, updated_at = now() where name = $2`,
      [JSON.stringify(rows), CHECKPOINT, last, JSON.stringify(familyRows), familiesGone, revokingNow, revokingDone],
    );
    return { position: last, touched: new Set(rows.map((r) => r.stream_id)), count: rows.length, streams: streams.size };
  }

  /** Folds one Ssf* event into the routing tables (and the in-memory copy this batch uses). */
  private async route(tx: SqlQueryable, event: SsfStreamEvent, streams: Map<string, RoutedStream>, followers: Map<string, Set<string>>, dropRows: (streamId: string) => void): Promise<void> {
    const id = event.data.streamId;
    switch (event.type) {
      case 'SsfStreamCreated':
      case 'SsfStreamUpdated': {
        const previous = streams.get(id);
        const status: SsfStreamStatus = event.type === 'SsfStreamCreated' ? event.data.status : (previous?.status ?? 'enabled');
        const s = streamFrom(id, status, event.data);
        streams.set(id, s);
        await tx.query(
          `insert into ssf_streams (stream_id, status, method, endpoint_url, authorization_sealed, aud, events_delivered)
           values ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)
           on conflict (stream_id) do update set status = excluded.status, method = excluded.method, endpoint_url = excluded.endpoint_url,
             authorization_sealed = excluded.authorization_sealed, aud = excluded.aud, events_delivered = excluded.events_delivered`,
          [id, s.status, s.method, s.endpointUrl, s.authorizationSealed, JSON.stringify(s.aud), JSON.stringify(s.eventsDelivered)],
        );
        return;
      }
      case 'SsfStreamStatusChanged': {
        const s = streams.get(id);
        if (!s) return;
        s.status = event.data.status;
        await tx.query('update ssf_streams set status = $2 where stream_id = $1', [id, s.status]);
        // SSF 1.0 §8.1.1: a disabled stream holds nothing for later.
        if (s.status === 'disabled') {
          dropRows(id); // this batch's, not yet written
          await tx.query('delete from ssf_outbox where stream_id = $1', [id]);
        }
        return;
      }
      case 'SsfSubjectAdded':
      case 'SsfSubjectRemoved': {
        const key = ssfSubjectKey(event.data.subjectId, this.options.issuer);
        if (key === null) return;
        if (event.type === 'SsfSubjectAdded') {
          follow(followers, key, id);
          await tx.query('insert into ssf_subjects (stream_id, subject_key) values ($1, $2) on conflict do nothing', [id, key]);
        } else {
          followers.get(key)?.delete(id);
          await tx.query('delete from ssf_subjects where stream_id = $1 and subject_key = $2', [id, key]);
        }
        return;
      }
      case 'SsfStreamDeleted':
        streams.delete(id);
        dropRows(id);
        for (const set of followers.values()) set.delete(id);
        for (const table of ['ssf_outbox', 'ssf_subjects', 'ssf_leases', 'ssf_streams']) await tx.query(`delete from ${table} where stream_id = $1`, [id]);
        return;
      default:
        return;
    }
  }

  /**
   * Whether a subject revocation is under way for the event's subject: from a SubjectRevoked of a
   * followed subject until its SubjectRevocationCompleted (a crash in between is finished by the
   * reconciler, still inside that window).
   */
  private trackSubjectRevocation(event: LedgerEvent, followers: Map<string, Set<string>>, revoking: Set<string>, touched: Touched): boolean {
    if (!event.subject) return false;
    const key = ledgerSubjectKey(event.subject);
    if (event.type === 'SubjectRevoked' && (followers.get(key)?.size ?? 0) > 0 && !revoking.has(key)) {
      revoking.add(key);
      touched.revoking.add(key);
    } else if (event.type === 'SubjectRevocationCompleted' && revoking.delete(key)) {
      touched.revoking.add(key);
    }
    return revoking.has(key);
  }

  /**
   * Keeps the granted and last access-token scope of families whose subject a stream follows, and
   * returns the family's scope as it was before this event (what TokenRotated is compared with).
   */
  private trackFamily(event: LedgerEvent, followers: Map<string, Set<string>>, families: Map<string, FamilyScope>, touched: Touched): FamilyScope | undefined {
    switch (event.type) {
      case 'TokenFamilyIssued': {
        if (!(followers.get(ledgerSubjectKey(event.subject))?.size ?? 0) || families.has(event.familyId)) return undefined;
        families.set(event.familyId, { granted: event.data.scope, last: event.data.scope });
        touched.families.add(event.familyId);
        return undefined;
      }
      case 'TokenRotated': {
        const before = families.get(event.familyId);
        if (!before) return undefined;
        families.set(event.familyId, { granted: before.granted, last: event.data.scope });
        touched.families.add(event.familyId);
        return before;
      }
      case 'TokenFamilyRevoked':
      case 'TokenFamilyExpired':
        if (families.delete(event.familyId)) touched.families.add(event.familyId);
        return undefined;
      default:
        return undefined;
    }
  }
}

/** What a batch changed besides its rows (written with them). */
interface Touched {
  families: Set<string>;
  revoking: Set<string>;
}

/** jsonb from pg is parsed; PGlite inside jest may hand back text. */
function parseJson<T>(value: T[] | string): T[] {
  return typeof value === 'string' ? (JSON.parse(value) as T[]) : value;
}

export async function readOutboxCheckpoint(sql: SqlQueryable): Promise<number> {
  const rows = await sql.query<{ position: string | number }>('select position from ssf_checkpoints where name = $1', [CHECKPOINT]);
  return rows.length === 0 ? 0 : Number(rows[0].position);
}

async function countRoutedStreams(sql: SqlQueryable): Promise<number> {
  const [row] = await sql.query<{ n: string | number }>('select count(*) as n from ssf_streams');
  return Number(row.n);
}

function follow(followers: Map<string, Set<string>>, key: string, streamId: string): void {
  let set = followers.get(key);
  if (!set) followers.set(key, (set = new Set()));
  set.add(streamId);
}

/** The streams a signal goes to: never a disabled one; a subject's only where the type is delivered. */
function targets(signal: Signal, streams: Map<string, RoutedStream>, followers: Map<string, Set<string>>): RoutedStream[] {
  if (signal.route.kind === 'stream') {
    const s = streams.get(signal.route.streamId);
    return s && s.status !== 'disabled' && ALWAYS_DELIVERED.has(signal.eventType) ? [s] : [];
  }
  const out: RoutedStream[] = [];
  for (const id of followers.get(signal.route.key) ?? []) {
    const s = streams.get(id);
    if (s && s.status !== 'disabled' && s.eventsDelivered.includes(signal.eventType)) out.push(s);
  }
  return out.sort((a, b) => (a.streamId < b.streamId ? -1 : 1));
}

function streamFrom(streamId: string, status: SsfStreamStatus, config: SsfStreamConfig): RoutedStream {
  return {
    streamId,
    status,
    method: config.delivery.method,
    endpointUrl: config.delivery.endpointUrl,
    authorizationSealed: config.delivery.method === SSF_PUSH ? (config.delivery.authorizationHeaderSealed ?? null) : null,
    aud: config.aud,
    eventsDelivered: config.eventsDelivered,
  };
}

export function rowToStream(r: Record<string, unknown>): RoutedStream {
  return {
    streamId: r.stream_id as string,
    status: r.status as SsfStreamStatus,
    method: r.method as string,
    endpointUrl: r.endpoint_url as string,
    authorizationSealed: (r.authorization_sealed as string | null) ?? null,
    aud: r.aud as string[],
    eventsDelivered: r.events_delivered as string[],
  };
}
