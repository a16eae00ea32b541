import { deciderSpec } from './decider-spec';

/** A counter: Add n records Added n (none for 0); a negative n is refused. Result: the new total. */
type Added = { type: 'Added'; n: number };
let decisions = 0;
const counter = deciderSpec({
  initialState: () => 0,
  evolve: (total: number, e: Added) => total + e.n,
  decide: (command: { add: number }, total: number) => {
    decisions++;
    if (command.add < 0) throw new RangeError('negative');
    const events: Added[] = command.add === 0 ? [] : [{ type: 'Added', n: command.add }];
    return { events, result: total + command.add };
  },
});

describe('deciderSpec', () => {
  it('folds the given history and decides on it', () => {
    counter
      .given([{ type: 'Added', n: 2 }])
      .when({ add: 3 })
      .thenEvents([{ type: 'Added', n: 3 }])
      .thenEventTypes(['Added'])
      .thenResult(5)
      .thenState(5);
    counter.given().when({ add: 0 }).thenNothingHappened().thenState(0);
  });

  it('extends the history with after() and next()', () => {
    const given = counter.given().after({ add: 1 }, { add: 2 });
    expect(given.events).toEqual([
      { type: 'Added', n: 1 },
      { type: 'Added', n: 2 },
    ]);
    expect(given.state).toBe(3);
    const next = given.when({ add: 4 }).next();
    expect(next.events).toHaveLength(3);
    expect(next.state).toBe(7);
    expect(counter.fold(next.events)).toBe(7);
  });

  it('decides once per when, and reports the outcome as plain data', () => {
    decisions = 0;
    const when = counter.given([{ type: 'Added', n: 1 }]).when({ add: 1 });
    when.thenResult(2).thenState(2);
    expect(when.outcome()).toEqual({ before: 1, events: [{ type: 'Added', n: 1 }], result: 2, state: 2 });
    expect(decisions).toBe(1);
  });

  it('fails when the expectation does not hold', () => {
    expect(() => counter.given().when({ add: 1 }).thenEvents([])).toThrow();
    expect(() => counter.given().when({ add: 1 }).thenThrows()).toThrow(/expected the command to throw, but it decided \[Added\]/);
    expect(() => counter.given().when({ add: -1 }).thenThrows(TypeError)).toThrow();
    expect(() => counter.given().when({ add: -1 }).outcome()).toThrow(RangeError);
    counter.given().when({ add: -1 }).thenThrows(RangeError, { message: 'negative' });
  });

  it('is not a thenable, so returning or awaiting a spec does not run it as a promise', async () => {
    const when = counter.given().when({ add: 1 });
    expect('then' in when).toBe(false);
    expect(await when).toBe(when);
  });
});
