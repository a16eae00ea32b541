import { isWithinRejectionInterval, MAX_REJECTION_SOURCES, mergeTallies, REJECTION_RECORD_INTERVAL_MS, tallyRejection, type RejectionTally } from './rejection-tally';

const T0 = Date.UTC(2026, 0, 1);
const forged = (i: number, ip?: string) => ({ reason: 'bad_secret' as const, presentedGeneration: i, context: ip ? { ip } : undefined, at: T0 + i });

describe('rejection tally', () => {
  it('counts per reason, keeps first and last time and the last generation and context', () => {
    let t: RejectionTally[] = [];
    t = tallyRejection(t, forged(3, '192.0.2.1'));
    t = tallyRejection(t, forged(1, '192.0.2.2'));
    t = tallyRejection(t, { reason: 'expired', presentedGeneration: 2, at: T0 + 2 });
    expect(t).toEqual([
      { reason: 'bad_secret', count: 2, from: T0 + 1, to: T0 + 3, presentedGeneration: 1, context: { ip: '192.0.2.2' }, sources: [{ ip: '192.0.2.1', count: 1 }, { ip: '192.0.2.2', count: 1 }], otherSources: 0 },
      { reason: 'expired', count: 1, from: T0 + 2, to: T0 + 2, presentedGeneration: 2, sources: [], otherSources: 1 },
    ]);
  });

  it('names at most MAX_REJECTION_SOURCES addresses; the rest are counted, none lost', () => {
    let t: RejectionTally[] = [];
    for (let i = 0; i < 1000; i++) t = tallyRejection(t, forged(i, `10.0.${i % 100}.1`));
    expect(t[0].sources).toHaveLength(MAX_REJECTION_SOURCES);
    expect(t[0].sources[0]).toEqual({ ip: '10.0.0.1', count: 10 });
    expect(t[0].sources.reduce((n, s) => n + s.count, 0) + t[0].otherSources).toBe(1000);
    expect(t[0].count).toBe(1000);
  });

  it('does not change its input', () => {
    const before = tallyRejection([], forged(1, '192.0.2.1'));
    const frozen = JSON.stringify(before);
    tallyRejection(before, forged(2, '192.0.2.1'));
    expect(JSON.stringify(before)).toBe(frozen);
  });

  it('merges a failed flush back without losing a count', () => {
    let a: RejectionTally[] = [];
    let b: RejectionTally[] = [];
    for (let i = 0; i < 40; i++) a = tallyRejection(a, forged(i, `10.1.0.${i}`));
    for (let i = 40; i < 50; i++) b = tallyRejection(b, forged(i, `10.2.0.${i}`));
    b = tallyRejection(b, { reason: 'revoked', presentedGeneration: 9, at: T0 + 60 });
    const m = mergeTallies(a, b);
    expect(m.map((t) => [t.reason, t.count])).toEqual([['bad_secret', 50], ['revoked', 1]]);
    expect(m[0].sources).toHaveLength(MAX_REJECTION_SOURCES);
    expect(m[0].sources.reduce((n, s) => n + s.count, 0) + m[0].otherSources).toBe(50);
    expect(m[0]).toMatchObject({ from: T0, to: T0 + 49, presentedGeneration: 49 });
  });

  it('the interval: from the last recorded refusal, end exclusive', () => {
    expect(isWithinRejectionInterval(undefined, T0)).toBe(false);
    expect(isWithinRejectionInterval(T0, T0 + REJECTION_RECORD_INTERVAL_MS - 1)).toBe(true);
    expect(isWithinRejectionInterval(T0, T0 + REJECTION_RECORD_INTERVAL_MS)).toBe(false);
  });
});
