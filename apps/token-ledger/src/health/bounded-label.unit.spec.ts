import { BoundedLabel } from './bounded-label';

describe('BoundedLabel', () => {
  it('keeps the first N distinct values and maps every later one to _other, for good', () => {
    const label = new BoundedLabel(2);
    expect(['a', 'b', 'a', 'c', 'd', 'b'].map((v) => label.of(v))).toEqual(['a', 'b', 'a', '_other', '_other', 'b']);
    expect(label.of('c')).toBe('_other');
  });
});
