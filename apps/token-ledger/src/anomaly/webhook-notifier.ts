import { Logger } from '@nestjs/common';

/** The anomaly as SPEC §3 shapes it (also the webhook's body). */
export interface PublicAnomaly {
  anomalyId: string;
  rule: string;
  severity: string;
  familyId: string | null;
  subject: string | null;
  detectedAt: string;
  evidence: Record<string, unknown>;
  action: string;
}

const MAX_QUEUE = 1000;
const ATTEMPTS = 3;
const TIMEOUT_MS = 5000;

/**
 * POSTs each new anomaly as JSON to LEDGER_ANOMALY_WEBHOOK_URL, off the detection path: a slow or
 * failing receiver never delays detection or revocation. Three attempts with backoff, then a log
 * line; a bounded queue drops (and logs) beyond 1000 waiting. The anomalies view, the Kafka topic
 * and the metric are the durable channels; the webhook is a convenience.
 */
export class WebhookNotifier {
  private readonly logger = new Logger('anomaly-webhook');
  private readonly queue: PublicAnomaly[] = [];
  private draining?: Promise<void>;

  constructor(
    private readonly url: string,
    private readonly retryDelayMs = 500,
  ) {}

  notify(anomaly: PublicAnomaly): void {
    if (this.queue.length >= MAX_QUEUE) {
      this.logger.error(`webhook queue full; dropping anomaly ${anomaly.anomalyId}`);
      return;
    }
    this.queue.push(anomaly);
    this.draining ??= this.drain().finally(() => (this.draining = undefined));
  }

  /** Resolves when everything queued so far was delivered or given up. */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    for (let next = this.queue.shift(); next; next = this.queue.shift()) {
      for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
        try {
          const res = await fetch(this.url, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(next),
            signal: AbortSignal.timeout(TIMEOUT_MS),
          });
          await res.body?.cancel();
          if (res.ok) break;
          throw new Error(`HTTP ${res.status}`);
        } catch (error) {
          if (attempt === ATTEMPTS) {
            this.logger.error(`webhook gave up on anomaly ${next.anomalyId} after ${ATTEMPTS} attempts: ${(error as Error).message}`);
          } else {
            await new Promise((r) => setTimeout(r, this.retryDelayMs * 4 ** (attempt - 1)));
          }
        }
      }
    }
  }
}
