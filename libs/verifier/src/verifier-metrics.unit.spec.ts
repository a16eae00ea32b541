import { Registry } from 'prom-client';
import type { FeedStats } from './signed-records';
import { VerifierMetrics } from './verifier-metrics';

const series = async (registry: Registry, name: string) => new RegExp(`^${name} (\\S+)$`, 'm').exec(await registry.metrics())?.[1];

describe('VerifierMetrics', () => {
  const stats: FeedStats = { records: 0, heartbeats: 0, tombstones: 0, rejected: { unsigned: 0, bad_signature: 0, unknown_key: 0, wrong_type: 0, malformed: 0 } };
  const until = new Date(Date.now() + 60_000).toISOString();

  it('observes the delay of live revocations only: not bootstrap history, not expiries', async () => {
    const registry = new Registry();
    const metrics = new VerifierMetrics(registry, { ageSeconds: () => 1.5, stats: () => stats });
    const now = Date.parse('2026-01-01T00:00:10.000Z');
    metrics.recordApplied({ familyId: 'f1', revokedAt: '2026-01-01T00:00:00.000Z', accessTokensValidUntil: until }, false, now); // bootstrap
    metrics.recordApplied({ familyId: 'f2', revokedAt: '2026-01-01T00:00:09.750Z', accessTokensValidUntil: until }, true, now);
    metrics.recordApplied({ familyId: 'f3', reason: 'expired_idle', revokedAt: '2026-01-01T00:00:00.000Z', accessTokensValidUntil: until }, true, now);
    expect(await series(registry, 'token_ledger_verifier_revocations_applied_total')).toBe('3');
    expect(await series(registry, 'token_ledger_verifier_revocation_delay_seconds_count')).toBe('1');
    expect(await series(registry, 'token_ledger_verifier_revocation_delay_seconds_sum')).toBe('0.25');
    expect(await series(registry, 'token_ledger_verifier_feed_staleness_seconds')).toBe('1.5');
  });

  it('counts rejected records by reason from the feed tallies, between scrapes', async () => {
    const registry = new Registry();
    const tallies = structuredClone(stats);
    new VerifierMetrics(registry, { ageSeconds: () => 0, stats: () => tallies });
    expect(await series(registry, 'token_ledger_verifier_rejected_records_total{reason="bad_signature"}')).toBe('0');
    tallies.rejected.bad_signature = 2;
    tallies.rejected.unsigned = 1;
    expect(await series(registry, 'token_ledger_verifier_rejected_records_total{reason="bad_signature"}')).toBe('2');
    tallies.rejected.bad_signature = 5;
    expect(await series(registry, 'token_ledger_verifier_rejected_records_total{reason="bad_signature"}')).toBe('5');
    expect(await series(registry, 'token_ledger_verifier_rejected_records_total{reason="unsigned"}')).toBe('1');
  });
});
