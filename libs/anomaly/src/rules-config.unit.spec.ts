import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DEFAULT_RULES, loadRulesFile, parseRulesConfig, RulesFileError } from './rules-config';

describe('rules file', () => {
  it('merges a partial file over the defaults', () => {
    const rules = parseRulesConfig({
      rules: {
        impossible_travel: { maxSpeedKmh: 1000, action: 'revoke_family' },
        refresh_burst: { perFamily: { max: 3 } },
        device_change: { enabled: false },
      },
    });
    expect(rules.impossible_travel).toEqual({ ...DEFAULT_RULES.impossible_travel, maxSpeedKmh: 1000, action: 'revoke_family' });
    expect(rules.refresh_burst.perFamily).toEqual({ enabled: true, max: 3, windowSeconds: 60 });
    expect(rules.refresh_burst.perSubject).toEqual(DEFAULT_RULES.refresh_burst.perSubject);
    expect(rules.device_change.enabled).toBe(false);
    expect(rules.geo_mismatch).toEqual(DEFAULT_RULES.geo_mismatch);
  });

  it('keeps SPEC §5 defaults: 900 km/h ignoring hops under 100 km, 10 refreshes a minute per family', () => {
    expect(DEFAULT_RULES.impossible_travel).toMatchObject({ maxSpeedKmh: 900, minDistanceKm: 100 });
    expect(DEFAULT_RULES.refresh_burst.perFamily).toMatchObject({ max: 10, windowSeconds: 60 });
  });

  it('reports every problem at once, each with its path', () => {
    let caught: RulesFileError | undefined;
    try {
      parseRulesConfig(
        {
          rules: {
            impossible_travl: {},
            impossible_travel: { maxSpeedKmh: -5, speed: 3 },
            geo_mismatch: { severity: 'huge', action: 'ban' },
            refresh_burst: { perFamily: { max: 0, windowSeconds: 'x', burst: 1 } },
            device_change: { enabled: 'yes' },
          },
          extra: 1,
        },
        'candidate.json',
      );
    } catch (error) {
      caught = error as RulesFileError;
    }
    expect(caught).toBeInstanceOf(RulesFileError);
    expect(caught!.message).toContain('candidate.json');
    expect(caught!.problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('extra: unknown top-level key'),
        expect.stringContaining('rules.impossible_travl: unknown rule'),
        expect.stringContaining('rules.impossible_travel.maxSpeedKmh: expected a number'),
        expect.stringContaining('rules.impossible_travel.speed: unknown field'),
        expect.stringContaining('rules.geo_mismatch.severity: expected one of low, medium, high, critical'),
        expect.stringContaining('rules.geo_mismatch.action: expected one of alert, revoke_family, revoke_subject'),
        expect.stringContaining('rules.refresh_burst.perFamily.max'),
        expect.stringContaining('rules.refresh_burst.perFamily.windowSeconds'),
        expect.stringContaining('rules.refresh_burst.perFamily.burst: unknown field'),
        expect.stringContaining('rules.device_change.enabled: expected true or false'),
      ]),
    );
    expect(caught!.problems).toHaveLength(10);
  });

  it('refuses what is not a rules document', () => {
    expect(() => parseRulesConfig([])).toThrow(RulesFileError);
    expect(() => parseRulesConfig({ rules: { reuse_detected: 3 } })).toThrow(/rules.reuse_detected: expected an object/);
  });

  it('names the file when it is missing or not JSON', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tl-rules-'));
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, '{ "rules": ');
    expect(() => loadRulesFile(bad)).toThrow(/bad\.json[\s\S]*not valid JSON/);
    expect(() => loadRulesFile(path.join(dir, 'missing.json'))).toThrow(/missing\.json[\s\S]*cannot read the file/);
    const good = path.join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ rules: { geo_mismatch: { severity: 'high' } } }));
    expect(loadRulesFile(good).geo_mismatch.severity).toBe('high');
  });
});
