/**
 * A small in-memory EventStore for the forensics unit tests (not part of the build). Rows are
 * exposed so tests can tamper with them the way someone with database access would.
 */
import type {
  AppendOptions,
  AppendResult,
  EventStore,
  LoadedStream,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  Subscription,
} from '@token-ledger/event-store';
import { WrongExpectedRevisionError } from '@token-ledger/event-store';

export class MemoryEventStore implements EventStore {
  /** Stored events in position order (tests may edit, delete or reorder them). */
  rows: RecordedEvent[] = [];
  streams = new Map<string, { revision: number; snapshot?: { state: unknown; revision: number } }>();
  private nextPosition = 1;
  /** Counts readAll/readStream calls (to check paging). */
  reads = 0;

  async append(streamId: string, events: NewEvent[], options: AppendOptions): Promise<AppendResult> {
    const stream = this.streams.get(streamId);
    const actual = stream?.revision;
    const e = options.expectedRevision;
    const ok = e === 'any' || (e === 'no_stream' ? actual === undefined : e === 'stream_exists' ? actual !== undefined : actual === e);
    if (!ok) throw new WrongExpectedRevisionError(streamId, e, actual);
    let revision = actual ?? -1;
    const positions: number[] = [];
    for (const event of events) {
      revision++;
      const position = this.nextPosition++;
      positions.push(position);
      this.rows.push({
        ...structuredClone({ eventId: event.eventId, type: event.type, data: event.data ?? null, metadata: event.metadata ?? {} }),
        streamId,
        revision,
        position,
        recordedAt: new Date(),
      });
    }
    const exact = typeof e === 'number' || e === 'no_stream';
    this.streams.set(streamId, {
      revision,
      snapshot: exact && options.snapshot !== undefined ? { state: structuredClone(options.snapshot), revision } : stream?.snapshot,
    });
    return { nextExpectedRevision: revision, position: positions[positions.length - 1], positions };
  }

  private sorted(): RecordedEvent[] {
    return [...this.rows].sort((a, b) => a.position - b.position);
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    this.reads++;
    let list = this.rows.filter((r) => r.streamId === streamId).sort((a, b) => a.revision - b.revision);
    if (options.direction === 'backwards') {
      list = list.reverse().filter((r) => options.fromRevision === undefined || r.revision <= options.fromRevision);
    } else {
      list = list.filter((r) => r.revision >= (options.fromRevision ?? 0));
    }
    return structuredClone(list.slice(0, options.maxCount ?? list.length));
  }

  async loadStream(streamId: string): Promise<LoadedStream> {
    const stream = this.streams.get(streamId);
    if (!stream) return { revision: undefined, events: [] };
    const after = stream.snapshot?.revision ?? -1;
    const events = (await this.readStream(streamId)).filter((r) => r.revision > after);
    return { revision: stream.revision, ...(stream.snapshot ? { snapshot: structuredClone(stream.snapshot) } : {}), events };
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    this.reads++;
    const list = this.sorted().filter((r) => r.position > (options.after ?? 0));
    return structuredClone(list.slice(0, options.maxCount ?? list.length));
  }

  async headPosition(): Promise<number> {
    return this.rows.reduce((max, r) => Math.max(max, r.position), 0);
  }

  subscribeToAll(): Subscription {
    throw new Error('not needed by these tests');
  }

  async ping(): Promise<void> {}
  async close(): Promise<void> {}
}
