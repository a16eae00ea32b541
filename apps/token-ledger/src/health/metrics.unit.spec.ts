import { LedgerMetrics } from './metrics';

const value = (text: string, series: string) => new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1];

describe('LedgerMetrics', () => {
  it('the relay reports add up; the behind gauges are read at scrape time and survive a store that cannot be read', async () => {
    const metrics = new LedgerMetrics();
    let behind: () => Promise<number> = async () => 4.5;
    metrics.behindSeconds = async (position) => (position === undefined ? 0 : behind());
    expect(value(await metrics.registry.metrics(), 'token_ledger_relay_behind_seconds')).toBe('0'); // relay not running here
    metrics.relayProgress({ published: 3, position: 10, aliveAt: 1_700_000_000_000 });
    metrics.relayProgress({ published: 2, position: 12, aliveAt: 1_700_000_001_000 });
    metrics.anomalyPosition = 7;
    let text = await metrics.registry.metrics();
    expect(value(text, 'token_ledger_relay_published_total')).toBe('5');
    expect(value(text, 'token_ledger_relay_last_publish_timestamp_seconds')).toBe('1700000001');
    expect(value(text, 'token_ledger_relay_behind_seconds')).toBe('4.5');
    expect(value(text, 'token_ledger_anomaly_behind_seconds')).toBe('4.5');
    behind = async () => {
      throw new Error('connection refused');
    };
    text = await metrics.registry.metrics();
    expect(value(text, 'token_ledger_relay_behind_seconds')).toBe('4.5');
  });

  it('refresh results follow the status class; revocation reasons outside the known set are other', async () => {
    const metrics = new LedgerMetrics();
    metrics.countRefresh('rotated', 200);
    metrics.countRefresh('slow_down', 429);
    metrics.countRefresh('temporarily_unavailable', 503);
    metrics.countAppended([{ type: 'TokenFamilyRevoked', data: { reason: 'made_up' } } as never, { type: 'SubjectRevoked', data: { reason: 'anomaly', familyIds: [] } } as never]);
    const text = await metrics.registry.metrics();
    expect(value(text, 'token_ledger_refresh_total{outcome="rotated",result="success"}')).toBe('1');
    expect(value(text, 'token_ledger_refresh_total{outcome="slow_down",result="rejected"}')).toBe('1');
    expect(value(text, 'token_ledger_refresh_total{outcome="temporarily_unavailable",result="error"}')).toBe('1');
    expect(value(text, 'token_ledger_revocations_total{scope="family",reason="other"}')).toBe('1');
    expect(value(text, 'token_ledger_revocations_total{scope="subject",reason="anomaly"}')).toBe('1');
  });
});
