/**
 * NDJSON export: one public event (SPEC §3 shape) per line, written with back-pressure so memory
 * stays at about one page whatever the size of the history.
 */
import type { Writable } from 'node:stream';
import type { EventStore } from '@token-ledger/event-store';
import { toPublicEvent, type PublicEvent } from './envelope';
import { readAllPages } from './read';

/**
 * Writes a chunk, waiting for 'drain' when the destination's buffer is full. Rejects (instead of
 * waiting forever) when the destination fails or closes, e.g. EPIPE when `| head` has had enough.
 */
export function writeChunk(out: Writable, chunk: string): Promise<void> | undefined {
  if (out.destroyed) return Promise.reject(closedError());
  if (out.write(chunk)) return undefined;
  return new Promise((resolve, reject) => {
    const done = (error?: Error) => {
      out.off('drain', onDrain);
      out.off('error', onError);
      out.off('close', onClose);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => done();
    const onError = (error: Error) => done(error);
    const onClose = () => done(closedError());
    out.once('drain', onDrain);
    out.once('error', onError);
    out.once('close', onClose);
  });
}

function closedError(): Error {
  return Object.assign(new Error('output closed'), { code: 'EPIPE' });
}

/** Writes public events as NDJSON, batching lines into chunks of about `chunkEvents` events. */
export async function writeNdjson(out: Writable, events: AsyncIterable<PublicEvent>, chunkEvents = 500): Promise<number> {
  let buffer = '';
  let inBuffer = 0;
  let count = 0;
  for await (const event of events) {
    buffer += `${JSON.stringify(event)}\n`;
    count++;
    if (++inBuffer >= chunkEvents) {
      await writeChunk(out, buffer);
      buffer = '';
      inBuffer = 0;
    }
  }
  if (buffer) await writeChunk(out, buffer);
  return count;
}

export interface ExportOptions {
  /** Exclusive lower bound on position (default 0). */
  after?: number;
  /** Inclusive upper bound on position (default: the head when the export starts). */
  until?: number;
  pageSize?: number;
  /** Keep only these events (e.g. a time range). */
  filter?: (event: PublicEvent) => boolean;
  onProgress?: (progress: { events: number; position: number; headPosition: number }) => void;
}

/** Every event of the store in global order as NDJSON (`replay --all --format ndjson`). */
export async function exportAllNdjson(store: EventStore, out: Writable, options: ExportOptions = {}): Promise<{ events: number; headPosition: number }> {
  const headPosition = options.until ?? (await store.headPosition());
  let events = 0;
  for await (const page of readAllPages(store, { after: options.after, until: headPosition, pageSize: options.pageSize })) {
    let chunk = '';
    for (const recorded of page) {
      const event = toPublicEvent(recorded);
      if (options.filter && !options.filter(event)) continue;
      chunk += `${JSON.stringify(event)}\n`;
      events++;
    }
    if (chunk) await writeChunk(out, chunk);
    options.onProgress?.({ events, position: page[page.length - 1].position, headPosition });
  }
  return { events, headPosition };
}
