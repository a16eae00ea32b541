import { quiet, slide } from './window';
import type { Mark } from './state';

describe('sliding window', () => {
  const s = (n: number) => n * 1000;

  it('counts marks in (at - window, at] and keeps at most max + 1', () => {
    let marks: Mark[] = [];
    let count = 0;
    for (let i = 0; i < 15; i++) ({ marks, count } = slide(marks, [s(i), i + 1], 10, 60));
    expect(count).toBe(11); // capped: max + 1 is all the rule needs to know
    expect(marks).toHaveLength(11);
    ({ marks, count } = slide(marks, [s(200), 99], 10, 60));
    expect(count).toBe(1); // everything older than 60 s fell out
  });

  it('a mark exactly one window old is out', () => {
    const { count } = slide([[0, 1]], [s(60), 2], 10, 60);
    expect(count).toBe(1);
    expect(slide([[1, 1]], [s(60), 2], 10, 60).count).toBe(2);
  });

  it('does not count a position twice (redelivery), in any order', () => {
    let r = slide([], [s(5), 7], 10, 60);
    r = slide(r.marks, [s(3), 4], 10, 60);
    const again = slide(r.marks, [s(5), 7], 10, 60);
    expect(again.duplicate).toBe(true);
    expect(again.marks).toEqual([[s(3), 4], [s(5), 7]]);
    expect(again.count).toBe(2);
  });

  it('stays quiet for one window after firing', () => {
    expect(quiet(undefined, s(10), 60)).toBe(false);
    expect(quiet(s(10), s(69), 60)).toBe(true);
    expect(quiet(s(10), s(70), 60)).toBe(false);
  });
});

describe('sliding window with weighted marks (aggregated refusals)', () => {
  const s = (n: number) => n * 1000;

  it('counts a mark by its weight and keeps only the marks needed to know "more than max"', () => {
    let r = slide([], [s(1), 1], 10, 60);
    r = slide(r.marks, [s(2), 2, 500], 10, 60);
    // It alone passes max: older marks are not needed (and no longer counted: "more than max" is all it tells).
    expect(r.marks).toEqual([[s(2), 2, 500]]);
    expect(r.count).toBe(500);
    r = slide(r.marks, [s(70), 3], 10, 60);
    expect(r.count).toBe(1);
  });

  it('keeps at most max + 1 marks, and a heavy mark is not counted twice', () => {
    let r = slide([], [s(1), 1, 3], 10, 60);
    for (let i = 2; i < 30; i++) r = slide(r.marks, [s(i), i], 10, 60);
    expect(r.marks.length).toBeLessThanOrEqual(11);
    const again = slide([[s(1), 1, 3]], [s(1), 1, 3], 10, 60);
    expect(again).toMatchObject({ duplicate: true, count: 3 });
  });
});
