import type { ReadAllOptions, RecordedEvent } from './event-store';
import { PollingSubscription, SubscriptionSource, WakeHub } from './polling-subscription';

/** An in-memory $all whose reads can be made to fail; no wake-ups unless a test sends them. */
class FakeSource implements SubscriptionSource {
  events: RecordedEvent[] = [];
  readAllOfTypes?: SubscriptionSource['readAllOfTypes'];
  failReads = 0;
  reads = 0;

  add(count: number): void {
    for (let i = 0; i < count; i++) {
      const position = this.events.length + 1;
      this.events.push({
        eventId: `e${position}`,
        type: 'T',
        data: {},
        metadata: {},
        streamId: 's',
        revision: position - 1,
        position,
        recordedAt: new Date(0),
      });
    }
  }

  async readAll({ after = 0, maxCount = Infinity }: ReadAllOptions): Promise<RecordedEvent[]> {
    this.reads++;
    if (this.failReads > 0) {
      this.failReads--;
      throw new Error('connection refused');
    }
    return this.events.filter((e) => e.position > after).slice(0, maxCount);
  }

  async headPosition(): Promise<number> {
    return this.events.length;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(2);
  }
}

describe('PollingSubscription', () => {
  let warn: jest.SpyInstance;
  beforeEach(() => (warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined)));
  afterEach(() => warn.mockRestore());

  it('types: a typed read that stopped short of the head (a bounded scan) is followed at once, not at the next wake-up', async () => {
    const source = new FakeSource();
    source.add(100);
    source.events[41].type = 'Wanted';
    source.events[97].type = 'Wanted';
    const span = 10; // positions one typed read looks at, like TYPED_SCAN_SPAN
    const typedReads: number[] = [];
    source.readAllOfTypes = async ({ after, maxCount, types }) => {
      typedReads.push(after);
      const head = source.events.length;
      const bound = Math.min(head, after + span);
      const events = source.events.filter((e) => e.position > after && e.position <= bound && types.includes(e.type)).slice(0, maxCount);
      if (events.length >= maxCount) return { events, scannedTo: events[events.length - 1].position, more: true };
      return { events, scannedTo: bound, more: bound < head };
    };
    const seen: number[] = [];
    const passed: number[] = [];
    // No wake-ups and a poll far away: only `more` can carry it to the head.
    const subscription = new PollingSubscription(source, new WakeHub(), async (e) => void seen.push(e.position), {
      types: ['Wanted'],
      onPassed: (p) => void passed.push(p),
      pollIntervalMs: 600_000,
    });
    try {
      await subscription.caughtUp;
      await waitFor(() => subscription.position === 100);
      expect(seen).toEqual([42, 98]);
      expect(typedReads).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
      expect(passed[passed.length - 1]).toBe(100);
      expect(source.reads).toBe(0); // the untyped read was never used
    } finally {
      await subscription.close();
    }
  });

  it('wakeDelayMs: appends woken about within the delay are read once, together, when the delay is over', async () => {
    // Virtual time: the delay is measured exactly, whatever the machine's load.
    jest.useFakeTimers();
    try {
      const source = new FakeSource();
      const hub = new WakeHub();
      const seen: number[] = [];
      const sub = new PollingSubscription(source, hub, async (e) => void seen.push(e.position), { pollIntervalMs: 60_000, wakeDelayMs: 40 });
      await sub.caughtUp;
      const before = source.reads;
      for (let i = 0; i < 5; i++) {
        source.add(1);
        hub.wake();
        await jest.advanceTimersByTimeAsync(2);
      }
      // 10 ms after the first wake-up, then 39: nothing read yet.
      await jest.advanceTimersByTimeAsync(29);
      expect({ reads: source.reads - before, seen }).toEqual({ reads: 0, seen: [] });
      // 40 ms after it: one read, all five.
      await jest.advanceTimersByTimeAsync(1);
      expect({ reads: source.reads - before, seen }).toEqual({ reads: 1, seen: [1, 2, 3, 4, 5] });
      const closing = sub.close();
      await jest.advanceTimersByTimeAsync(0);
      await closing;
    } finally {
      jest.useRealTimers();
    }
  });

  it('wakeDelayMs as a function is asked at each wake-up: 0 reads at once, else after its delay', async () => {
    jest.useFakeTimers();
    try {
      const source = new FakeSource();
      const hub = new WakeHub();
      const seen: number[] = [];
      let prompt = false;
      const sub = new PollingSubscription(source, hub, async (e) => void seen.push(e.position), { pollIntervalMs: 60_000, wakeDelayMs: () => (prompt ? 0 : 100) });
      await sub.caughtUp;
      source.add(1);
      hub.wake();
      await jest.advanceTimersByTimeAsync(99);
      expect(seen).toEqual([]);
      await jest.advanceTimersByTimeAsync(1);
      expect(seen).toEqual([1]);
      prompt = true;
      source.add(1);
      hub.wake();
      await jest.advanceTimersByTimeAsync(1); // prompt: read at once
      expect(seen).toEqual([1, 2]);
      source.add(1);
      hub.wake();
      await jest.advanceTimersByTimeAsync(1);
      expect(seen).toEqual([1, 2, 3]);
      const closing = sub.close();
      await jest.advanceTimersByTimeAsync(0);
      await closing;
    } finally {
      jest.useRealTimers();
    }
  });

  it('pages through the backlog, then picks up new events by the fallback poll alone', async () => {
    const source = new FakeSource();
    source.add(10);
    const seen: number[] = [];
    const sub = new PollingSubscription(source, new WakeHub(), async (e) => void seen.push(e.position), {
      batchSize: 3,
      pollIntervalMs: 20,
    });
    await sub.caughtUp;
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    source.add(2);
    await waitFor(() => seen.length === 12);
    expect(sub.position).toBe(12);
    await sub.close();
  });

  it('reacts to a wake-up without waiting for the poll', async () => {
    const source = new FakeSource();
    const hub = new WakeHub();
    const seen: number[] = [];
    const sub = new PollingSubscription(source, hub, async (e) => void seen.push(e.position), { pollIntervalMs: 60_000 });
    await sub.caughtUp;
    source.add(1);
    hub.wake();
    await waitFor(() => seen.length === 1, 500);
    await sub.close();
    expect(hub.size).toBe(0);
  });

  it('retries failed reads instead of dying, and warns once', async () => {
    const source = new FakeSource();
    source.add(3);
    source.failReads = 3;
    const errors: unknown[] = [];
    const seen: number[] = [];
    const sub = new PollingSubscription(source, new WakeHub(), async (e) => void seen.push(e.position), {
      pollIntervalMs: 5,
      onError: (error) => errors.push(error),
    });
    await sub.caughtUp;
    expect(seen).toEqual([1, 2, 3]);
    expect(errors).toEqual([]);
    expect(warn).toHaveBeenCalledTimes(1);
    await sub.close();
  });

  it('rejects caughtUp when closed before catching up, without an unhandled rejection', async () => {
    const source = new FakeSource();
    source.add(5);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const sub = new PollingSubscription(source, new WakeHub(), () => gate, { pollIntervalMs: 5 });
    await sleep(10);
    const closing = sub.close();
    release();
    await closing;
    await expect(sub.caughtUp).rejects.toThrow(/closed before it caught up/);
    expect(sub.position).toBe(1);
  });

  it('does not read or deliver after close()', async () => {
    jest.useFakeTimers();
    try {
      const source = new FakeSource();
      const seen: number[] = [];
      const sub = new PollingSubscription(source, new WakeHub(), async (e) => void seen.push(e.position), { pollIntervalMs: 5 });
      await sub.caughtUp;
      // Polling runs while open...
      const open = source.reads;
      await jest.advanceTimersByTimeAsync(50);
      expect(source.reads).toBeGreaterThan(open);
      await sub.close();
      const reads = source.reads;
      source.add(3);
      // ...and not at all after close: 200 poll intervals of virtual time.
      await jest.advanceTimersByTimeAsync(1_000);
      expect(source.reads).toBe(reads);
      expect(seen).toEqual([]);
    } finally {
      jest.useRealTimers();
    }
  });
});
