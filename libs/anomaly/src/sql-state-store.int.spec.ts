import { randomBytes } from 'node:crypto';
import { dropPostgresSchema, PostgresEventStore, type SqlClient } from '@token-ledger/event-store';
import { describeWithBackend } from '../../../test/backends';
import { AnomalyStateConflictError, SqlAnomalyStateStore } from './sql-state-store';
import type { IpTrack } from './state';

const ip = (marks: number): IpTrack => ({ kind: 'ip', failures: Array.from({ length: marks }, (_, i) => [i * 1000, i + 1] as [number, number]) });

/** n concurrent read-modify-writes of one key ('i:hot', one mark more each), retried on conflict: how many landed. */
async function concurrentIncrements(states: SqlAnomalyStateStore, n: number): Promise<number> {
  let landed = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
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
  return landed;
}

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
    expect(await concurrentIncrements(states, 12)).toBe(12);
    expect(((await states.load(['i:hot'])).get('i:hot') as IpTrack).failures).toHaveLength(12);
  });
});

describeWithBackend('postgres', 'SqlAnomalyStateStore as the sole writer (the embedded store) on PostgreSQL', (url) => {
  let store: PostgresEventStore;
  const schema = `an_sole_${randomBytes(6).toString('hex')}`;
  /** Statements that read an_state, counted. */
  let reads = 0;
  let counted: SqlClient;

  beforeAll(async () => {
    store = await PostgresEventStore.open({ url, schema });
    counted = {
      ...store.sql,
      query: (text, params) => {
        if (/from an_state/.test(text)) reads++;
        return store.sql.query(text, params);
      },
      exec: (script) => store.sql.exec(script),
      transaction: (fn) => store.sql.transaction(fn),
      close: () => store.sql.close(),
    };
    await new SqlAnomalyStateStore(store.sql).migrate();
  });
  afterAll(async () => {
    await store?.close();
    await dropPostgresSchema(url, schema);
  });

  it('a saved row is taken from memory, as a fresh copy, and saved again at the right version', async () => {
    const states = new SqlAnomalyStateStore(counted, { soleWriter: true });
    const first = await states.load(['i:m1']);
    first.set('i:m1', ip(1));
    await states.save(first);
    reads = 0;
    const second = await states.load(['i:m1']);
    expect(reads).toBe(0);
    expect(second.get('i:m1')).toEqual(ip(1));
    // The rules change what they are given; a batch that is re-run before its save must not see it.
    (second.get('i:m1') as IpTrack).failures.push([99_000, 99]);
    expect((await states.load(['i:m1'])).get('i:m1')).toEqual(ip(1));
    second.set('i:m1', ip(2));
    await states.save(second);
    const third = await states.load(['i:m1']);
    third.set('i:m1', ip(3));
    await states.save(third); // lands only if the remembered version is the row's
    expect((await new SqlAnomalyStateStore(store.sql).load(['i:m1'])).get('i:m1')).toEqual(ip(3));
    // A deleted row is forgotten: the next load reads the database (and finds nothing).
    const fourth = await states.load(['i:m1']);
    fourth.set('i:m1', null);
    await states.save(fourth);
    reads = 0;
    expect((await states.load(['i:m1'])).size).toBe(0);
    expect(reads).toBe(1);
  });

  it('a remembered copy that went stale fails the save whole; the re-run reads the database and lands', async () => {
    const states = new SqlAnomalyStateStore(counted, { soleWriter: true });
    const a = await states.load(['i:s1', 'i:s2']);
    a.set('i:s1', ip(1));
    a.set('i:s2', ip(1));
    await states.save(a);
    // Someone else (which the sole writer promised away, or a concurrent batch) moves i:s1 on.
    const other = new SqlAnomalyStateStore(store.sql);
    const o = await other.load(['i:s1']);
    o.set('i:s1', ip(5));
    await other.save(o);
    const stale = await states.load(['i:s1', 'i:s2']);
    stale.set('i:s1', ip(2));
    stale.set('i:s2', ip(2));
    await expect(states.save(stale)).rejects.toBeInstanceOf(AnomalyStateConflictError);
    expect((await other.load(['i:s2'])).get('i:s2')).toEqual(ip(1)); // nothing of the failed save landed
    reads = 0;
    const rerun = await states.load(['i:s1', 'i:s2']);
    expect(reads).toBe(1);
    expect(rerun.get('i:s1')).toEqual(ip(5));
    rerun.set('i:s1', ip(6));
    rerun.set('i:s2', ip(2));
    await states.save(rerun);
    expect([...(await other.load(['i:s1', 'i:s2'])).values()]).toEqual([ip(6), ip(2)]);
  });

  it('of many concurrent read-modify-writes of one key through one sole writer, each landed one counts', async () => {
    const states = new SqlAnomalyStateStore(counted, { soleWriter: true });
    expect(await concurrentIncrements(states, 12)).toBe(12);
    expect(((await new SqlAnomalyStateStore(store.sql).load(['i:hot'])).get('i:hot') as IpTrack).failures).toHaveLength(12);
  });
});

describeWithBackend('postgres', 'SqlAnomalyStateStore writing behind (the engine following the store) on PostgreSQL', (url) => {
  let store: PostgresEventStore;
  const schema = `an_behind_${randomBytes(6).toString('hex')}`;
  const fresh = () => new SqlAnomalyStateStore(store.sql);
  const checkpoint = async (): Promise<number | undefined> => {
    const rows = await store.sql.query<{ position: string }>(`select position from wb_checkpoint`);
    return rows.length === 0 ? undefined : Number(rows[0].position);
  };
  const writeCheckpoint = (position: number) => async (tx: Pick<SqlClient, 'query'>) => {
    await tx.query(`insert into wb_checkpoint (id, position) values (1, $1) on conflict (id) do update set position = excluded.position`, [position]);
  };

  beforeAll(async () => {
    store = await PostgresEventStore.open({ url, schema });
    await fresh().migrate();
    await store.sql.exec(`create table wb_checkpoint (id int primary key, position bigint not null)`);
  });
  afterAll(async () => {
    await store?.close();
    await dropPostgresSchema(url, schema);
  });

  it('stages saves that later loads see, and writes them with the checkpoint in one flush', async () => {
    const states = new SqlAnomalyStateStore(store.sql, { writeBehind: true });
    const a = await states.load(['i:w1', 'i:w2']);
    a.set('i:w1', ip(1));
    a.set('i:w2', ip(1));
    await states.save(a);
    const b = await states.load(['i:w1', 'i:w2']);
    expect(b.get('i:w1')).toEqual(ip(1)); // staged, seen by the next batch
    b.set('i:w1', ip(2));
    b.set('i:w2', null); // ended within the staged span: never written
    await states.save(b);
    expect(states.stagedRows).toBe(2);
    expect((await fresh().load(['i:w1', 'i:w2'])).size).toBe(0); // nothing written yet
    expect(await checkpoint()).toBeUndefined();

    await states.flush(writeCheckpoint(7));
    expect(states.stagedRows).toBe(0);
    expect([...(await fresh().load(['i:w1', 'i:w2'])).entries()]).toEqual([['i:w1', ip(2)]]);
    expect(await checkpoint()).toBe(7);
    // Saved again from memory at the version it was written at.
    const c = await states.load(['i:w1']);
    c.set('i:w1', ip(3));
    await states.save(c);
    await states.flush(writeCheckpoint(9));
    expect((await fresh().load(['i:w1'])).get('i:w1')).toEqual(ip(3));
    expect(await checkpoint()).toBe(9);
  });

  it('a flush against a row another writer moved on writes nothing, not even the checkpoint, and drops all it staged', async () => {
    const states = new SqlAnomalyStateStore(store.sql, { writeBehind: true });
    const a = await states.load(['i:x1', 'i:x2']);
    a.set('i:x1', ip(1));
    a.set('i:x2', ip(1));
    await states.save(a);
    await states.flush(writeCheckpoint(20));
    const b = await states.load(['i:x1', 'i:x2']);
    b.set('i:x1', ip(2));
    b.set('i:x2', ip(2));
    await states.save(b);
    const other = fresh();
    const o = await other.load(['i:x1']);
    o.set('i:x1', ip(5));
    await other.save(o);

    await expect(states.flush(writeCheckpoint(30))).rejects.toBeInstanceOf(AnomalyStateConflictError);
    expect(await checkpoint()).toBe(20);
    expect([...(await fresh().load(['i:x1', 'i:x2'])).values()]).toEqual([ip(5), ip(1)]);
    expect(states.stagedRows).toBe(0);
    // The replay reads the database again, and lands.
    const replay = await states.load(['i:x1', 'i:x2']);
    expect([...replay.values()]).toEqual([ip(5), ip(1)]);
    replay.set('i:x2', ip(2));
    await states.save(replay);
    await states.flush(writeCheckpoint(30));
    expect(await checkpoint()).toBe(30);
    expect((await fresh().load(['i:x2'])).get('i:x2')).toEqual(ip(2));
  });

  it('a checkpoint write that fails takes the staged rows down with it', async () => {
    const states = new SqlAnomalyStateStore(store.sql, { writeBehind: true });
    const a = await states.load(['i:y1']);
    a.set('i:y1', ip(1));
    await states.save(a);
    await expect(states.flush(async (tx) => void (await tx.query('select * from no_such_table')))).rejects.toThrow(/no_such_table/);
    expect((await fresh().load(['i:y1'])).size).toBe(0);
    expect(states.stagedRows).toBe(0);
    expect((await states.load(['i:y1'])).size).toBe(0);
  });
});
