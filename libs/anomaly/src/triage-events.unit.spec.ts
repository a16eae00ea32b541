import { AnomalyEngine, type RuleContext } from './engine';
import { observe } from './observation';
import { DEFAULT_RULES } from './rules-config';
import { MemoryStateStore } from './state';
import { EventScript } from './testing/events';

/**
 * An analyst's AnomalyAcknowledged / AnomalyDismissed carries the anomaly's family and subject and
 * the analyst's own address: the engine must not take it for a use of the family (the analyst's
 * office would look like impossible travel) nor keep any state for it.
 */
describe('anomaly engine and triage events', () => {
  const ctx: RuleContext = { rules: DEFAULT_RULES, locate: () => ({ latitude: 0, longitude: 0, countryCode: 'XX', city: 'X', country: 'X' }) as never };

  it('ignores AnomalyAcknowledged and AnomalyDismissed entirely', async () => {
    const s = new EventScript();
    const triage = ['AnomalyAcknowledged', 'AnomalyDismissed'].map((type) => {
      const e = s.event(type, 'fam_a', { anomalyId: 'anm_1', by: 'api-key:key_1', note: null });
      return { ...e, metadata: { ...e.metadata, context: { ip: '198.51.100.77', userAgent: 'Mozilla/5.0 console' } } };
    });
    for (const e of triage) expect(observe(e).kind).toBe('other');
    const store = new MemoryStateStore();
    const engine = new AnomalyEngine(store, ctx);
    const { detections, commit } = await engine.evaluate([s.issued('fam_a', { ip: '203.0.113.9' }), ...triage]);
    await commit();
    expect(detections).toEqual([]);
    const before = JSON.stringify([...store.states]);
    expect(store.states.size).toBeGreaterThan(0);
    const again = await engine.evaluate(triage);
    await again.commit();
    expect(again.detections).toEqual([]);
    expect(JSON.stringify([...store.states])).toBe(before);
  });
});
