import { PassThrough, Writable } from 'node:stream';
import { formatFamilyId } from '@token-ledger/domain';
import { familyStreamId, toPublicEvent } from '@token-ledger/envelope';
import { exportAllNdjson, writeChunk, writeNdjson } from './ndjson';
import { append, ev, T0, S } from './testing/fixtures';
import { MemoryEventStore } from '@token-ledger/event-store';

const FAM = formatFamilyId(Buffer.alloc(16, 5));

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _e: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

describe('NDJSON export', () => {
  it('writes every event once, in position order, one public event per line, page by page', async () => {
    const store = new MemoryEventStore();
    for (let g = 1; g <= 7; g++) await append(store, familyStreamId(FAM), [g === 1 ? ev.issued(FAM, 'alice', T0) : ev.rotated(FAM, 'alice', T0 + g * S, g)]);
    const out = new Sink();
    const progress: number[] = [];
    const result = await exportAllNdjson(store, out, { pageSize: 3, onProgress: (p) => progress.push(p.events) });
    expect(result).toEqual({ events: 7, headPosition: 7 });
    expect(progress).toEqual([3, 6, 7]);
    const lines = out.text.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual((await store.readAll()).map((e) => JSON.parse(JSON.stringify(toPublicEvent(e)))));
    const windowed = new Sink();
    await exportAllNdjson(store, windowed, { after: 2, until: 4 });
    expect(windowed.text.trimEnd().split('\n').map((l) => JSON.parse(l).position)).toEqual([3, 4]);
  });

  it('the parsing path (a store without readAllJsonText) keeps an occurredAt window and reports events read', async () => {
    const store = new MemoryEventStore();
    for (let g = 1; g <= 6; g++) await append(store, familyStreamId(FAM), [g === 1 ? ev.issued(FAM, 'alice', T0) : ev.rotated(FAM, 'alice', T0 + g * S, g)]);
    const out = new Sink();
    const progress: { events: number; read: number }[] = [];
    const result = await exportAllNdjson(store, out, { pageSize: 4, occurred: { from: T0 + 3 * S, to: T0 + 5 * S }, onProgress: ({ events, read }) => progress.push({ events, read }) });
    expect(out.text.trimEnd().split('\n').map((l) => JSON.parse(l).data.generation)).toEqual([3, 4, 5]);
    expect(result).toEqual({ events: 3, headPosition: 6 });
    expect(progress).toEqual([
      { events: 2, read: 4 },
      { events: 3, read: 6 },
    ]);
    const filtered = new Sink();
    await exportAllNdjson(store, filtered, { filter: (e) => e.type === 'TokenFamilyIssued' });
    expect(filtered.text.trimEnd().split('\n')).toHaveLength(1);
  });

  it('writeNdjson batches lines and returns the count', async () => {
    const store = new MemoryEventStore();
    await append(store, familyStreamId(FAM), [ev.issued(FAM, 'alice', T0), ev.rotated(FAM, 'alice', T0 + S, 2)]);
    async function* events() {
      for (const e of await store.readAll()) yield toPublicEvent(e);
    }
    const out = new Sink();
    expect(await writeNdjson(out, events(), 1)).toBe(2);
    expect(out.text.split('\n')).toHaveLength(3);
  });

  it('waits for drain, and rejects instead of hanging when the output closes', async () => {
    const slow = new PassThrough({ highWaterMark: 4 });
    const pending = writeChunk(slow, 'more than four bytes');
    expect(pending).toBeInstanceOf(Promise);
    slow.resume(); // the reader catches up
    await expect(pending).resolves.toBeUndefined();

    const stuck = new PassThrough({ highWaterMark: 4 });
    const waiting = writeChunk(stuck, 'more than four bytes')!;
    stuck.destroy();
    await expect(waiting).rejects.toMatchObject({ code: 'EPIPE' });
    await expect(writeChunk(stuck, 'x')).rejects.toMatchObject({ code: 'EPIPE' });
  });
});
