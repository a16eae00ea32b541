import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { RevocationEntry } from './revocation-set';
import type { FeedStats, RejectReason } from './signed-records';

/** Reasons of records that are expiries, not revocations: their revokedAt is when the family expired, not when anything was sent. */
const EXPIRY_REASONS = new Set(['expired_idle', 'expired_absolute']);

/**
 * The verifier's metrics (M5: revocation propagation), registered on the Registry its user passes
 * in (VerifierOptions.registry); one verifier per registry, as the names are fixed.
 */
export class VerifierMetrics {
  private readonly delay: Histogram;
  private readonly applied: Counter;

  constructor(registry: Registry, feed: { ageSeconds: () => number; stats: () => FeedStats }) {
    this.delay = new Histogram({
      name: 'token_ledger_verifier_revocation_delay_seconds',
      help: "Time from a revocation at the ledger (its signed record's revokedAt) to it being applied in this verifier's revocation set; records read while bootstrapping and expiries are not observed",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.applied = new Counter({
      name: 'token_ledger_verifier_revocations_applied_total',
      help: 'Signed revocation records applied to the revocation set (bootstrap included)',
      registers: [registry],
    });
    new Gauge({
      name: 'token_ledger_verifier_feed_staleness_seconds',
      help: 'Seconds since the last valid signed heartbeat of the revocation feed (since the verifier started, until the first)',
      registers: [registry],
      collect() {
        this.set(feed.ageSeconds());
      },
    });
    // The feed's own tallies (FeedStats) are the source: the counter catches up with them at scrape.
    const counted: Record<string, number> = {};
    new Counter({
      name: 'token_ledger_verifier_rejected_records_total',
      help: 'Feed values ignored because their signature or shape failed, by reason (unsigned, bad_signature, unknown_key, wrong_type, malformed)',
      labelNames: ['reason'] as const,
      registers: [registry],
      collect() {
        for (const [reason, n] of Object.entries(feed.stats().rejected) as [RejectReason, number][]) {
          const delta = n - (counted[reason] ?? 0);
          if (delta > 0 || counted[reason] === undefined) this.inc({ reason }, Math.max(0, delta));
          counted[reason] = n;
        }
      },
    });
  }

  /** A record was applied; `live`: read after the bootstrap, so its delay is propagation, not history. */
  recordApplied(entry: RevocationEntry, live: boolean, now = Date.now()): void {
    this.applied.inc();
    if (!live || (entry.reason !== undefined && EXPIRY_REASONS.has(entry.reason))) return;
    const at = Date.parse(entry.revokedAt);
    if (Number.isFinite(at)) this.delay.observe(Math.max(0, now - at) / 1000);
  }
}
