/**
 * Given-events / when-command / then-events specifications for the pure deciders, after emmett's
 * DeciderSpecification:
 *
 *   spec.given(history).when(command).thenEvents([...]).thenResult({...}).thenState({...})
 *
 * The given state is the history folded with the decider's own evolve, so a spec says what happened
 * rather than building a state by hand. Everything is plain data (events, commands, outcome()), so
 * the same pieces compose into property tests. Pure: no I/O, no clock. Assertions use jest's expect.
 *
 * No method is called `then`: an object with one is a thenable, and returning it from a test (or
 * awaiting it) would call it with resolve/reject.
 */

/** A decider as a spec drives it: `result` is what the command answers besides its events. */
export interface SpecDecider<Command, Event, State, Result> {
  initialState(): State;
  decide(command: Command, state: State): { events: Event[]; result?: Result };
  evolve(state: State, event: Event): State;
}

/** What one command did, as plain data. */
export interface Outcome<Event, State, Result> {
  /** The state the command was decided on: the given history folded. */
  before: State;
  events: Event[];
  result: Result | undefined;
  /** `before` evolved by `events`. */
  state: State;
}

type ErrorClass = new (...args: never[]) => Error;

export interface DeciderSpec<Command, Event extends { type: string }, State, Result> {
  /** A history of events (default: none, the initial state). */
  given(events?: readonly Event[]): Given<Command, Event, State, Result>;
  /** `events` evolved onto `from` (default: the initial state). */
  fold(events: readonly Event[], from?: State): State;
}

export function deciderSpec<Command, Event extends { type: string }, State, Result = undefined>(
  decider: SpecDecider<Command, Event, State, Result>,
): DeciderSpec<Command, Event, State, Result> {
  const fold = (events: readonly Event[], from = decider.initialState()) => events.reduce((s, e) => decider.evolve(s, e), from);
  return {
    given: (events = []) => new Given(decider, [...events], fold(events)),
    fold,
  };
}

export class Given<Command, Event extends { type: string }, State, Result> {
  /** Built by deciderSpec().given(), Given.after() and When.next(). */
  constructor(
    private readonly decider: SpecDecider<Command, Event, State, Result>,
    /** The history, oldest first. */
    readonly events: readonly Event[],
    /** The history folded. */
    readonly state: State,
  ) {}

  /** The history extended by what each command decides, in order, each on the state before it. */
  after(...commands: Command[]): Given<Command, Event, State, Result> {
    return commands.reduce<Given<Command, Event, State, Result>>((given, command) => given.when(command).next(), this);
  }

  when(command: Command): When<Command, Event, State, Result> {
    return new When(this.decider, this, command);
  }
}

export class When<Command, Event extends { type: string }, State, Result> {
  private settled: { outcome: Outcome<Event, State, Result> } | { error: unknown } | undefined;

  constructor(
    private readonly decider: SpecDecider<Command, Event, State, Result>,
    private readonly given: Given<Command, Event, State, Result>,
    readonly command: Command,
  ) {}

  /** Decides once (later calls reuse it) and throws what decide threw. */
  outcome(): Outcome<Event, State, Result> {
    const settled = this.settle();
    if ('error' in settled) throw settled.error;
    return settled.outcome;
  }

  thenEvents(expected: readonly Event[]): this {
    expect(this.outcome().events).toEqual(expected);
    return this;
  }

  thenEventTypes(expected: readonly Event['type'][]): this {
    expect(this.outcome().events.map((e) => e.type)).toEqual(expected);
    return this;
  }

  thenNothingHappened(): this {
    return this.thenEvents([]);
  }

  thenResult(expected: Result | undefined): this {
    expect(this.outcome().result).toEqual(expected);
    return this;
  }

  /** The result has at least these properties (toMatchObject). */
  thenResultMatches(expected: Partial<NonNullable<Result>>): this {
    expect(this.outcome().result).toMatchObject(expected);
    return this;
  }

  /** The state after the command. */
  thenState(expected: State): this {
    expect(this.outcome().state).toEqual(expected);
    return this;
  }

  /** The state after the command has at least these properties (toMatchObject). */
  thenStateMatches(expected: Partial<State>): this {
    expect(this.outcome().state).toMatchObject(expected);
    return this;
  }

  /** Decide threw: an instance of each class given, with the properties of each object given. */
  thenThrows(...expected: Array<ErrorClass | object>): void {
    const settled = this.settle();
    if (!('error' in settled)) {
      throw new Error(`expected the command to throw, but it decided [${settled.outcome.events.map((e) => e.type).join(', ')}]`);
    }
    for (const x of expected) {
      if (typeof x === 'function') expect(settled.error).toBeInstanceOf(x);
      else expect(settled.error).toMatchObject(x);
    }
  }

  /** What follows: the history plus the events decided here. */
  next(): Given<Command, Event, State, Result> {
    const { events, state } = this.outcome();
    return new Given(this.decider, [...this.given.events, ...events], state);
  }

  private settle(): { outcome: Outcome<Event, State, Result> } | { error: unknown } {
    if (this.settled) return this.settled;
    const before = this.given.state;
    let decided: { events: Event[]; result?: Result };
    try {
      decided = this.decider.decide(this.command, before);
    } catch (error) {
      return (this.settled = { error });
    }
    const { events, result } = decided;
    return (this.settled = { outcome: { before, events, result, state: events.reduce((s, e) => this.decider.evolve(s, e), before) } });
  }
}
