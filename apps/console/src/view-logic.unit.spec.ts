import type { LedgerEvent } from './api';
import { generations, sliderStops, stopIndex } from './chain';
import { parseRoute, href } from './route';
import { label } from './format';

const ev = (type: string, occurredAt: string, data: Record<string, unknown>): LedgerEvent =>
  ({ eventId: `${type}-${occurredAt}`, type, familyId: 'fam_x', subject: 's', clientId: 'c', occurredAt, position: 0, data, metadata: {} }) as LedgerEvent;

const history = [
  ev('TokenFamilyIssued', '2026-01-01T00:00:00.000Z', { generation: 1 }),
  ev('TokenRotated', '2026-01-01T00:01:00.000Z', { fromGeneration: 1, generation: 2 }),
  ev('TokenRotationReplayed', '2026-01-01T00:01:01.000Z', { presentedGeneration: 1, generation: 2 }),
  ev('RefreshRejected', '2026-01-01T00:01:30.000Z', { presentedGeneration: 2, reason: 'bad_secret', count: 3 }),
  ev('TokenRotated', '2026-01-01T00:02:00.000Z', { fromGeneration: 2, generation: 3 }),
  ev('TokenReuseDetected', '2026-01-01T00:03:00.000Z', { presentedGeneration: 1, headGeneration: 3 }),
  ev('TokenFamilyRevoked', '2026-01-01T00:03:00.000Z', { reason: 'reuse_detected' }),
];

describe('the chain of generations', () => {
  it('tells each generation’s fate and marks replays, rejections and reuse on the generation presented', () => {
    expect(generations(history)).toEqual([
      { generation: 1, issuedAt: '2026-01-01T00:00:00.000Z', fate: 'rotated', marks: [{ kind: 'replayed', count: 1 }, { kind: 'reuse', count: 1 }] },
      { generation: 2, issuedAt: '2026-01-01T00:01:00.000Z', fate: 'rotated', marks: [{ kind: 'rejected', count: 3 }] },
      { generation: 3, issuedAt: '2026-01-01T00:02:00.000Z', fate: 'revoked', marks: [] },
    ]);
  });

  it('stops the slider once per instant, so a reuse and the revocation it caused stay together', () => {
    const stops = sliderStops(history);
    expect(stops).toHaveLength(6);
    expect(stopIndex(stops, undefined)).toBe(6); // now
    expect(stopIndex(stops, '2026-01-01T00:02:30.000Z')).toBe(4); // after the second rotation, before the reuse
    expect(stopIndex(stops, '2025-12-31T00:00:00.000Z')).toBe(-1);
    expect(generations(history.filter((e) => Date.parse(e.occurredAt) <= Date.parse(stops[4]))).at(-1)?.fate).toBe('head');
  });
});

describe('hash routes', () => {
  it('round-trips a page, its id and its query', () => {
    expect(parseRoute(href('subject/a%2Fb c', { from: '2026-01-01T00:00:00Z', empty: '' }))).toEqual({ page: 'subject', id: 'a/b c', params: { from: '2026-01-01T00:00:00Z' } });
    expect(parseRoute('#/family/fam_abc?at=x')).toEqual({ page: 'family', id: 'fam_abc', params: { at: 'x' } });
    expect(parseRoute('')).toEqual({ page: 'overview', params: {} });
    expect(parseRoute('#/nope').page).toBe('not-found');
  });
});

describe('evidence labels', () => {
  it('reads as words, with units and acronyms', () => {
    expect(['speedKmh', 'deviceId', 'ip', 'lat', 'presented_generation'].map(label)).toEqual(['Speed (km/h)', 'Device ID', 'IP', 'Latitude', 'Presented generation']);
  });
});
