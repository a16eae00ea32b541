/**
 * `verify`: walks the hash chain (hash-chain.ts) and names the first altered, missing or reordered
 * event with its stream, revision and position. Streaming: one stream page at a time, or — for the
 * whole store — one readAll page at a time, keeping only each stream's last link in memory.
 */
import type { EventStore, RecordedEvent } from '@token-ledger/event-store';
import {
  aggregateOfStream,
  canonicalJson,
  computeEventHash,
  familyStreamId,
  headMacMatches,
  isChainedSnapshot,
  storedHeadMac,
  storedHash,
  storedPrevHash,
  toDomainEvent,
} from '@token-ledger/envelope';
import { readAllPages, readStreamPaged } from './read';

export type VerifyTarget = { familyId: string } | { streamId: string } | { all: true };

export type ChainProblemKind =
  /** The event's content does not match its stored hash (or its hash was removed). */
  | 'altered'
  /** One or more revisions are absent (deleted rows). */
  | 'missing'
  /** Global position order disagrees with revision order. */
  | 'reordered'
  /** The event's prevHash is not the previous event's hash (the previous one was replaced or rehashed). */
  | 'broken_link'
  /** The stream says it has more events than are stored (the last ones were deleted). */
  | 'truncated'
  /**
   * The stored snapshot disagrees with its stream: its chain hash is not the hash of the event it
   * was taken at, or its state is not what replaying the stream's events gives (an edited snapshot).
   */
  | 'snapshot_mismatch'
  /** An event written before the chain existed (no hash): it cannot be verified. */
  | 'unchained'
  /**
   * The event's headMac does not match (checked only with the MAC key): the stream was rewritten —
   * hashes recomputed — by someone without LEDGER_KEK.
   */
  | 'bad_mac'
  /** An event without a headMac (written before LEDGER_KEK was set): only its plain hash is checked. */
  | 'unkeyed';

export interface ChainProblem {
  kind: ChainProblemKind;
  streamId: string;
  revision: number;
  /** Global position of the event concerned (for `missing`, of the event found after the gap). */
  position: number | null;
  detail: string;
  expected?: string | null;
  actual?: string | null;
}

export interface VerifyOptions {
  /** Accept events without a hash at the start of a stream (written before the chain existed). */
  allowUnchained?: boolean;
  /**
   * The chain MAC key (deriveChainMacKey(LEDGER_KEK)): every event's headMac is checked. Without it
   * the chain is only self-consistent: a stream rewritten with recomputed hashes is not detected.
   */
  macKey?: Uint8Array;
  /** With macKey: accept events without a headMac (written before LEDGER_KEK was set). */
  allowUnkeyed?: boolean;
  /** Problems kept in the report (all are counted). Default 100. */
  maxProblems?: number;
  pageSize?: number;
  /** Called after every page: events checked so far and the last position reached. */
  onProgress?: (progress: { events: number; position: number; headPosition: number }) => void;
}

export interface VerifyReport {
  ok: boolean;
  /** Streams and events checked. */
  streams: number;
  events: number;
  /** Events without a hash (pre-chain). */
  unchained: number;
  /** Whether head MACs were checked (a MAC key was given); if not, the chain is only self-consistent. */
  keyed: boolean;
  /** With a MAC key: events without a headMac (written before LEDGER_KEK was set). */
  unkeyed: number;
  /** The store's head position when the check started (for `all`: events after it are not checked). */
  headPosition: number;
  /** Problems, first bad spot first (by position). */
  problems: ChainProblem[];
  problemCount: number;
  firstProblem: ChainProblem | null;
}

/** What is remembered per stream: the last link, and any revisions not seen yet. */
interface StreamCursor {
  streamId: string;
  /** Next expected revision. */
  next: number;
  lastHash: string | null;
  lastPosition: number;
  /** True once an event with a hash was seen: a later event without one was stripped. */
  chained: boolean;
  /** Revisions skipped so far (only while a position-order scan waits to see if they turn up late). */
  gaps?: { from: number; to: number; position: number }[];
  reportedUnchained?: boolean;
  /** True once an event with a headMac was seen: a later event without one had it stripped. */
  keyed?: boolean;
  reportedUnkeyed?: boolean;
}

class Findings {
  readonly problems: ChainProblem[] = [];
  count = 0;
  unchained = 0;
  unkeyed = 0;
  /** Streams with a problem already: their snapshot state is not compared (the events are in doubt). */
  readonly flagged = new Set<string>();
  constructor(private readonly max: number) {}
  add(problem: ChainProblem): void {
    this.count++;
    this.flagged.add(problem.streamId);
    if (this.problems.length < this.max) this.problems.push(problem);
  }
}

const short = (h: string | null | undefined) => (h === null ? 'null' : h === undefined ? 'none' : `${h.slice(0, 12)}…`);

/**
 * Checks one event against its stream's cursor. `positionOrder`: events arrive in global position
 * order (a readAll scan) rather than revision order (one stream), so a skipped revision may still
 * arrive later (then it is a reordering, not a deletion).
 */
function checkEvent(cursor: StreamCursor, event: RecordedEvent, findings: Findings, options: VerifyOptions, positionOrder: boolean): void {
  const { streamId, revision, position } = event;
  const stored = storedHash(event);
  const computed = computeEventHash(event);

  if (stored === undefined) {
    findings.unchained++;
    if (cursor.chained) {
      findings.add({ kind: 'altered', streamId, revision, position, detail: 'the event has no hash although earlier events of its stream have one (hash removed)' });
    } else if (!options.allowUnchained && !cursor.reportedUnchained) {
      cursor.reportedUnchained = true;
      findings.add({ kind: 'unchained', streamId, revision, position, detail: 'the event carries no hash (written before the hash chain, or stripped): it cannot be verified' });
    }
  } else if (stored !== computed) {
    findings.add({ kind: 'altered', streamId, revision, position, expected: computed, actual: stored, detail: `content does not match its hash: stored ${short(stored)}, computed ${short(computed)}` });
  }

  if (options.macKey && stored !== undefined) checkMac(cursor, event, options.macKey, findings, options);

  if (revision < cursor.next) {
    // Only possible in a position-order scan: this revision comes after a later one.
    const gap = cursor.gaps?.find((g) => revision >= g.from && revision <= g.to);
    if (gap) removeFromGap(cursor, gap, revision);
    findings.add({
      kind: 'reordered',
      streamId,
      revision,
      position,
      detail: `revision ${revision} is stored at position ${position}, after revision ${cursor.next - 1} (position ${cursor.lastPosition})`,
    });
    return;
  }

  if (revision > cursor.next) {
    if (positionOrder) {
      (cursor.gaps ??= []).push({ from: cursor.next, to: revision - 1, position });
    } else {
      findings.add(missing(streamId, cursor.next, revision - 1, position));
    }
  } else {
    const prev = storedPrevHash(event);
    if (stored !== undefined && prev !== cursor.lastHash) {
      findings.add({
        kind: 'broken_link',
        streamId,
        revision,
        position,
        expected: cursor.lastHash,
        actual: prev ?? null,
        detail:
          revision === 0
            ? `the first event of the stream links to ${short(prev)} instead of null`
            : `prevHash ${short(prev)} is not the hash ${short(cursor.lastHash)} of revision ${revision - 1} (position ${cursor.lastPosition}): that event was replaced or rehashed`,
      });
    }
  }
  if (!positionOrder && position <= cursor.lastPosition) {
    findings.add({
      kind: 'reordered',
      streamId,
      revision,
      position,
      detail: `revision ${revision} has position ${position}, not after revision ${cursor.next - 1} (position ${cursor.lastPosition})`,
    });
  }
  cursor.next = revision + 1;
  cursor.lastHash = stored ?? computed;
  cursor.lastPosition = position;
  cursor.chained ||= stored !== undefined;
}

/** The keyed part: the event's headMac must be HMAC(K, streamId, revision, hash). */
function checkMac(cursor: StreamCursor, event: RecordedEvent, key: Uint8Array, findings: Findings, options: VerifyOptions): void {
  const { streamId, revision, position } = event;
  const mac = storedHeadMac(event);
  if (mac === undefined) {
    findings.unkeyed++;
    if (cursor.keyed) {
      findings.add({ kind: 'bad_mac', streamId, revision, position, detail: 'the event has no headMac although earlier events of its stream have one (MAC removed)' });
    } else if (!options.allowUnkeyed && !cursor.reportedUnkeyed) {
      cursor.reportedUnkeyed = true;
      findings.add({
        kind: 'unkeyed',
        streamId,
        revision,
        position,
        detail: 'the event carries no headMac (written before LEDGER_KEK was set, or stripped): only its plain hash is checked',
      });
    }
    return;
  }
  cursor.keyed = true;
  if (!headMacMatches(key, event, mac)) {
    findings.add({
      kind: 'bad_mac',
      streamId,
      revision,
      position,
      detail: 'the headMac does not match the event hash under LEDGER_KEK: the event was rewritten (hashes recomputed) by someone without the key, or LEDGER_KEK is not the one it was written with',
    });
  }
}

function removeFromGap(cursor: StreamCursor, gap: { from: number; to: number; position: number }, revision: number): void {
  const rest = cursor.gaps!.filter((g) => g !== gap);
  if (gap.from < revision) rest.push({ from: gap.from, to: revision - 1, position: gap.position });
  if (revision < gap.to) rest.push({ from: revision + 1, to: gap.to, position: gap.position });
  cursor.gaps = rest.length > 0 ? rest : undefined;
}

function missing(streamId: string, from: number, to: number, position: number | null): ChainProblem {
  const what = from === to ? `revision ${from} is missing` : `revisions ${from}–${to} are missing`;
  return { kind: 'missing', streamId, revision: from, position, detail: position === null ? what : `${what} (the next stored event is at position ${position})` };
}

/**
 * After the events: the stream's own record (revision, snapshot) must agree with the last event
 * seen. Catches deleted tail events and a rewritten tail whose snapshot was left behind.
 */
async function checkTails(store: EventStore, cursors: StreamCursor[], findings: Findings): Promise<void> {
  const CHUNK = 256;
  for (let i = 0; i < cursors.length; i += CHUNK) {
    const chunk = cursors.slice(i, i + CHUNK);
    const loaded = await Promise.all(chunk.map((c) => store.loadStream(c.streamId)));
    for (let j = 0; j < chunk.length; j++) {
      const cursor = chunk[j];
      const stream = loaded[j];
      const lastSeen = cursor.next - 1;
      if (stream.revision !== undefined && stream.revision > lastSeen) {
        // Appended after the scan read the stream? Then the next revision is stored now.
        const [after] = await store.readStream(cursor.streamId, { fromRevision: cursor.next, maxCount: 1 });
        if (!(after && after.revision === cursor.next)) {
          findings.add({
            kind: 'truncated',
            streamId: cursor.streamId,
            revision: cursor.next,
            position: null,
            detail: `the stream is at revision ${stream.revision} but its last stored event is revision ${lastSeen}: ${stream.revision - lastSeen} event(s) deleted`,
          });
        }
        continue;
      }
      const snap = stream.snapshot;
      const chainHash = (snap?.state as { chainHash?: unknown } | null | undefined)?.chainHash;
      if (snap && snap.revision === lastSeen && typeof chainHash === 'string' && chainHash !== cursor.lastHash) {
        findings.add({
          kind: 'snapshot_mismatch',
          streamId: cursor.streamId,
          revision: lastSeen,
          position: cursor.lastPosition,
          expected: cursor.lastHash,
          actual: chainHash,
          detail: `the stream's snapshot was taken at hash ${short(chainHash)} but revision ${lastSeen} hashes to ${short(cursor.lastHash)}: the stream's events were rewritten`,
        });
      }
      if (snap && !findings.flagged.has(cursor.streamId)) await checkSnapshotState(store, cursor, snap, findings);
    }
  }
}

/**
 * Replays the stream up to the snapshot's revision with the aggregate's own evolve and compares the
 * result with the stored state: the command side decides from the snapshot, so an edited one (a
 * family un-revoked in SQL) would change decisions without touching a single event. Streams without
 * a snapshot (an anomaly before its triage) and snapshots of another state version (replaced on the next append)
 * are not checked.
 */
async function checkSnapshotState(store: EventStore, cursor: StreamCursor, snap: { state: unknown; revision: number }, findings: Findings): Promise<void> {
  const owner = aggregateOfStream(cursor.streamId);
  if (!owner || !isChainedSnapshot(snap.state)) return;
  const stored = snap.state.state as { v?: unknown } | null;
  let state = owner.aggregate.initial(owner.id);
  if (stored?.v !== state.v) return;
  const problem = (detail: string): ChainProblem => ({ kind: 'snapshot_mismatch', streamId: cursor.streamId, revision: snap.revision, position: null, detail });
  try {
    for await (const event of readStreamPaged(store, cursor.streamId)) {
      if (event.revision > snap.revision) break;
      state = owner.aggregate.evolve(state, toDomainEvent(event));
    }
  } catch (error) {
    findings.add(problem(`replaying the stream to revision ${snap.revision} failed (${(error as Error).message}): the snapshot cannot be confirmed`));
    return;
  }
  // Both sides through canonical JSON: the stored state went through JSON (and jsonb key order).
  const replayed = JSON.parse(canonicalJson(state)) as Record<string, unknown>;
  if (canonicalJson(replayed) === canonicalJson(stored)) return;
  const storedObj = (stored ?? {}) as Record<string, unknown>;
  const fields = [...new Set([...Object.keys(replayed), ...Object.keys(storedObj)])]
    .filter((k) => canonicalJson(replayed[k] ?? null) !== canonicalJson(storedObj[k] ?? null))
    .sort();
  findings.add(problem(`the stored snapshot at revision ${snap.revision} is not what replaying the stream gives (differs in: ${fields.join(', ') || 'shape'}): the snapshot was edited`));
}

function report(findings: Findings, streams: number, events: number, headPosition: number, keyed: boolean): VerifyReport {
  const problems = [...findings.problems].sort((a, b) => (a.position ?? Number.MAX_SAFE_INTEGER) - (b.position ?? Number.MAX_SAFE_INTEGER));
  return {
    ok: findings.count === 0,
    streams,
    events,
    unchained: findings.unchained,
    keyed,
    unkeyed: findings.unkeyed,
    headPosition,
    problems,
    problemCount: findings.count,
    firstProblem: problems[0] ?? null,
  };
}

const newCursor = (streamId: string): StreamCursor => ({ streamId, next: 0, lastHash: null, lastPosition: 0, chained: false });

/**
 * Verifies one stream (`familyId` or `streamId`) in revision order, or every stream (`all`) in
 * global position order up to the head position at the start. Returns null when a single stream
 * does not exist at all.
 */
export async function verifyChain(store: EventStore, target: VerifyTarget, options: VerifyOptions = {}): Promise<VerifyReport | null> {
  const findings = new Findings(options.maxProblems ?? 100);
  const headPosition = await store.headPosition();

  if (!('all' in target)) {
    const streamId = 'familyId' in target ? familyStreamId(target.familyId) : target.streamId;
    const cursor = newCursor(streamId);
    let events = 0;
    for await (const event of readStreamPaged(store, streamId, { pageSize: options.pageSize })) {
      checkEvent(cursor, event, findings, options, false);
      events++;
      if (events % 1000 === 0) options.onProgress?.({ events, position: event.position, headPosition });
    }
    if (events === 0) {
      const loaded = await store.loadStream(streamId);
      if (loaded.revision === undefined) return null;
      findings.add({ kind: 'truncated', streamId, revision: 0, position: null, detail: `the stream is at revision ${loaded.revision} but none of its events are stored` });
      return report(findings, 1, 0, headPosition, options.macKey !== undefined);
    }
    await checkTails(store, [cursor], findings);
    options.onProgress?.({ events, position: cursor.lastPosition, headPosition });
    return report(findings, 1, events, headPosition, options.macKey !== undefined);
  }

  const cursors = new Map<string, StreamCursor>();
  let events = 0;
  for await (const page of readAllPages(store, { until: headPosition, pageSize: options.pageSize })) {
    for (const event of page) {
      let cursor = cursors.get(event.streamId);
      if (!cursor) cursors.set(event.streamId, (cursor = newCursor(event.streamId)));
      checkEvent(cursor, event, findings, options, true);
    }
    events += page.length;
    options.onProgress?.({ events, position: page[page.length - 1].position, headPosition });
  }
  for (const cursor of cursors.values()) {
    for (const gap of cursor.gaps ?? []) findings.add(missing(cursor.streamId, gap.from, gap.to, gap.position));
  }
  await checkTails(store, [...cursors.values()], findings);
  return report(findings, cursors.size, events, headPosition, options.macKey !== undefined);
}

/** One line naming a problem, for logs and the CLI. */
export function describeProblem(p: ChainProblem): string {
  const where = `${p.streamId} revision ${p.revision}${p.position === null ? '' : ` (position ${p.position})`}`;
  return `${p.kind.replace('_', ' ')} at ${where}: ${p.detail}`;
}
