import type { LedgerEvent } from '@token-ledger/domain';
import { WrongExpectedRevisionError, type EventStore, type RecordedEvent } from '@token-ledger/event-store';
import {
  chainHashOf,
  inAppendSpan,
  isChainedSnapshot,
  sealEvents,
  toDomainEvent,
  toNewEvent,
  type Aggregate,
  type ChainedSnapshot,
  type CommandMetadata,
} from '@token-ledger/envelope';

export type { Aggregate, ChainedSnapshot } from '@token-ledger/envelope';

export interface Loaded<S> {
  state: S;
  /** Stream revision the state reflects; undefined when the stream does not exist. */
  revision: number | undefined;
  /** Hash of the stream's last event, which the next appended event links to; null for a new stream. */
  lastHash: string | null;
}

/** How often a decision is re-made after losing an optimistic-concurrency race before giving up. */
const MAX_ATTEMPTS = 50;
/**
 * Conflicts with appends that did not change the state (a rejected refresh recorded by someone
 * else) do not use up MAX_ATTEMPTS, so a flood of forged tokens cannot make a real rotation fail;
 * this only bounds the loop.
 */
const MAX_NEUTRAL_CONFLICTS = 1000;

/** What the repository tells its owner (metrics): races lost, given up on, and what was appended. */
export interface RepositoryObserver {
  /** `command`: the command that lost the race (`meta.command`, set by the command bus), or `other`. */
  retried?(command: string): void;
  exhausted?(command: string): void;
  appended?(events: readonly LedgerEvent[]): void;
}

export class ConcurrencyExhaustedError extends Error {
  constructor(streamId: string) {
    super(`gave up on ${streamId} after ${MAX_ATTEMPTS} concurrency conflicts`);
  }
}

/**
 * Load → decide → append with expected revision, re-reading and re-deciding on a conflict. This is
 * the only way commands change state, so every decision is made on the latest stored state. Every
 * append is chained (libs/envelope/src/hash-chain.ts): each event's metadata carries prevHash and
 * hash, and the snapshot keeps the last hash.
 */
export class AggregateRepository<S extends { v: number }, E extends LedgerEvent> {
  constructor(
    private readonly store: EventStore,
    private readonly aggregate: Aggregate<S, E>,
    private readonly observer: RepositoryObserver = {},
    /** The chain MAC key (from LEDGER_KEK): every appended event carries a headMac; none without it. */
    private readonly macKey?: Uint8Array,
  ) {}

  streamId(id: string): string {
    return `${this.aggregate.streamPrefix}${id}`;
  }

  async load(id: string): Promise<Loaded<S>> {
    const streamId = this.streamId(id);
    const loaded = await this.store.loadStream(streamId);
    const snap = loaded.snapshot;
    const initial = this.aggregate.initial(id);
    let state: S = initial;
    let lastHash: string | null = null;
    let events: RecordedEvent[] = loaded.events;
    if (snap && isChainedSnapshot(snap.state) && (snap.state.state as S | null)?.v === initial.v) {
      state = snap.state.state as S;
      lastHash = snap.state.chainHash;
    } else if (snap) {
      // A snapshot of an older shape (a bare state, or another state version): replay the whole
      // stream instead (rare, after an upgrade); the next append stores the current shape.
      events = await this.store.readStream(streamId);
    }
    for (const e of events) {
      state = this.aggregate.evolve(state, toDomainEvent<E>(e));
      lastHash = chainHashOf(e);
    }
    return { state, revision: loaded.revision, lastHash };
  }

  /**
   * Runs `decide` on the current state and appends what it returns, at exactly the revision it
   * decided on (so the previous event's hash is known). `recordOnly` marks decisions that only
   * record something (a rejected refresh): on a conflict they are simply re-decided, after giving
   * way to the competing writer.
   */
  async execute<R>(
    id: string,
    meta: CommandMetadata,
    decide: (state: S) => { events: E[]; result: R; recordOnly?: boolean },
    /** A load of this aggregate the caller started earlier (load(id)): the first attempt decides on it. */
    prefetched?: Promise<Loaded<S>>,
  ): Promise<{ result: R; state: S; position?: number }> {
    const streamId = this.streamId(id);
    let counted = 0;
    let neutral = 0;
    let lostWith: string | undefined; // the state a lost attempt decided on
    for (let first = prefetched; ; first = undefined) {
      const { state, revision, lastHash } = await (first ?? this.load(id));
      if (lostWith !== undefined) {
        if (JSON.stringify(state) === lostWith) neutral++;
        else counted++;
        if (counted >= MAX_ATTEMPTS || neutral >= MAX_NEUTRAL_CONFLICTS) {
          this.observer.exhausted?.(meta.command ?? 'other');
          throw new ConcurrencyExhaustedError(streamId);
        }
      }
      const { events, result, recordOnly } = decide(state);
      if (events.length === 0) return { result, state };
      const next = events.reduce((s, e) => this.aggregate.evolve(s, e), state);
      const firstRevision = revision === undefined ? 0 : revision + 1;
      const sealed = sealEvents(streamId, firstRevision, lastHash, events.map((e) => toNewEvent(e, meta)), { macKey: this.macKey });
      const snapshot: ChainedSnapshot<S> = { state: next, chainHash: sealed.lastHash };
      try {
        const appended = await inAppendSpan(streamId, sealed.events.length, () => this.store.append(streamId, sealed.events, { expectedRevision: revision ?? 'no_stream', snapshot }));
        this.observer.appended?.(events);
        return { result, state: next, position: appended.position };
      } catch (error) {
        if (!(error instanceof WrongExpectedRevisionError)) throw error;
        this.observer.retried?.(meta.command ?? 'other');
        lostWith = JSON.stringify(state);
        const attempt = counted + 1;
        if (recordOnly) {
          // Let the writer that beat us finish first: a rejection never holds up a real rotation.
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(attempt + 1, 10)));
        } else if (attempt > 2) {
          // A short random pause spreads out a thundering herd on one stream.
          await new Promise((r) => setTimeout(r, Math.random() * attempt));
        }
      }
    }
  }
}
