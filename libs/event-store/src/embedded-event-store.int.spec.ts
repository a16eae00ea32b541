import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EmbeddedEventStore } from './embedded-event-store';
import { describeEventStoreContract } from './event-store.contract';

describeEventStoreContract('embedded (PGlite)', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'token-ledger-es-'));
  let store = await EmbeddedEventStore.open({ dataDir });
  return {
    store,
    kv: store.kv,
    // A second instance on the same data dir is impossible by design (PGlite is single-process).
    reopen: async () => {
      await store.close();
      store = await EmbeddedEventStore.open({ dataDir });
      return { store, kv: store.kv };
    },
    cleanup: async () => {
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}, { keyValueStore: true, reopen: true, uniqueEventIds: true });

describe('EmbeddedEventStore.open', () => {
  it('creates a missing data dir and refuses to open the same dir twice', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'token-ledger-es-'));
    const dataDir = path.join(root, 'nested', 'data');
    const store = await EmbeddedEventStore.open({ dataDir });
    try {
      expect(fs.existsSync(dataDir)).toBe(true);
      await expect(EmbeddedEventStore.open({ dataDir })).rejects.toThrow(/already open/);
    } finally {
      await store.close();
      fs.rmSync(root, { recursive: true, force: true });
    }
  }, 60_000);

  it('describes its capabilities: SQL with the events in it (PGlite), no thread location', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'token-ledger-es-'));
    const store = await EmbeddedEventStore.open({ dataDir });
    try {
      expect(store.capabilities.sql).toBe(store.sql);
      expect(store.capabilities.eventsInSql?.engine).toBe('pglite');
      expect(store.capabilities.threadLocation).toBeUndefined();
      await store.append('s', [{ eventId: '7b0c1f0e-3f7e-4a47-9a0e-1c1b7f7f0002', type: 'T', data: { a: 1 }, metadata: {} }], { expectedRevision: 'no_stream' });
      expect(await store.capabilities.eventsInSql!.readAllJsonText({})).toEqual([
        { position: 1, eventId: '7b0c1f0e-3f7e-4a47-9a0e-1c1b7f7f0002', type: 'T', data: '{"a": 1}', metadata: '{}' },
      ]);
    } finally {
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
