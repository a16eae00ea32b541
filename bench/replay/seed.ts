/**
 * Seeds a fresh schema with `count` events shaped like the ledger's own: per family a
 * FamilyLinkedToSubject on its subject's stream, then TokenFamilyIssued, TokenRotated ×7,
 * RefreshRejected and TokenFamilyRevoked, with full metadata (actor, correlation id, context) and a
 * valid hash chain. Families are written 1,000 at a time, revision by revision, so streams
 * interleave in global order the way concurrent users do. Rows go in with multi-row INSERTs
 * (unnest), not through tl_append: seeding is not what is measured.
 */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { sealEvents } from '@token-ledger/envelope';

const FAMILIES_PER_BLOCK = 1000;
const FAMILIES_PER_SUBJECT = 5;
const BATCH_ROWS = 5000;
const S = 1000;

interface Row {
  streamId: string;
  revision: number;
  eventId: string;
  type: string;
  data: string;
  metadata: string;
}

const B32 = '0123456789abcdefghjkmnpqrstvwxyz';
function familyId(n: number): string {
  let body = '';
  let x = n;
  for (let i = 0; i < 26; i++) {
    body = B32[x % 32] + body;
    x = Math.floor(x / 32);
  }
  return `fam_${body}`;
}

const iso = (ms: number) => new Date(ms).toISOString();
const hex = (n: number) => n.toString(16).padStart(8, '0');

/** The events of family `n`, in order, as domain events (header + data) with their request metadata. */
function familyHistory(n: number, t0: number): { stream: 'subject' | 'family'; type: string; at: number; data: unknown; meta: Record<string, unknown> }[] {
  const fam = familyId(n);
  const ip = `198.51.${(n >> 8) & 255}.${n & 255}`;
  const ctx = { ip, userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36', deviceId: `dev-${hex(n)}` };
  const policy = { accessTokenTtl: 300, refreshIdleTtl: 1_296_000, refreshAbsoluteTtl: 2_592_000, reuseGraceSeconds: 10 };
  const out: ReturnType<typeof familyHistory> = [];
  const admin = { actor: 'admin', correlationId: randomUUID(), context: ctx };
  out.push({ stream: 'subject', type: 'FamilyLinkedToSubject', at: t0, data: { familyId: fam, clientId: 'web' }, meta: admin });
  out.push({
    stream: 'family',
    type: 'TokenFamilyIssued',
    at: t0,
    data: {
      scope: ['api:read', 'api:write'],
      audience: ['https://api.example.com'],
      generation: 1,
      tokenHash: `${hex(n)}${'a'.repeat(35)}`,
      createdAt: iso(t0),
      idleExpiresAt: iso(t0 + policy.refreshIdleTtl * S),
      absoluteExpiresAt: iso(t0 + policy.refreshAbsoluteTtl * S),
      policy,
      context: ctx,
    },
    meta: admin,
  });
  for (let g = 2; g <= 8; g++) {
    const at = t0 + (g - 1) * 300 * S;
    out.push({
      stream: 'family',
      type: 'TokenRotated',
      at,
      data: { fromGeneration: g - 1, generation: g, tokenHash: `${hex(n)}${hex(g)}${'b'.repeat(27)}`, idleExpiresAt: iso(at + policy.refreshIdleTtl * S), scope: ['api:read', 'api:write'], context: ctx },
      meta: { actor: 'client:web', correlationId: randomUUID(), context: ctx },
    });
  }
  const forger = { ip: '203.0.113.66', userAgent: 'curl/8.5.0' };
  out.push({ stream: 'family', type: 'RefreshRejected', at: t0 + 2400 * S, data: { reason: 'bad_secret', presentedGeneration: 8, context: forger }, meta: { actor: 'client:web', correlationId: randomUUID(), context: forger } });
  out.push({
    stream: 'family',
    type: 'TokenFamilyRevoked',
    at: t0 + 2700 * S,
    data: { reason: 'logout', revokedAt: iso(t0 + 2700 * S), accessTokensValidUntil: iso(t0 + 3000 * S) },
    meta: { actor: 'client:web', correlationId: randomUUID(), context: ctx },
  });
  return out;
}

export async function seed(pool: Pool, count: number, onProgress: (done: number) => void): Promise<{ events: number; streams: number }> {
  const t0 = Date.UTC(2025, 0, 1);
  const heads = new Map<string, { revision: number; hash: string | null }>();
  let pending: Row[] = [];
  let written = 0;

  const flush = async () => {
    if (pending.length === 0) return;
    const rows = pending;
    pending = [];
    await pool.query(
      `insert into tl_events (stream_id, revision, event_id, type, data, metadata)
       select s, r, e, t, d, m
         from unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::jsonb[], $6::jsonb[]) with ordinality as x(s, r, e, t, d, m, ord)
        order by ord`,
      [rows.map((r) => r.streamId), rows.map((r) => r.revision), rows.map((r) => r.eventId), rows.map((r) => r.type), rows.map((r) => r.data), rows.map((r) => r.metadata)],
    );
    written += rows.length;
    onProgress(written);
  };

  const add = (streamId: string, type: string, at: number, familyIdValue: string, subject: string, data: unknown, meta: Record<string, unknown>) => {
    const head = heads.get(streamId) ?? { revision: -1, hash: null };
    const sealed = sealEvents(streamId, head.revision + 1, head.hash, [
      {
        eventId: randomUUID(),
        type,
        data,
        metadata: { familyId: familyIdValue, subject, clientId: 'web', occurredAt: iso(at), schemaVersion: 1, ...meta },
      },
    ]);
    const event = sealed.events[0];
    heads.set(streamId, { revision: head.revision + 1, hash: sealed.lastHash });
    pending.push({ streamId, revision: head.revision + 1, eventId: event.eventId, type, data: JSON.stringify(event.data), metadata: JSON.stringify(event.metadata) });
  };

  let queued = 0;
  for (let block = 0; queued < count; block++) {
    const histories = Array.from({ length: FAMILIES_PER_BLOCK }, (_, i) => {
      const n = block * FAMILIES_PER_BLOCK + i;
      return { n, events: familyHistory(n, t0 + n * 7 * S) };
    });
    const longest = Math.max(...histories.map((h) => h.events.length));
    for (let step = 0; step < longest && queued < count; step++) {
      for (const { n, events } of histories) {
        const e = events[step];
        if (!e || queued >= count) continue;
        const fam = familyId(n);
        const subject = `user-${Math.floor(n / FAMILIES_PER_SUBJECT)}`;
        add(e.stream === 'subject' ? `subject-${subject}` : `family-${fam}`, e.type, e.at, fam, subject, e.data, e.meta);
        queued++;
        if (pending.length >= BATCH_ROWS) await flush();
      }
    }
  }
  await flush();

  const ids = [...heads.keys()];
  for (let i = 0; i < ids.length; i += 20_000) {
    const chunk = ids.slice(i, i + 20_000);
    await pool.query('insert into tl_streams (stream_id, revision) select * from unnest($1::text[], $2::bigint[])', [chunk, chunk.map((id) => heads.get(id)!.revision)]);
  }
  await pool.query('analyze tl_events');
  await pool.query('analyze tl_streams');
  return { events: written, streams: heads.size };
}
