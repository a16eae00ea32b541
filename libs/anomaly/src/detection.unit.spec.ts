import { anomalyIdOf, mostSevereFirst, type Detection } from './detection';
import type { Severity } from './rules-config';

function detection(rule: Detection['rule'], severity: Severity, key: string): Detection {
  return {
    rule,
    scope: 'family',
    scopeKey: key,
    evidence: {},
    anomalyId: anomalyIdOf(rule, 'family', key, `evt-${key}`),
    severity,
    action: 'alert',
    familyId: key,
    subject: `sub-${key}`,
    clientId: 'client-a',
    trigger: { eventId: `evt-${key}`, position: 1, occurredAt: '2026-11-23T00:00:00.000Z' },
  };
}

describe('mostSevereFirst', () => {
  it('puts the most severe detections of a batch in a group of their own, ahead of the rest', () => {
    const wave = Array.from({ length: 5 }, (_, i) => detection('refresh_burst', 'medium', `f${i}`));
    const reuse = detection('reuse_detected', 'high', 'probe');
    const device = detection('device_change', 'low', 'f9');
    const groups = mostSevereFirst([...wave.slice(0, 3), reuse, device, ...wave.slice(3)]);
    expect(groups.map((g) => g.map((d) => d.scopeKey))).toEqual([['probe'], ['f0', 'f1', 'f2', 'f9', 'f3', 'f4']]);
  });

  it('keeps one group when every detection is equally severe, and none for an empty batch', () => {
    const same = [detection('refresh_burst', 'medium', 'a'), detection('geo_mismatch', 'medium', 'b')];
    expect(mostSevereFirst(same)).toEqual([same]);
    expect(mostSevereFirst([])).toEqual([]);
  });

  it('ranks critical above high', () => {
    const groups = mostSevereFirst([detection('reuse_detected', 'high', 'h'), detection('impossible_travel', 'critical', 'c')]);
    expect(groups.map((g) => g.map((d) => d.scopeKey))).toEqual([['c'], ['h']]);
  });
});
