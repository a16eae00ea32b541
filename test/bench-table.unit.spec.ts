import { table } from '../bench/common/table';

// Every bench prints its results through this one table (bench/common/table.ts).
describe('bench table', () => {
  it('left-aligns the first columns, right-aligns the rest, rules the header, trims line ends', () => {
    expect(table(['target', 'n', 'note'], [['a', '1', ''], ['longer', '1000', 'x']])).toEqual([
      'target     n  note',
      '------  ----  ----',
      'a          1',
      'longer  1000     x',
    ]);
    expect(table(['a', 'b', 'c'], [['x', 'y', '1']], 2)).toEqual(['a  b  c', '-  -  -', 'x  y  1']);
  });
});
