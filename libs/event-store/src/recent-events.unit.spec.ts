import type { RecordedEvent } from './event-store';
import { RecentEvents } from './recent-events';

const at = (position: number): RecordedEvent => ({ eventId: `e${position}`, type: 'T', data: { position }, metadata: {}, streamId: 's', revision: position, position, recordedAt: new Date(0) });
const positions = (events: RecordedEvent[] | undefined) => events?.map((e) => e.position);

describe('RecentEvents', () => {
  it('answers reads inside its run and at its end (nothing after), at most maxCount, with objects of its own', () => {
    const recent = new RecentEvents(100);
    recent.add([at(5), at(6)]);
    recent.add([at(7)]);
    expect(positions(recent.run(4, null))).toEqual([5, 6, 7]);
    expect(positions(recent.run(4, 2))).toEqual([5, 6]);
    expect(positions(recent.run(5, 10))).toEqual([6, 7]);
    expect(positions(recent.run(7, 10))).toEqual([]);
    const a = recent.run(4, 1)![0];
    a.position = 99;
    expect(recent.run(4, 1)![0].position).toBe(5);
  });

  it('never guesses: before its run, past its end, after a failed append, and across a gap it starts again', () => {
    const recent = new RecentEvents(100);
    expect(recent.run(0, null)).toBeUndefined();
    recent.add([at(5), at(6)]);
    expect(recent.run(3, null)).toBeUndefined(); // 4 is not known
    expect(recent.run(7, null)).toBeUndefined();
    recent.add([at(9)]); // 7 and 8 used up elsewhere: a new run
    expect(recent.run(5, null)).toBeUndefined();
    expect(positions(recent.run(8, null))).toEqual([9]);
    recent.forget();
    expect(recent.run(8, null)).toBeUndefined();
    expect(recent.run(9, null)).toBeUndefined();
  });

  it('keeps at least the newest `capacity` events', () => {
    const recent = new RecentEvents(2);
    for (let p = 1; p <= 5; p++) recent.add([at(p)]);
    expect(recent.run(0, null)).toBeUndefined();
    expect(positions(recent.run(3, null))).toEqual([4, 5]);
  });
});
