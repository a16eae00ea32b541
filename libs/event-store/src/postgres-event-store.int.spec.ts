import { randomBytes } from 'node:crypto';
import { describeWithBackend } from '../../../test/backends';
import { describeEventStoreContract } from './event-store.contract';
import { reopenEventStore } from './open-event-store';
import { dropPostgresSchema, PostgresEventStore } from './postgres-event-store';

describeWithBackend('postgres', 'PostgresEventStore', (url) => {
  describeEventStoreContract('postgres', async () => {
    const schema = `es_test_${randomBytes(6).toString('hex')}`;
    const store = await PostgresEventStore.open({ url, schema });
    return {
      store,
      kv: store.kv,
      // Long fallback poll: the cross-instance test must be satisfied by LISTEN/NOTIFY.
      openSecondInstance: () => PostgresEventStore.open({ url, schema, pollIntervalMs: 60_000 }),
      cleanup: async () => {
        await store.close();
        await dropPostgresSchema(url, schema);
      },
    };
  }, { keyValueStore: true, secondInstance: true, uniqueEventIds: true });

  describe('PostgresEventStore.open', () => {
    it('migrates safely when several processes open the same new schema at once', async () => {
      const schema = `es_test_${randomBytes(6).toString('hex')}`;
      try {
        const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresEventStore.open({ url, schema, poolSize: 2 })));
        await stores[0].append('s', [{ eventId: '7b0c1f0e-3f7e-4a47-9a0e-1c1b7f7f0001', type: 'T', data: {}, metadata: {} }], {
          expectedRevision: 'no_stream',
        });
        for (const store of stores) expect(await store.headPosition()).toBeGreaterThan(0);
        await Promise.all(stores.map((store) => store.close()));
      } finally {
        await dropPostgresSchema(url, schema);
      }
    });

    it('converts a schema of the older version (jsonb snapshots), whose instances can still append beside this one', async () => {
      const schema = `es_test_${randomBytes(6).toString('hex')}`;
      const id = (n: number) => `7b0c1f0e-3f7e-4a47-9a0e-1c1b7f7f01${String(n).padStart(2, '0')}`;
      const event = (n: number) => ({ eventId: id(n), type: 'T', data: {}, metadata: {} });
      try {
        const first = await PostgresEventStore.open({ url, schema, poolSize: 2 });
        for (const [i, s] of ['a', 'b', 'c', 'd'].entries()) await first.append(s, [event(i)], { expectedRevision: 'no_stream', snapshot: { n: i, z: [true] } });
        // As the older version left it: a jsonb column, and tl_load_streams returning it.
        await first.sql.exec(`
          alter table tl_streams alter column snapshot type jsonb using snapshot::jsonb;
          drop function tl_load_streams(text[]);
          create function tl_load_streams(p_ids text[]) returns table (snapshot jsonb) language sql as 'select null::jsonb';`);
        await first.close();

        const store = await PostgresEventStore.open({ url, schema, poolSize: 2 });
        try {
          const [{ type, result }] = await store.sql.query<{ type: string; result: string }>(
            `select (select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'tl_streams'::regclass and attname = 'snapshot') as type,
                    pg_get_function_result('tl_load_streams(text[])'::regprocedure) as result`,
          );
          expect(type).toBe('json');
          expect(result).toContain('snapshot json,');
          expect((await store.loadStream('a')).snapshot).toEqual({ state: { n: 0, z: [true] }, revision: 0 });

          // An instance of the older version appends as it did: a batch with its snapshots inside, and one on its own.
          const old = await store.sql.query<{ conflict: boolean }>('select idx, conflict from tl_append_batch($1::jsonb) order by idx', [
            JSON.stringify(['a', 'b'].map((s, i) => ({ streamId: s, kind: 'exact', revision: 0, events: [event(20 + i)], hasSnapshot: true, snapshot: { old: i } }))),
          ]);
          expect(old.map((r) => r.conflict)).toEqual([false, false]);
          const [one] = await store.sql.query<{ conflict: boolean }>('select conflict from tl_append($1, $2, $3, $4::jsonb, $5::jsonb)', ['c', 'exact', 0, JSON.stringify([event(22)]), JSON.stringify({ old: 2 })]);
          expect(one.conflict).toBe(false);
          expect(await Promise.all(['a', 'b', 'c'].map((s) => store.loadStream(s)))).toEqual(
            [0, 1, 2].map((i) => ({ revision: 1, snapshot: { state: { old: i }, revision: 1 }, events: [] })),
          );

          // This version: three appends at once, the first alone (tl_append), the others as a batch behind it.
          await Promise.all(['a', 'b', 'd'].map((s, i) => store.append(s, [event(30 + i)], { expectedRevision: s === 'd' ? 0 : 1, snapshot: { n: 30 + i } })));
          expect(await Promise.all(['a', 'b', 'd'].map((s) => store.loadStream(s)))).toEqual([
            { revision: 2, snapshot: { state: { n: 30 }, revision: 2 }, events: [] },
            { revision: 2, snapshot: { state: { n: 31 }, revision: 2 }, events: [] },
            { revision: 1, snapshot: { state: { n: 32 }, revision: 1 }, events: [] },
          ]);
        } finally {
          await store.close();
        }
      } finally {
        await dropPostgresSchema(url, schema);
      }
    });

    it("loads a refresh's two streams in one statement when a handler starts them from an I/O callback, the second after promise hops", async () => {
      const schema = `es_test_${randomBytes(6).toString('hex')}`;
      const store = await PostgresEventStore.open({ url, schema, poolSize: 2 });
      try {
        for (const [i, s] of ['family-f', 'client-c'].entries()) {
          await store.append(s, [{ eventId: `7b0c1f0e-3f7e-4a47-9a0e-1c1b7f7f00${40 + i}`, type: 'T', data: {}, metadata: {} }], { expectedRevision: 'no_stream', snapshot: { s } });
        }
        const statements: string[] = [];
        const query = store.sql.query.bind(store.sql);
        store.sql.query = ((text: string, params?: unknown[]) => {
          statements.push(text);
          return query(text, params);
        }) as typeof store.sql.query;
        // As token-endpoint.ts runs inside the HTTP parser's callback: the family load, then the client's behind the rate limiter's awaits.
        const [family, client] = await new Promise<[Promise<unknown>, Promise<unknown>]>((resolve) =>
          setTimeout(() => {
            const first = store.loadStream('family-f');
            const second = (async () => {
              for (let hop = 0; hop < 8; hop++) await Promise.resolve();
              return store.loadStream('client-c');
            })();
            resolve([first, second]);
          }, 0),
        );
        expect(await family).toEqual({ revision: 0, snapshot: { state: { s: 'family-f' }, revision: 0 }, events: [] });
        expect(await client).toEqual({ revision: 0, snapshot: { state: { s: 'client-c' }, revision: 0 }, events: [] });
        expect(statements.filter((t) => t.includes('tl_load_streams'))).toHaveLength(1);
      } finally {
        await store.close();
        await dropPostgresSchema(url, schema);
      }
    });

    it('describes its capabilities: SQL with the events in it (PostgreSQL), and a location another thread reopens', async () => {
      const schema = `es_test_${randomBytes(6).toString('hex')}`;
      const store = await PostgresEventStore.open({ url, schema, poolSize: 2 });
      try {
        expect(store.capabilities.sql).toBe(store.sql);
        expect(store.capabilities.eventsInSql?.engine).toBe('postgres');
        const location = store.capabilities.threadLocation!;
        expect(structuredClone(location)).toEqual(location);
        await store.append('s', [{ eventId: '7b0c1f0e-3f7e-4a47-9a0e-1c1b7f7f0003', type: 'T', data: {}, metadata: {} }], { expectedRevision: 'no_stream' });
        const again = await reopenEventStore(structuredClone(location), { poolSize: 1 });
        try {
          expect(await again.readStream('s')).toEqual(await store.readStream('s'));
          expect(again.capabilities.threadLocation).toEqual(location);
        } finally {
          await again.close();
        }
      } finally {
        await store.close();
        await dropPostgresSchema(url, schema);
      }
    });
  });
});
