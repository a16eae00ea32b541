import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { outboxStats } from '@token-ledger/signals';
import type { SqlQueryable } from '@token-ledger/event-store';

/** SSF delivery metrics (docs/metrics.md); no stream ids as labels (unbounded). */
export class SsfMetrics {
  readonly written: Counter;
  readonly pushes: Counter<'outcome'>;
  readonly deliveryDelay: Histogram;
  readonly polls: Counter<'outcome'>;

  constructor(registry: Registry, sql: SqlQueryable) {
    this.written = new Counter({ name: 'token_ledger_ssf_outbox_written_total', help: 'SETs written to the SSF outbox (one per SET per stream)', registers: [registry] });
    this.pushes = new Counter({
      name: 'token_ledger_ssf_push_total',
      help: 'SSF push attempts by outcome: delivered (2xx), refused (400 from the receiver; not retried), retried (anything else)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    });
    this.deliveryDelay = new Histogram({
      name: 'token_ledger_ssf_delivery_delay_seconds',
      help: 'From a SET entering the outbox to its delivery (push 2xx)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    });
    this.polls = new Counter({
      name: 'token_ledger_ssf_poll_sets_total',
      help: 'SETs through the RFC 8936 poll endpoint by outcome: returned, acked, set_error (the receiver reported an error)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    });
    let last: Promise<{ pending: number; oldestSeconds: number; refused: number }> | undefined;
    // One query per scrape for the three gauges; the last value while the database cannot be read.
    const sample = () => (last ??= outboxStats(sql).finally(() => setImmediate(() => (last = undefined))));
    new Gauge({
      name: 'token_ledger_ssf_outbox_pending',
      help: 'SETs in the SSF outbox not yet delivered (push) or acknowledged (poll), paused streams included',
      registers: [registry],
      async collect() {
        await sample().then((s) => this.set(s.pending), () => undefined);
      },
    });
    new Gauge({
      name: 'token_ledger_ssf_outbox_oldest_seconds',
      help: 'Age of the oldest pending SET in the SSF outbox (0 when empty)',
      registers: [registry],
      async collect() {
        await sample().then((s) => this.set(s.oldestSeconds), () => undefined);
      },
    });
    new Gauge({
      name: 'token_ledger_ssf_outbox_refused',
      help: 'SETs receivers refused (HTTP 400), kept in the outbox for inspection',
      registers: [registry],
      async collect() {
        await sample().then((s) => this.set(s.refused), () => undefined);
      },
    });
  }
}
