import type { KeyValueStore } from './event-store';
import type { SqlQueryable } from './sql-client';

/** KeyValueStore on the tl_kv table; same SQL on PGlite and PostgreSQL. */
export class SqlKeyValueStore implements KeyValueStore {
  constructor(private readonly sql: SqlQueryable) {}

  async get<T = unknown>(key: string): Promise<T | undefined> {
    const rows = await this.sql.query<{ value: T }>('select value from tl_kv where key = $1', [key]);
    return rows.length ? rows[0].value : undefined;
  }

  async putIfAbsent<T>(key: string, value: T): Promise<T> {
    const inserted = await this.sql.query<{ value: T }>(
      'insert into tl_kv (key, value) values ($1, $2::jsonb) on conflict (key) do nothing returning value',
      [key, toJson(key, value)],
    );
    if (inserted.length) return inserted[0].value;
    // Lost the race (ON CONFLICT waited for the winner to commit); a new statement sees its row.
    const stored = await this.get<T>(key);
    if (stored === undefined) throw new Error(`kv ${key}: insert conflicted but no row is visible`);
    return stored;
  }

  async put<T>(key: string, value: T): Promise<void> {
    await this.sql.query(
      'insert into tl_kv (key, value) values ($1, $2::jsonb) on conflict (key) do update set value = excluded.value',
      [key, toJson(key, value)],
    );
  }
}

function toJson(key: string, value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError(`kv ${key}: value is not JSON-serialisable`);
  return json;
}
