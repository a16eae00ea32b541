import { randomBytes } from 'node:crypto';
import { dropPostgresSchema, PostgresEventStore } from '@token-ledger/event-store';
import { describeWithBackend } from '../../../test/backends';
import { AnomalyStateConflictError, SqlAnomalyStateStore } from './sql-state-store';
import type { IpTrack } from './state';

const ip = (marks: number): IpTrack => ({ kind: 'ip', failures: Array.from({ length: marks }, (_, i) => [i * 1000, i + 1] as [number, number]) });

describeWithBackend('postgres', 'SqlAnomalyStateStore on PostgreSQL', (url) => {
  let store: PostgresEventStore;
  let states: SqlAnomalyStateStore;
  const schema = `an_test_${randomBytes(6).toString('hex')}`;

  beforeAll(async () => {
    store = await PostgresEventStore.open({ url, schema });
    states = new SqlAnomalyStateStore(store.sql);
    await states.migrate();
    await states.migrate(); // idempotent
  });
  afterAll(async () => {
    await store?.close();
    await dropPostgresSchema(url, schema);
  });

  it('round-trips states and deletes', async () => {
    const loaded = await states.load(['i:a', 'i:b']);
    expect(loaded.size).toBe(0);
    loaded.set('i:a', ip(2));
    loaded.set('i:b', ip(1));
    await states.save(loaded);
    const again = await states.load(['i:a', 'i:b', 'i:c']);
    expect(again.get('i:a')).toEqual(ip(2));
    again.set('i:b', null);
    await states.save(again);
    expect([...(await states.load(['i:a', 'i:b'])).keys()]).toEqual(['i:a']);
  });

  it('a save from a stale load fails whole: update, insert and delete races', async () => {
    const first = await states.load(['i:x']);
    const second = await states.load(['i:x']);
    first.set('i:x', ip(1));
    second.set('i:x', ip(2));
    await states.save(first);
    await expect(states.save(second)).rejects.toBeInstanceOf(AnomalyStateConflictError); // both inserted
    const a = await states.load(['i:x', 'i:y']);
    const b = await states.load(['i:x']);
    a.set('i:x', ip(3));
    a.set('i:y', ip(1));
    await states.save(a);
    b.set('i:x', null);
    await expect(states.save(b)).rejects.toBeInstanceOf(AnomalyStateConflictError); // stale delete
    const after = await states.load(['i:x', 'i:y']);
    expect(after.get('i:x')).toEqual(ip(3));
    expect(after.get('i:y')).toEqual(ip(1));
  });

  it('of many concurrent read-modify-writes of one key, each landed one counts, none is lost', async () => {
    let landed = 0;
    await Promise.all(
      Array.from({ length: 12 }, async () => {
        for (;;) {
          const s = await states.load(['i:hot']);
          const current = (s.get('i:hot') as IpTrack | undefined)?.failures.length ?? 0;
          s.set('i:hot', ip(current + 1));
          try {
            await states.save(s);
            landed++;
            return;
          } catch (error) {
            if (!(error instanceof AnomalyStateConflictError)) throw error;
          }
        }
      }),
    );
    expect(landed).toBe(12);
    expect(((await states.load(['i:hot'])).get('i:hot') as IpTrack).failures).toHaveLength(12);
  });
});
