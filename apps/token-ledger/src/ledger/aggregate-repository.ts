import type { LedgerEvent } from '@token-ledger/domain';
import { WrongExpectedRevisionError, type EventStore } from '@token-ledger/event-store';
import { toDomainEvent, toNewEvent, type CommandMetadata } from './event-envelope';

export interface Aggregate<S extends { v: number }, E extends LedgerEvent> {
  streamPrefix: string;
  initial(id: string): S;
  evolve(state: S, event: E): S;
}

export interface Loaded<S> {
  state: S;
  /** Stream revision the state reflects; undefined when the stream does not exist. */
  revision: number | undefined;
}

/** How often a decision is re-made after losing an optimistic-concurrency race before giving up. */
const MAX_ATTEMPTS = 50;

export class ConcurrencyExhaustedError extends Error {
  constructor(streamId: string) {
    super(`gave up on ${streamId} after ${MAX_ATTEMPTS} concurrency conflicts`);
  }
}

/**
 * Load → decide → append with expected revision, re-reading and re-deciding on a conflict. This is
 * the only way commands change state, so every decision is made on the latest stored state.
 */
export class AggregateRepository<S extends { v: number }, E extends LedgerEvent> {
  constructor(
    private readonly store: EventStore,
    private readonly aggregate: Aggregate<S, E>,
    private readonly onRetry: () => void = () => undefined,
  ) {}

  streamId(id: string): string {
    return `${this.aggregate.streamPrefix}${id}`;
  }

  async load(id: string): Promise<Loaded<S>> {
    const loaded = await this.store.loadStream(this.streamId(id));
    const snap = loaded.snapshot;
    let state: S;
    let events = loaded.events;
    if (snap && (snap.state as S | null)?.v === this.aggregate.initial(id).v) {
      state = snap.state as S;
    } else if (snap) {
      // A snapshot of an older shape: replay the whole stream instead (rare, after an upgrade).
      state = this.aggregate.initial(id);
      events = await this.store.readStream(this.streamId(id));
    } else {
      state = this.aggregate.initial(id);
    }
    for (const e of events) state = this.aggregate.evolve(state, toDomainEvent<E>(e));
    return { state, revision: loaded.revision };
  }

  /**
   * Runs `decide` on the current state and appends what it returns. `appendAny` marks decisions that
   * only record something (a rejected refresh) and must not fail, or make others fail, on a race.
   */
  async execute<R>(
    id: string,
    meta: CommandMetadata,
    decide: (state: S) => { events: E[]; result: R; appendAny?: boolean },
  ): Promise<{ result: R; state: S; position?: number }> {
    for (let attempt = 1; ; attempt++) {
      const { state, revision } = await this.load(id);
      const { events, result, appendAny } = decide(state);
      if (events.length === 0) return { result, state };
      const next = events.reduce((s, e) => this.aggregate.evolve(s, e), state);
      try {
        const appended = await this.store.append(
          this.streamId(id),
          events.map((e) => toNewEvent(e, meta)),
          appendAny
            ? { expectedRevision: 'any' }
            : { expectedRevision: revision ?? 'no_stream', snapshot: next },
        );
        return { result, state: next, position: appended.position };
      } catch (error) {
        if (!(error instanceof WrongExpectedRevisionError) || attempt >= MAX_ATTEMPTS) {
          if (error instanceof WrongExpectedRevisionError) throw new ConcurrencyExhaustedError(this.streamId(id));
          throw error;
        }
        this.onRetry();
        // A short random pause spreads out a thundering herd on one stream.
        if (attempt > 2) await new Promise((r) => setTimeout(r, Math.random() * attempt));
      }
    }
  }
}
