/**
 * PostgreSQL adapter: a pg.Pool behind the shared SqlClient, plus a dedicated LISTEN connection so
 * subscriptions in this process wake as soon as any process commits an append.
 */
import { Client, ClientConfig, Pool } from 'pg';
import { SqlClient, SqlQueryable } from './sql-client';
import { ExternalWakeups, SqlEventStore, type SqlEventStoreOptions } from './sql-event-store';
import { assertSchemaName, notifyChannel, schemaScript } from './sql-schema';

export interface PostgresEventStoreOptions {
  url: string;
  /** Schema holding the tables (created if missing); default `public`. */
  schema?: string;
  /** Pool size (default 10). */
  poolSize?: number;
  /**
   * How long a query waits for a pooled connection, or for a new connection to be made, before it
   * fails with a store-unavailable error (default 3000 ms). Without a bound, an exhausted pool or a
   * database that does not answer makes requests queue forever instead of answering 503.
   */
  acquireTimeoutMs?: number;
  /** Fallback poll period of subscriptions (default 250 ms). */
  pollIntervalMs?: number;
  /** Subscriptions wait this long after a wake-up before reading (default 0; see PollingSubscriptionOptions). */
  wakeDelayMs?: number;
}

const DEFAULT_ACQUIRE_TIMEOUT_MS = 3000;

class PgPoolSqlClient implements SqlClient {
  constructor(private readonly pool: Pool) {}

  async query<R>(text: string, params?: unknown[]): Promise<R[]> {
    return (await this.pool.query(text, params)).rows as R[];
  }

  async exec(script: string): Promise<void> {
    // No parameters → simple query protocol → all statements in one implicit transaction.
    await this.pool.query(script);
  }

  async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // pg's pool listens for errors only on idle clients: a connection killed while checked out (a
    // database restart, pg_terminate_backend) emits 'error' on the client, which without a listener
    // is an uncaught exception. The statement in flight rejects anyway; remember it and destroy it.
    const onError = (error: Error) => (broken = error);
    client.on('error', onError);
    try {
      await client.query('begin');
      const result = await fn({ query: async <R>(text: string, params?: unknown[]) => (await client.query(text, params)).rows as R[] });
      await client.query('commit');
      return result;
    } catch (error) {
      await client.query('rollback').catch((rollbackError: Error) => (broken = rollbackError));
      throw error;
    } finally {
      // A connection whose rollback failed is in an unknown state: destroy it rather than reuse it.
      client.off('error', onError);
      client.release(broken);
    }
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/** LISTEN on its own connection (a pooled one would be handed to other queries); reconnects. */
class PgNotificationListener implements ExternalWakeups {
  private client: Client | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private wake: () => void = () => undefined;

  constructor(
    private readonly config: ClientConfig,
    private readonly channel: string,
  ) {}

  async start(wake: () => void): Promise<void> {
    this.wake = wake;
    await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new Client(this.config);
    client.on('notification', (message) => {
      if (message.channel === this.channel) this.wake();
    });
    client.on('error', () => this.reconnectLater(client));
    client.on('end', () => this.reconnectLater(client));
    try {
      await client.connect();
      await client.query(`listen ${this.channel}`);
    } catch (error) {
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

  private reconnectLater(failed: Client): void {
    if (this.closed || this.retry || (this.client && this.client !== failed)) return;
    this.client = undefined;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.connect().catch(() => undefined);
    }, 1000);
    this.retry.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}

export class PostgresEventStore extends SqlEventStore {
  private constructor(sql: SqlClient, options: SqlEventStoreOptions) {
    super(sql, options);
  }

  static async open(options: PostgresEventStoreOptions): Promise<PostgresEventStore> {
    const schema = options.schema ?? 'public';
    assertSchemaName(schema);
    const acquireTimeoutMs = options.acquireTimeoutMs ?? DEFAULT_ACQUIRE_TIMEOUT_MS;
    const base: ClientConfig = {
      connectionString: options.url,
      application_name: 'token-ledger',
      // Bounds connecting for the LISTEN connection too; the pool also uses it for waiting on a free slot.
      connectionTimeoutMillis: acquireTimeoutMs,
      // An idle connection whose peer vanished without a reset (host down, network partition) is found
      // dead and dropped by TCP keepalive, instead of a request finding it after minutes of retransmits.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    };
    const pool = new Pool({
      ...base,
      max: options.poolSize ?? 10,
      // search_path set in the startup packet: no extra round trip, and every pooled connection has it.
      options: `-c search_path=${schema}`,
    });
    // An idle pooled connection dying (server restart) must not crash the process; pg drops it.
    pool.on('error', () => undefined);
    const client = new PgPoolSqlClient(pool);
    try {
      await client.exec(schemaScript(schema));
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error;
    }
    return new PostgresEventStore(client, {
      engine: 'postgres',
      // Another thread opens it again from here, with a pool of its own.
      threadLocation: { store: 'postgres', url: options.url, schema, pollIntervalMs: options.pollIntervalMs, acquireTimeoutMs },
      pollIntervalMs: options.pollIntervalMs,
      wakeDelayMs: options.wakeDelayMs,
      externalWakeups: new PgNotificationListener(base, notifyChannel(schema)),
    });
  }
}

/** Drops a schema and everything in it (tests use a fresh random schema per run). */
export async function dropPostgresSchema(url: string, schema: string): Promise<void> {
  assertSchemaName(schema);
  if (schema === 'public') throw new Error('refusing to drop the public schema');
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end();
  }
}
