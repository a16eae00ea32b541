import type { OpenedStore, SqlClient } from '@token-ledger/event-store';
import {
  ALL_PROJECTIONS,
  getFamily,
  rebuildProjections,
  type RebuildProgress,
  type RebuildStep,
  type SqlBackedStore,
} from '@token-ledger/projections';

import { machineBusyCpuSeconds, selfCpuSeconds } from '../refresh/cpu';
import type { RebuildConfig } from './args';
import { EVENTS_PER_FAMILY, expectedFamily, type SeedPlan } from './seed';

export interface RebuildCheck {
  ok: boolean;
  problems: string[];
  counts: { events: number; audit: number; families: number; familiesFinal: number; anomalies: number; checkpoints: Record<string, number> };
  familiesAtLastPosition: number;
  auditMatchingEvents: number;
  spotChecked: string[];
}

export interface RebuildRun extends RebuildConfig {
  /** The method the library took ('auto' resolves to sql or replay). */
  used: 'sql' | 'replay';
  events: number;
  seconds: number;
  eventsPerSec: number;
  /** Set-based path: every statement group the library timed (lane, start, duration). */
  steps: RebuildStep[];
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

/**
 * Gives every run the same starting point, not timed: empty live read models and no checkpoints
 * (as after migrating a fresh database), and no dirty buffers from the previous run.
 */
export async function resetReadModels(sql: SqlClient): Promise<void> {
  const tables = [...new Set(ALL_PROJECTIONS.flatMap((p) => p.tables))];
  await sql.exec(`truncate ${tables.join(', ')}; delete from rm_checkpoints`);
  // Not fatal without superuser.
  await sql.exec('checkpoint').catch(() => undefined);
}

/**
 * Times the library's own rebuildProjections(store, ALL_PROJECTIONS, options) — the call behind
 * `token-ledger rebuild-projections` — with nothing wrapped around the store or the projections
 * (a wrapped projection would make the library fall back to replay). Where the time goes comes
 * from the steps the library reports.
 */
export async function timeRebuild(
  store: OpenedStore & SqlBackedStore,
  plan: SeedPlan,
  config: RebuildConfig,
  progress: (p: RebuildProgress, elapsedSec: number) => void,
): Promise<Omit<RebuildRun, 'check'> & { head: number }> {
  const pgStart = await pgCounters(store.sql); // WAL position and checkpoints: read outside the timed section
  const cpuStart = { self: selfCpuSeconds(), machine: machineBusyCpuSeconds() };
  const start = nowMs();
  const result = await rebuildProjections(store, ALL_PROJECTIONS, {
    method: config.method,
    parallelism: config.parallelism,
    batchSize: config.batchSize,
    onProgress: (p) => progress(p, (nowMs() - start) / 1000),
  });
  const totalMs = nowMs() - start;
  const cpuEnd = { self: selfCpuSeconds(), machine: machineBusyCpuSeconds() };
  const pgEnd = await pgCounters(store.sql);
  const walBytes = pgStart && pgEnd ? await walBytesBetween(store.sql, pgStart.lsn, pgEnd.lsn) : undefined;
  const wallSec = totalMs / 1000;
  const driverCpuPct = ((cpuEnd.self - cpuStart.self) / wallSec) * 100;
  const otherCpuPct =
    cpuStart.machine !== undefined && cpuEnd.machine !== undefined
      ? Math.max(0, ((cpuEnd.machine - cpuStart.machine) / wallSec) * 100 - driverCpuPct)
      : undefined;
  if (result.total !== plan.events || result.done !== plan.events) {
    throw new Error(`rebuild reported ${result.done}/${result.total} events, expected ${plan.events}`);
  }
  return {
    ...config,
    used: result.method,
    events: result.total,
    seconds: wallSec,
    eventsPerSec: result.total / wallSec,
    steps: result.steps,
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
