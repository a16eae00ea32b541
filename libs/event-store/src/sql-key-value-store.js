"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.SqlKeyValueStore = void 0;
/** KeyValueStore on the tl_kv table; same SQL on PGlite and PostgreSQL. */
class SqlKeyValueStore {
    sql;
    constructor(sql) {
        this.sql = sql;
    }
    async get(key) {
        const rows = await this.sql.query('select value from tl_kv where key = $1', [key]);
        return rows.length ? rows[0].value : undefined;
    }
    async putIfAbsent(key, value) {
        const inserted = await this.sql.query('insert into tl_kv (key, value) values ($1, $2::jsonb) on conflict (key) do nothing returning value', [key, toJson(key, value)]);
        if (inserted.length)
            return inserted[0].value;
        // Lost the race (ON CONFLICT waited for the winner to commit); a new statement sees its row.
        const stored = await this.get(key);
        if (stored === undefined)
            throw new Error(`kv ${key}: insert conflicted but no row is visible`);
        return stored;
    }
    async put(key, value) {
        await this.sql.query('insert into tl_kv (key, value) values ($1, $2::jsonb) on conflict (key) do update set value = excluded.value', [key, toJson(key, value)]);
    }
}
exports.SqlKeyValueStore = SqlKeyValueStore;
function toJson(key, value) {
    const json = JSON.stringify(value);
    if (json === undefined)
        throw new TypeError(`kv ${key}: value is not JSON-serialisable`);
    return json;
}
