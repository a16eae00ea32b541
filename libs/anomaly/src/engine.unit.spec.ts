import type { PublicEvent } from '@token-ledger/envelope';
import { AnomalyEngine, type RuleContext } from './engine';
import type { Detection } from './detection';
import { DEFAULT_RULES, parseRulesConfig } from './rules-config';
import { MemoryStateStore } from './state';
import { EventScript } from './testing/events';

/** Rules that need no geolocation; the travel rules are tested with the real database (geo-rules). */
const noGeo: RuleContext = { rules: DEFAULT_RULES, locate: () => undefined };

async function run(events: PublicEvent[], ctx: RuleContext = noGeo, store = new MemoryStateStore()): Promise<Detection[]> {
  const engine = new AnomalyEngine(store, ctx);
  const out: Detection[] = [];
  for (const e of events) {
    const { detections, commit } = await engine.evaluate([e]);
    await commit();
    out.push(...detections);
  }
  return out;
}

describe('anomaly engine (rules without geolocation)', () => {
  it('reuse_detected fires on TokenReuseDetected with the evidence', async () => {
    const s = new EventScript();
    const found = await run([s.issued('fam_a'), s.reused('fam_a', { ip: '203.0.113.9' })]);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({
      rule: 'reuse_detected',
      severity: 'high',
      action: 'alert',
      familyId: 'fam_a',
      subject: 'user-1',
      evidence: { presentedGeneration: 2, headGeneration: 5, ip: '203.0.113.9' },
    });
    expect(found[0].anomalyId).toMatch(/^anm_[0-9a-f]{32}$/);
  });

  describe('refresh_burst per family (default 10 a minute)', () => {
    it('10 refreshes in a minute is allowed; the 11th fires once', async () => {
      const s = new EventScript();
      const events = [s.issued('fam_a')];
      for (let g = 2; g <= 11; g++) events.push(s.advance(5).rotated('fam_a', {}, g));
      expect(await run([...events])).toEqual([]);
      const more = [...events];
      more.push(s.advance(5).rotated('fam_a', {}, 12)); // 11 refreshes within 55 s
      more.push(s.advance(1).rotated('fam_a', {}, 13)); // still bursting: quiet for one window
      const found = await run(more);
      expect(found.map((d) => [d.rule, d.scope])).toEqual([['refresh_burst', 'family']]);
      expect(found[0].evidence).toMatchObject({ count: 11, max: 10, windowSeconds: 60 });
    });

    it('11 refreshes spread over more than a minute never fire (near miss)', async () => {
      const s = new EventScript();
      const events = [s.issued('fam_a')];
      for (let g = 2; g <= 30; g++) events.push(s.advance(6).rotated('fam_a', {}, g)); // 10 per 60 s, never 11
      expect(await run(events)).toEqual([]);
    });

    it('grace replays count as refreshes', async () => {
      const s = new EventScript();
      const events = [s.issued('fam_a')];
      for (let i = 0; i < 11; i++) events.push(s.advance(1).replayed('fam_a'));
      expect((await run(events)).map((d) => d.rule)).toEqual(['refresh_burst']);
    });
  });

  it('refresh_burst per subject counts across the subject\'s families', async () => {
    const ctx: RuleContext = { rules: parseRulesConfig({ rules: { refresh_burst: { perSubject: { max: 5, windowSeconds: 60 } } } }), locate: () => undefined };
    const s = new EventScript();
    const events = [1, 2, 3].map((i) => s.issued(`fam_${i}`));
    for (let i = 0; i < 6; i++) events.push(s.advance(2).rotated(`fam_${(i % 3) + 1}`, {}, 2 + Math.floor(i / 3)));
    const found = await run(events, ctx);
    expect(found.map((d) => [d.rule, d.scope, d.scopeKey])).toEqual([['refresh_burst', 'subject', 'user-1']]);
  });

  describe('failed_refresh_storm', () => {
    const ctx: RuleContext = {
      rules: parseRulesConfig({ rules: { failed_refresh_storm: { perSubject: { max: 3, windowSeconds: 60 }, perIp: { max: 4, windowSeconds: 60 } } } }),
      locate: () => undefined,
    };

    it('fires per subject past the limit, not at it', async () => {
      const s = new EventScript();
      const three = [s.issued('fam_a'), ...[1, 2, 3].map(() => s.advance(5).rejected('fam_a'))];
      expect(await run(three, ctx)).toEqual([]);
      const found = await run([...three, s.advance(5).rejected('fam_a')], ctx);
      expect(found.map((d) => [d.rule, d.scope])).toEqual([['failed_refresh_storm', 'subject']]);
    });

    it('fires per IP across subjects', async () => {
      const s = new EventScript();
      const events = ['u1', 'u2', 'u3', 'u4', 'u5'].map((u, i) => s.advance(1).rejected(`fam_${i}`, { ip: '198.51.100.7' }, u));
      const found = await run(events, ctx);
      expect(found.map((d) => [d.rule, d.scope, d.scopeKey])).toEqual([['failed_refresh_storm', 'ip', '198.51.100.7']]);
    });
  });

  describe('failed_refresh_storm with a revoke action: forgeries alone never revoke (SPEC §2 rule 4)', () => {
    const ctx: RuleContext = {
      rules: parseRulesConfig({
        rules: { failed_refresh_storm: { action: 'revoke_subject', perSubject: { max: 3, windowSeconds: 60 }, perIp: { max: 4, windowSeconds: 60 } } },
      }),
      locate: () => undefined,
    };

    it('a flood of forgeries fires alert-only, per subject and per IP, and says which action it withheld', async () => {
      const s = new EventScript();
      const events = [s.issued('fam_a'), ...Array.from({ length: 20 }, () => s.advance(1).rejected('fam_a', { ip: '198.51.100.7' }))];
      const found = await run(events, ctx);
      expect(found.map((d) => [d.scope, d.action])).toEqual([
        ['subject', 'alert'],
        ['ip', 'alert'],
      ]);
      expect(found[0].evidence).toMatchObject({ count: 4, realFailures: 0, actionWithheld: 'revoke_subject' });
    });

    it('real tokens failing (expired, revoked) do revoke, also after a forgery storm within its quiet window', async () => {
      const s = new EventScript();
      const real = [s.issued('fam_a'), ...[1, 2, 3, 4].map(() => s.advance(1).refused('fam_a', 'expired'))];
      expect((await run(real, ctx)).map((d) => [d.scope, d.action])).toEqual([['subject', 'revoke_subject']]);

      const t = new EventScript();
      const mixed = [t.issued('fam_b'), ...[1, 2, 3, 4].map(() => t.advance(1).rejected('fam_b'))];
      mixed.push(...[1, 2, 3].map(() => t.advance(1).refused('fam_b', 'revoked')), t.advance(1).refused('fam_b', 'expired'));
      const found = await run(mixed, ctx);
      expect(found.map((d) => [d.scope, d.action, d.evidence.realFailures])).toEqual([
        ['subject', 'alert', 0],
        ['subject', 'revoke_subject', 4],
      ]);
    });

    it('an aggregated record counts by its count, and each named address by its own', async () => {
      const s = new EventScript();
      const found = await run(
        [
          s.issued('fam_a'),
          s.advance(10).tallied('fam_a', 500, [
            { ip: '198.51.100.7', count: 450 },
            { ip: '203.0.113.9', count: 3 },
          ]),
        ],
        ctx,
      );
      expect(found.map((d) => [d.scope, d.scopeKey, d.action, d.evidence.count])).toEqual([
        ['subject', 'user-1', 'alert', 500],
        ['ip', '198.51.100.7', 'alert', 450],
      ]);
      // Aggregated refusals of real tokens are real failures.
      const t = new EventScript();
      const real = await run([t.issued('fam_b'), t.advance(10).tallied('fam_b', 9, [{ ip: '192.0.2.4', count: 9 }], 'revoked')], ctx);
      expect(real.map((d) => [d.scope, d.action])).toEqual([
        ['subject', 'revoke_subject'],
        ['ip', 'revoke_subject'],
      ]);
    });

    it('refusals of a DPoP-bound family without its key count like forgeries: a storm of them only alerts', async () => {
      const s = new EventScript();
      const found = await run([s.issued('fam_a'), s.advance(10).tallied('fam_a', 500, [{ ip: '198.51.100.7', count: 500 }], 'dpop_key_mismatch')], ctx);
      expect(found.map((d) => [d.scope, d.action, d.evidence.realFailures])).toEqual([
        ['subject', 'alert', 0],
        ['ip', 'alert', 0],
      ]);
    });

    it('a redelivered aggregated record is not counted twice', async () => {
      const s = new EventScript();
      const store = new MemoryStateStore();
      const e = s.advance(1).tallied('fam_a', 3, [{ ip: '198.51.100.7', count: 3 }]);
      expect(await run([s.issued('fam_a'), e, e], ctx, store)).toEqual([]);
    });
  });

  describe('device_change', () => {
    const chrome = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36';
    it('fires when the device id changes within a family', async () => {
      const s = new EventScript();
      const found = await run([s.issued('fam_a', { deviceId: 'dev-1' }), s.advance(60).rotated('fam_a', { deviceId: 'dev-2' })]);
      expect(found.map((d) => [d.rule, d.evidence])).toEqual([['device_change', { deviceId: { from: 'dev-1', to: 'dev-2' } }]]);
    });

    it('fires when the user-agent family changes, not on a browser update', async () => {
      const s = new EventScript();
      const update = await run([s.issued('fam_a', { userAgent: chrome }), s.rotated('fam_a', { userAgent: chrome.replace('130.0.0.0', '131.0.1.2') })]);
      expect(update).toEqual([]);
      const t = new EventScript();
      const found = await run([t.issued('fam_a', { userAgent: chrome }), t.rotated('fam_a', { userAgent: 'curl/8.5.0' })]);
      expect(found.map((d) => d.evidence)).toEqual([{ userAgentFamily: { from: 'Chrome on Windows', to: 'curl on other' } }]);
    });

    it('a missing value is not a change; other families are not compared', async () => {
      const s = new EventScript();
      const found = await run([s.issued('fam_a', { deviceId: 'dev-1' }), s.rotated('fam_a'), s.issued('fam_b', { deviceId: 'dev-2' }), s.rotated('fam_a', { deviceId: 'dev-1' }, 3)]);
      expect(found).toEqual([]);
    });
  });

  it('a disabled rule never fires', async () => {
    const ctx: RuleContext = { rules: parseRulesConfig({ rules: { reuse_detected: { enabled: false } } }), locate: () => undefined };
    const s = new EventScript();
    expect(await run([s.issued('fam_a'), s.reused('fam_a')], ctx)).toEqual([]);
  });

  it('is idempotent: a redelivered batch yields the same ids and counts nothing twice', async () => {
    const s = new EventScript();
    const events = [s.issued('fam_a', { deviceId: 'a' })];
    for (let g = 2; g <= 12; g++) events.push(s.advance(1).rotated('fam_a', { deviceId: 'a' }, g));
    events.push(s.reused('fam_a'));
    const store = new MemoryStateStore();
    const engine = new AnomalyEngine(store, noGeo);
    const first = await engine.evaluate(events);
    await first.commit();
    const again = await engine.evaluate(events.slice(3)); // Kafka redelivers part of it
    await again.commit();
    expect(first.detections.map((d) => d.rule).sort()).toEqual(['refresh_burst', 'reuse_detected']);
    expect(again.detections).toEqual([]);
    // The same events through fresh state decide the same anomaly ids (restart before the commit).
    const replay = await new AnomalyEngine(new MemoryStateStore(), noGeo).evaluate(events);
    expect(replay.detections.map((d) => d.anomalyId)).toEqual(first.detections.map((d) => d.anomalyId));
  });

  it('drops a family\'s track when the family ends, and keeps windows across batches', async () => {
    const s = new EventScript();
    const store = new MemoryStateStore();
    await run([s.issued('fam_a', { deviceId: 'x' })], noGeo, store);
    expect(store.states.has('f:fam_a')).toBe(true);
    await run([s.revoked('fam_a')], noGeo, store);
    expect(store.states.has('f:fam_a')).toBe(false);
  });
});
