import type { RecordedEvent, SqlClient, SqlQueryable } from '@token-ledger/event-store';
import {
  ALL_PROJECTIONS,
  getFamily,
  rebuildProjections,
  type Projection,
  type RebuildProgress,
  type SqlBackedStore,
} from '@token-ledger/projections';

import { machineBusyCpuSeconds, selfCpuSeconds } from '../refresh/cpu';
import { EVENTS_PER_FAMILY, expectedFamily, type SeedPlan } from './seed';

/** Where one rebuild spent its wall-clock time, in ms (the parts add up to the total). */
export interface RebuildBreakdown {
  /** store.readAll: the query, the rows over the wire and pg's parsing of them (incl. JSON.parse of data/metadata). */
  readAll: number;
  /** Per projection and statement kind (first SQL word): time awaiting the database, incl. sending the parameters. */
  sql: Record<string, Record<string, number>>;
  /** Per projection: time in apply() not spent awaiting SQL (evolving views, building and stringifying rows). */
  js: Record<string, number>;
  /** Everything else: begin/commit, the checkpoint statements, the initial delete and count. */
  other: number;
  total: number;
}

export interface RebuildCheck {
  ok: boolean;
  problems: string[];
  counts: { events: number; audit: number; families: number; familiesFinal: number; anomalies: number; checkpoints: Record<string, number> };
  familiesAtLastPosition: number;
  auditMatchingEvents: number;
  spotChecked: string[];
}

export interface RebuildRun {
  batchSize: number;
  events: number;
  batches: number;
  seconds: number;
  eventsPerSec: number;
  breakdownMs: RebuildBreakdown;
  /** CPU over the rebuild, 100 = one core: this process, and everything else on the machine (PostgreSQL). */
  driverCpuPct: number;
  otherCpuPct: number | undefined;
  /** WAL PostgreSQL wrote during the rebuild, and checkpoints it ran (timed + requested). */
  walMB: number | undefined;
  checkpoints: number | undefined;
  check: RebuildCheck;
}

interface PgCounters {
  lsn: string;
  checkpoints: number;
}

async function pgCounters(sql: SqlClient): Promise<PgCounters | undefined> {
  try {
    const [r] = await sql.query<{ lsn: string; checkpoints: string }>(
      'select pg_current_wal_lsn()::text as lsn, (select checkpoints_timed + checkpoints_req from pg_stat_bgwriter) as checkpoints',
    );
    return { lsn: r.lsn, checkpoints: Number(r.checkpoints) };
  } catch {
    return undefined;
  }
}

async function walBytesBetween(sql: SqlClient, from: string, to: string): Promise<number | undefined> {
  try {
    const [r] = await sql.query<{ bytes: string }>('select pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn) as bytes', [to, from]);
    return Number(r.bytes);
  } catch {
    return undefined;
  }
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/** The store, with readAll timed (everything else passes straight through). */
function timedStore(store: SqlBackedStore, onRead: (ms: number) => void): SqlBackedStore {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'readAll') {
        return async (...args: Parameters<SqlBackedStore['readAll']>) => {
          const start = nowMs();
          try {
            return await target.readAll(...args);
          } finally {
            onRead(nowMs() - start);
          }
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The same projection, its apply() timed and its statements timed by kind. */
function timedProjection(p: Projection, b: RebuildBreakdown): Projection {
  const sql = (b.sql[p.name] ??= {});
  b.js[p.name] ??= 0;
  return {
    name: p.name,
    tables: p.tables,
    async apply(tx: SqlQueryable, events: readonly RecordedEvent[]): Promise<void> {
      const start = nowMs();
      let inSql = 0;
      const timedTx: SqlQueryable = {
        async query<R>(text: string, params?: unknown[]): Promise<R[]> {
          const kind = /^\s*(\w+)/.exec(text)?.[1]?.toLowerCase() ?? 'other';
          const s = nowMs();
          try {
            return await tx.query<R>(text, params);
          } finally {
            const ms = nowMs() - s;
            inSql += ms;
            sql[kind] = (sql[kind] ?? 0) + ms;
          }
        },
      };
      try {
        await p.apply(timedTx, events);
      } finally {
        b.js[p.name] += nowMs() - start - inSql;
      }
    },
  };
}

/** Empties the read models (not timed) so every batch size starts from the same state. */
export async function resetReadModels(sql: SqlClient): Promise<void> {
  const tables = [...new Set(ALL_PROJECTIONS.flatMap((p) => p.tables))];
  await sql.exec(`truncate ${tables.join(', ')}; delete from rm_checkpoints`);
  // Start every run with no dirty buffers from the previous one; not fatal without superuser.
  await sql.exec('checkpoint').catch(() => undefined);
}

export async function timeRebuild(
  store: SqlBackedStore,
  plan: SeedPlan,
  batchSize: number,
  progress: (p: RebuildProgress, elapsedSec: number) => void,
): Promise<Omit<RebuildRun, 'check'> & { head: number }> {
  const breakdown: RebuildBreakdown = { readAll: 0, sql: {}, js: {}, other: 0, total: 0 };
  const projections = ALL_PROJECTIONS.map((p) => timedProjection(p, breakdown));
  const timed = timedStore(store, (ms) => (breakdown.readAll += ms));
  let batches = 0;
  const pgStart = await pgCounters(store.sql); // WAL position and checkpoints: read outside the timed section
  const cpuStart = { self: selfCpuSeconds(), machine: machineBusyCpuSeconds() };
  const start = nowMs();
  const result = await rebuildProjections(timed, projections, {
    batchSize,
    onProgress: (p) => {
      batches++;
      progress(p, (nowMs() - start) / 1000);
    },
  });
  const totalMs = nowMs() - start;
  const cpuEnd = { self: selfCpuSeconds(), machine: machineBusyCpuSeconds() };
  const pgEnd = await pgCounters(store.sql);
  const walBytes = pgStart && pgEnd ? await walBytesBetween(store.sql, pgStart.lsn, pgEnd.lsn) : undefined;
  breakdown.total = totalMs;
  const accounted =
    breakdown.readAll +
    Object.values(breakdown.sql).reduce((a, kinds) => a + Object.values(kinds).reduce((x, y) => x + y, 0), 0) +
    Object.values(breakdown.js).reduce((a, b) => a + b, 0);
  breakdown.other = totalMs - accounted;
  const wallSec = totalMs / 1000;
  const driverCpuPct = ((cpuEnd.self - cpuStart.self) / wallSec) * 100;
  const otherCpuPct =
    cpuStart.machine !== undefined && cpuEnd.machine !== undefined
      ? Math.max(0, ((cpuEnd.machine - cpuStart.machine) / wallSec) * 100 - driverCpuPct)
      : undefined;
  if (result.done !== plan.events) throw new Error(`rebuild applied ${result.done} events, expected ${plan.events}`);
  return {
    batchSize,
    events: result.done,
    batches,
    seconds: wallSec,
    eventsPerSec: result.done / wallSec,
    breakdownMs: breakdown,
    driverCpuPct,
    otherCpuPct,
    walMB: walBytes === undefined ? undefined : walBytes / 1e6,
    checkpoints: pgStart && pgEnd ? pgEnd.checkpoints - pgStart.checkpoints : undefined,
    head: result.head,
  };
}

/**
 * Is the rebuilt read model right? Counts, a full cross-check against tl_events (every family's row
 * carries its stream's last position; every audit row matches its event), and a field-by-field
 * comparison of a few families with what the seed wrote, computed in JS from the seed's formulas.
 */
export async function checkRebuild(store: SqlBackedStore, plan: SeedPlan, head: number): Promise<RebuildCheck> {
  const sql = store.sql;
  const problems: string[] = [];
  const [c] = await sql.query<Record<string, string>>(
    `select (select count(*) from tl_events) as events,
            (select count(*) from rm_audit) as audit,
            (select count(*) from rm_families) as families,
            (select count(*) from rm_families
              where status = 'revoked' and revoked_reason = 'logout' and generation = ${EVENTS_PER_FAMILY - 2}
                and scope = '["api:read", "api:write"]'::jsonb and last_context ? 'ip' and revoked_at > last_used_at) as families_final,
            (select count(*) from rm_anomalies) as anomalies`,
  );
  const cps = await sql.query<{ projection: string; position: string }>('select projection, position from rm_checkpoints order by projection');
  const counts = {
    events: Number(c.events),
    audit: Number(c.audit),
    families: Number(c.families),
    familiesFinal: Number(c.families_final),
    anomalies: Number(c.anomalies),
    checkpoints: Object.fromEntries(cps.map((r) => [r.projection, Number(r.position)])),
  };
  if (counts.events !== plan.events) problems.push(`tl_events has ${counts.events} rows, seeded ${plan.events}`);
  if (counts.audit !== plan.events) problems.push(`rm_audit has ${counts.audit} rows, expected ${plan.events} (one per event)`);
  if (counts.families !== plan.families) problems.push(`rm_families has ${counts.families} rows, expected ${plan.families}`);
  if (counts.familiesFinal !== plan.families) {
    problems.push(`${plan.families - counts.familiesFinal} families are not in their final state (revoked/logout, generation 8)`);
  }
  if (counts.anomalies !== 0) problems.push(`rm_anomalies has ${counts.anomalies} rows, expected 0`);
  for (const p of ALL_PROJECTIONS) {
    if (counts.checkpoints[p.name] !== head) problems.push(`checkpoint ${p.name} = ${counts.checkpoints[p.name]}, expected the head ${head}`);
  }

  const [{ n: atLast }] = await sql.query<{ n: string }>(
    `select count(*) as n
       from rm_families f
       join (select stream_id, max(position) as last from tl_events where stream_id like 'family-%' group by stream_id) e
         on e.stream_id = 'family-' || f.family_id
      where f.position = e.last`,
  );
  const familiesAtLastPosition = Number(atLast);
  if (familiesAtLastPosition !== plan.families) {
    problems.push(`${plan.families - familiesAtLastPosition} families do not carry their stream's last position`);
  }
  const [{ n: auditOk }] = await sql.query<{ n: string }>(
    `select count(*) as n
       from rm_audit a join tl_events e on e.position = a.position
      where a.event_id = e.event_id and a.type = e.type and a.data = e.data and a.metadata = e.metadata
        and a.family_id is not distinct from nullif(e.metadata ->> 'familyId', '')
        and a.subject = e.metadata ->> 'subject' and a.client_id = e.metadata ->> 'clientId'
        and a.ip = e.metadata -> 'context' ->> 'ip' and a.occurred_at = (e.metadata ->> 'occurredAt')::timestamptz`,
  );
  const auditMatchingEvents = Number(auditOk);
  if (auditMatchingEvents !== plan.events) problems.push(`${plan.events - auditMatchingEvents} audit rows differ from their event`);

  // First, last, and three more spread over the range.
  const ks = [...new Set([0, plan.families - 1, Math.floor(plan.families / 3), Math.floor(plan.families / 2), Math.floor((plan.families * 7) / 9)])];
  const spotChecked: string[] = [];
  for (const k of ks) {
    const want = expectedFamily(plan, k);
    const got = await getFamily(sql, want.familyId);
    spotChecked.push(want.familyId);
    if (!got) {
      problems.push(`family ${want.familyId} (#${k}) is missing`);
      continue;
    }
    const fields = ['subject', 'clientId', 'generation', 'status', 'revokedReason', 'createdAt', 'lastUsedAt', 'revokedAt', 'idleExpiresAt', 'absoluteExpiresAt'] as const;
    for (const f of fields) {
      if (got[f] !== want[f]) problems.push(`family #${k} ${f}: got ${JSON.stringify(got[f])}, expected ${JSON.stringify(want[f])}`);
    }
    if (JSON.stringify(got.lastContext) !== JSON.stringify(want.lastContext)) {
      problems.push(`family #${k} lastContext: got ${JSON.stringify(got.lastContext)}, expected ${JSON.stringify(want.lastContext)}`);
    }
    if (JSON.stringify(got.scope) !== '["api:read","api:write"]') problems.push(`family #${k} scope: got ${JSON.stringify(got.scope)}`);
  }
  return { ok: problems.length === 0, problems, counts, familiesAtLastPosition, auditMatchingEvents, spotChecked };
}

export interface ReadProfile {
  batchSize: number;
  /** store.readAll over every event: query + transfer + pg row parsing incl. JSON.parse. */
  readAllEventsPerSec: number;
  /** The same query with data and metadata as text: query + transfer, no JSON.parse. */
  textEventsPerSec: number;
}

/** Times a bare pass over all events, with and without JSON parsing (--profile). */
export async function profileReads(store: SqlBackedStore, total: number, batchSize: number): Promise<ReadProfile> {
  let start = nowMs();
  let after = 0;
  let n = 0;
  for (let guard = 0; guard <= total / batchSize + 1; guard++) {
    const events = await store.readAll({ after, maxCount: batchSize });
    if (events.length === 0) break;
    n += events.length;
    after = events[events.length - 1].position;
  }
  const readAllEventsPerSec = n / ((nowMs() - start) / 1000);
  start = nowMs();
  after = 0;
  n = 0;
  for (let guard = 0; guard <= total / batchSize + 1; guard++) {
    const rows = await store.sql.query<{ position: string }>(
      `select position, stream_id, revision, event_id, type, data::text as data, metadata::text as metadata, recorded_at
         from tl_events where position > $1 order by position limit $2`,
      [after, batchSize],
    );
    if (rows.length === 0) break;
    n += rows.length;
    after = Number(rows[rows.length - 1].position);
  }
  const textEventsPerSec = n / ((nowMs() - start) / 1000);
  return { batchSize, readAllEventsPerSec, textEventsPerSec };
}
