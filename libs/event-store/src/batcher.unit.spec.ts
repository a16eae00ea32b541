import { Batcher } from './batcher';

describe('Batcher', () => {
  it('sends a lone request at once and groups the ones that arrive while a batch runs', async () => {
    const batches: number[][] = [];
    let release: () => void = () => undefined;
    const batcher = new Batcher<number, number>(
      async (items) => {
        batches.push(items);
        if (batches.length === 1) await new Promise<void>((r) => (release = r));
        return items.map((i) => ({ status: 'fulfilled', value: i * 2 }) as const);
      },
      { maxInFlight: 1, maxBatch: 3 },
    );
    const first = batcher.submit(1);
    const rest = [2, 3, 4, 5].map((i) => batcher.submit(i));
    expect(batches).toEqual([[1]]);
    release();
    expect(await Promise.all([first, ...rest])).toEqual([2, 4, 6, 8, 10]);
    expect(batches).toEqual([[1], [2, 3, 4], [5]]);
  });

  it('settles each caller with its own result or error, and survives a failed batch', async () => {
    let fail = true;
    const batcher = new Batcher<number, number>(
      async (items) => {
        if (fail) {
          fail = false;
          throw new Error('batch failed');
        }
        return items.map((i) => (i % 2 ? { status: 'fulfilled', value: i } : { status: 'rejected', reason: new Error(`odd one out ${i}`) }));
      },
      { maxInFlight: 1, maxBatch: 10 },
    );
    await expect(batcher.submit(1)).rejects.toThrow('batch failed');
    const [a, b] = await Promise.allSettled([batcher.submit(3), batcher.submit(4)]);
    expect(a).toEqual({ status: 'fulfilled', value: 3 });
    expect(b).toMatchObject({ status: 'rejected', reason: new Error('odd one out 4') });
  });
});

describe("Batcher with gather: 'immediate'", () => {
  it('sends the requests of one turn of the event loop as one batch, even with nothing in flight', async () => {
    const batches: number[][] = [];
    const batcher = new Batcher<number, number>(
      async (items) => {
        batches.push(items);
        return items.map((i) => ({ status: 'fulfilled', value: i + 1 }) as const);
      },
      { maxInFlight: 1, maxBatch: 10, gather: 'immediate' },
    );
    const first = [1, 2, 3].map((i) => batcher.submit(i));
    expect(batches).toEqual([]);
    expect(await Promise.all(first)).toEqual([2, 3, 4]);
    expect(await batcher.submit(4)).toBe(5);
    expect(batches).toEqual([[1, 2, 3], [4]]);
  });


  it("sends a refresh's loads as one batch when a request handler starts them from a macrotask, the second after promise hops", async () => {
    const batches: number[][] = [];
    const batcher = new Batcher<number, number>(
      async (items) => {
        batches.push(items);
        return items.map((i) => ({ status: 'fulfilled', value: i * 10 }) as const);
      },
      { maxInFlight: 2, maxBatch: 10, gather: 'immediate' },
    );
    // As an HTTP handler runs: synchronously inside an I/O callback (here a timer), not inside a
    // promise job. The family load starts, then the client's after the rate limiter's awaits. A
    // process.nextTick gather sent [1] and [2] apart here.
    const loads = await new Promise<[Promise<number>, Promise<number>]>((resolve) =>
      setTimeout(() => {
        const family = batcher.submit(1);
        const client = (async () => {
          for (let hop = 0; hop < 8; hop++) await Promise.resolve();
          return batcher.submit(2);
        })();
        resolve([family, client]);
      }, 0),
    );
    expect(await Promise.all(loads)).toEqual([10, 20]);
    expect(batches).toEqual([[1, 2]]);
  });
});
