"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.PostgresEventStore = void 0;
exports.dropPostgresSchema = dropPostgresSchema;
/**
 * PostgreSQL adapter: a pg.Pool behind the shared SqlClient, plus a dedicated LISTEN connection so
 * subscriptions in this process wake as soon as any process commits an append.
 */
const pg_1 = require("pg");
const sql_event_store_1 = require("./sql-event-store");
const sql_schema_1 = require("./sql-schema");
class PgPoolSqlClient {
    pool;
    constructor(pool) {
        this.pool = pool;
    }
    async query(text, params) {
        return (await this.pool.query(text, params)).rows;
    }
    async exec(script) {
        // No parameters → simple query protocol → all statements in one implicit transaction.
        await this.pool.query(script);
    }
    async transaction(fn) {
        const client = await this.pool.connect();
        let broken;
        try {
            await client.query('begin');
            const result = await fn({ query: async (text, params) => (await client.query(text, params)).rows });
            await client.query('commit');
            return result;
        }
        catch (error) {
            await client.query('rollback').catch((rollbackError) => (broken = rollbackError));
            throw error;
        }
        finally {
            // A connection whose rollback failed is in an unknown state: destroy it rather than reuse it.
            client.release(broken);
        }
    }
    close() {
        return this.pool.end();
    }
}
/** LISTEN on its own connection (a pooled one would be handed to other queries); reconnects. */
class PgNotificationListener {
    config;
    channel;
    client;
    closed = false;
    retry;
    wake = () => undefined;
    constructor(config, channel) {
        this.config = config;
        this.channel = channel;
    }
    async start(wake) {
        this.wake = wake;
        await this.connect();
    }
    async connect() {
        if (this.closed)
            return;
        const client = new pg_1.Client(this.config);
        client.on('notification', (message) => {
            if (message.channel === this.channel)
                this.wake();
        });
        client.on('error', () => this.reconnectLater(client));
        client.on('end', () => this.reconnectLater(client));
        try {
            await client.connect();
            await client.query(`listen ${this.channel}`);
        }
        catch (error) {
            client.end().catch(() => undefined);
            this.reconnectLater(client);
            throw error;
        }
        this.client = client;
        if (this.closed) {
            await client.end().catch(() => undefined);
            return;
        }
        // Anything committed while we were not listening is picked up by one extra read.
        this.wake();
    }
    reconnectLater(failed) {
        if (this.closed || this.retry || (this.client && this.client !== failed))
            return;
        this.client = undefined;
        this.retry = setTimeout(() => {
            this.retry = undefined;
            this.connect().catch(() => undefined);
        }, 1000);
        this.retry.unref();
    }
    async close() {
        this.closed = true;
        if (this.retry)
            clearTimeout(this.retry);
        const client = this.client;
        this.client = undefined;
        await client?.end().catch(() => undefined);
    }
}
class PostgresEventStore extends sql_event_store_1.SqlEventStore {
    static async open(options) {
        const schema = options.schema ?? 'public';
        (0, sql_schema_1.assertSchemaName)(schema);
        const base = { connectionString: options.url, application_name: 'token-ledger' };
        const pool = new pg_1.Pool({
            ...base,
            max: options.poolSize ?? 10,
            // search_path set in the startup packet: no extra round trip, and every pooled connection has it.
            options: `-c search_path=${schema}`,
        });
        // An idle pooled connection dying (server restart) must not crash the process; pg drops it.
        pool.on('error', () => undefined);
        const client = new PgPoolSqlClient(pool);
        try {
            await client.exec((0, sql_schema_1.schemaScript)(schema));
        }
        catch (error) {
            await pool.end().catch(() => undefined);
            throw error;
        }
        return new PostgresEventStore(client, {
            pollIntervalMs: options.pollIntervalMs,
            externalWakeups: new PgNotificationListener(base, (0, sql_schema_1.notifyChannel)(schema)),
        });
    }
}
exports.PostgresEventStore = PostgresEventStore;
/** Drops a schema and everything in it (tests use a fresh random schema per run). */
async function dropPostgresSchema(url, schema) {
    (0, sql_schema_1.assertSchemaName)(schema);
    if (schema === 'public')
        throw new Error('refusing to drop the public schema');
    const client = new pg_1.Client({ connectionString: url });
    await client.connect();
    try {
        await client.query(`drop schema if exists ${schema} cascade`);
    }
    finally {
        await client.end();
    }
}
