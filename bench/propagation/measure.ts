import { performance } from 'node:perf_hooks';

import { VerifyError, type Verifier } from '@token-ledger/verifier';

import type { Family, RunningLedger } from './ledger';

export const TRANSPORTS = ['kafka', 'sse'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/** One measured revocation. Delays are ms from the revoke response to the first rejection; null = timed out. */
export interface Sample {
  familyId: string;
  /** Epoch ms (performance.timeOrigin + now(), fractional) at which the revoke response had arrived. */
  answeredAt: number;
  /** POST …/revoke round trip (request sent → whole response received), ms. */
  revokeMs: number;
  kafkaMs: number | null;
  sseMs: number | null;
  /** verify() polls per transport until the rejection (or the bound). */
  kafkaPolls: number;
  ssePolls: number;
  /** Filled in after the run from the records' timestamps (see stages.ts); epoch ms. */
  relayedAt?: number;
  propagatedAt?: number;
}

export interface MeasureOptions {
  concurrency: number;
  pollMs: number;
  timeoutMs: number;
  progress: (line: string, final?: boolean) => void;
  label: string;
  /** Stop starting new revocations once this many timed out (keeps a broken run short). */
  maxTimeouts: number;
}

export interface MeasureResult {
  samples: Sample[];
  /** Families whose revoke did not answer 200, with the reason. */
  revokeErrors: string[];
  /** verify() outcomes other than "accepted" and token_revoked while polling (e.g. feed_unavailable). */
  otherOutcomes: Record<string, number>;
  wallMs: number;
  /** Stopped early after maxTimeouts timed-out revocations. */
  aborted: boolean;
}

const immediate = () => new Promise<void>((r) => setImmediate(r));
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * verify() the token until it rejects with token_revoked; returns the instant (performance.now())
 * of that rejection, or null once `deadline` has passed. Anything else verify() says is counted.
 */
async function pollUntilRejected(
  verifier: Verifier,
  token: string,
  deadline: number,
  pollMs: number,
  outcomes: Record<string, number>,
): Promise<{ at: number | null; polls: number }> {
  let polls = 0;
  for (;;) {
    polls++;
    try {
      await verifier.verify(token);
    } catch (err) {
      const at = performance.now();
      if (err instanceof VerifyError && err.code === 'token_revoked') return { at, polls };
      const kind = err instanceof VerifyError ? err.code : 'error';
      outcomes[kind] = (outcomes[kind] ?? 0) + 1;
    }
    if (performance.now() >= deadline) return { at: null, polls };
    await (pollMs === 0 ? immediate() : pause(pollMs));
  }
}

/** Both verifiers must accept a token before its family is revoked, else the measurement means nothing. */
async function expectAccepted(verifier: Verifier, transport: Transport, family: Family): Promise<void> {
  try {
    await verifier.verify(family.accessToken);
  } catch (err) {
    throw new Error(`the ${transport} verifier rejects the access token of ${family.familyId} before its revocation: ${(err as Error).message}`);
  }
}

/**
 * For each family (at most `concurrency` at a time): check both verifiers accept its access token,
 * POST /v1/families/{id}/revoke, take the instant the response has arrived, then poll each verifier's
 * verify(accessToken) until it rejects with token_revoked (bounded by `timeoutMs`). The delay per
 * transport = rejection instant − response instant.
 */
export async function measure(
  ledger: RunningLedger,
  verifiers: Record<Transport, Verifier>,
  families: Family[],
  opts: MeasureOptions,
): Promise<MeasureResult> {
  const samples: Sample[] = [];
  const revokeErrors: string[] = [];
  const otherOutcomes: Record<string, number> = {};
  let next = 0;
  let done = 0;
  let timeouts = 0;
  const started = performance.now();

  const one = async (family: Family): Promise<void> => {
    await expectAccepted(verifiers.kafka, 'kafka', family);
    await expectAccepted(verifiers.sse, 'sse', family);
    const sent = performance.now();
    const res = await ledger.revoke(family.familyId);
    const answered = performance.now();
    if (res.status !== 200 || !res.body.includes('"revoked":true')) {
      revokeErrors.push(`${family.familyId}: HTTP ${res.status} ${res.body.slice(0, 200)}`);
      return;
    }
    const deadline = answered + opts.timeoutMs;
    const [kafka, sse] = await Promise.all([
      pollUntilRejected(verifiers.kafka, family.accessToken, deadline, opts.pollMs, otherOutcomes),
      pollUntilRejected(verifiers.sse, family.accessToken, deadline, opts.pollMs, otherOutcomes),
    ]);
    if (kafka.at === null || sse.at === null) timeouts++;
    samples.push({
      familyId: family.familyId,
      answeredAt: performance.timeOrigin + answered,
      revokeMs: answered - sent,
      kafkaMs: kafka.at === null ? null : kafka.at - answered,
      sseMs: sse.at === null ? null : sse.at - answered,
      kafkaPolls: kafka.polls,
      ssePolls: sse.polls,
    });
  };

  const workers = Array.from({ length: Math.min(opts.concurrency, families.length) }, async () => {
    while (next < families.length && timeouts < opts.maxTimeouts) {
      const family = families[next++];
      await one(family);
      done++;
      opts.progress(`${opts.label}: ${done}/${families.length} revoked${timeouts ? `, ${timeouts} timed out` : ''}`, done === families.length);
    }
  });
  await Promise.all(workers);
  return { samples, revokeErrors, otherOutcomes, wallMs: performance.now() - started, aborted: next < families.length };
}
