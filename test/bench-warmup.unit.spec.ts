import { isSteady } from '../bench/refresh/stats';

// bench:refresh ends its warm-up when the rotation rate has stopped climbing (issue 17: a fixed
// 2 s warm-up measured the JVM's and V8's warm-up instead of the servers).
describe('bench:refresh steady warm-up', () => {
  it('needs n windows within ±tolerance of their mean, level with the n before', () => {
    expect(isSteady([100, 300, 1000, 990, 1010, 1000, 1020, 990], 3, 0.05)).toBe(true);
    expect(isSteady([1000, 1020, 990], 3, 0.05)).toBe(false);
  });

  it('is not steady while the rate still climbs, or with an idle window', () => {
    expect(isSteady([380, 420, 470, 500, 520, 540], 3, 0.05)).toBe(false);
    // each triple is within ±5 %, but the rate rose 12 % between them: still warming
    expect(isSteady([340, 350, 345, 385, 390, 388], 3, 0.05)).toBe(false);
    expect(isSteady([0, 0, 0, 0, 0, 0], 3, 0.05)).toBe(false);
    expect(isSteady([500, 500, 500, 500, 0, 500], 3, 0.05)).toBe(false);
  });
});
