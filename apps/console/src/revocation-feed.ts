/**
 * The live revocation feed (GET /v1/revocations/stream). EventSource cannot send an Authorization
 * header, so the stream is read with fetch and parsed by eventsource-parser; on a drop it
 * reconnects with Last-Event-ID, waiting as the server's `retry:` says (bounded backoff).
 * Records arrive as JWS; the console shows their payload (decodeJwt) and does not verify them —
 * it displays, it does not enforce.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { decodeJwt } from 'jose';
import type { Api } from './api';

export interface RevocationItem {
  familyId: string;
  reason: string;
  revokedAt: string;
  position: number;
  jti?: string;
}

export interface FeedHandlers {
  onRevocation(item: RevocationItem): void;
  onState(state: 'connecting' | 'live' | 'reconnecting' | 'forbidden'): void;
}

export function openRevocationFeed(api: Api, handlers: FeedHandlers): () => void {
  const controller = new AbortController();
  let lastEventId: string | undefined;
  let retryMs = 1000;
  let failures = 0;

  const onEvent = (message: EventSourceMessage) => {
    if (message.id) lastEventId = message.id;
    if (message.event === 'ready') handlers.onState('live');
    if (message.event !== 'revocation') return;
    try {
      const p = decodeJwt(message.data) as Record<string, unknown>;
      handlers.onRevocation({
        familyId: String(p.familyId ?? ''),
        reason: String(p.reason ?? ''),
        revokedAt: String(p.revokedAt ?? ''),
        position: Number(p.position ?? message.id ?? 0),
        jti: typeof p.jti === 'string' ? p.jti : undefined,
      });
    } catch {
      /* not a JWS: skip the record, keep the stream */
    }
  };

  (async () => {
    while (!controller.signal.aborted) {
      handlers.onState(failures === 0 ? 'connecting' : 'reconnecting');
      try {
        const res = await api.stream('/v1/revocations/stream', lastEventId ? { 'last-event-id': lastEventId } : {}, controller.signal);
        if (res.status === 401 || res.status === 403) {
          handlers.onState('forbidden');
          return;
        }
        if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`);
        const parser = createParser({ onEvent, onRetry: (ms) => (retryMs = ms) });
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        failures = 0;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.feed(value);
        }
      } catch {
        if (controller.signal.aborted) return;
      }
      failures++;
      const wait = Math.min(30_000, retryMs * 2 ** Math.min(failures - 1, 5));
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  })();

  return () => controller.abort();
}
