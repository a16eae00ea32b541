/** A parsed Server-Sent Event (WHATWG HTML §9.2). Comments arrive as `{ comment }`. */
export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

export interface SseHandlers {
  onMessage(message: SseMessage): void;
  /** Any bytes from the server (events, keep-alive comments): the feed is alive. */
  onActivity?(): void;
}

/**
 * Opens one SSE connection and reads it until it ends or `signal` aborts. Resolves when the stream
 * ends; rejects on HTTP errors (the caller reconnects with the last id it saw).
 */
export async function readSse(url: string, headers: Record<string, string>, handlers: SseHandlers, signal: AbortSignal): Promise<void> {
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal });
  if (!res.ok || !res.body) throw new Error(`SSE ${url}: HTTP ${res.status}`);
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      handlers.onActivity?.();
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          if (data.length > 0) handlers.onMessage({ event: event || 'message', data: data.join('\n'), id });
          else if (id !== undefined) handlers.onMessage({ event: '', data: '', id });
          event = '';
          data = [];
          id = undefined;
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'event') event = val;
        else if (field === 'data') data.push(val);
        else if (field === 'id' && !val.includes('\0')) id = val;
      }
    }
  } finally {
    reader.releaseLock();
    await res.body.cancel().catch(() => undefined);
  }
}
