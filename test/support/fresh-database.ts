import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/**
 * A PostgreSQL database of its own for one test or suite (a `serve` process uses the public schema,
 * so tests that start real processes cannot share one), created on the server `url` points at and
 * dropped, with any connections still open, by `drop`.
 */
export async function freshDatabase(url: string, prefix: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const database = `${prefix}_${randomBytes(6).toString('hex')}`;
  await withClient(url, (c) => c.query(`create database ${database}`));
  const dbUrl = new URL(url);
  dbUrl.pathname = `/${database}`;
  return { url: dbUrl.toString(), drop: () => withClient(url, (c) => c.query(`drop database if exists ${database} with (force)`)) };
}

async function withClient(url: string, fn: (c: Client) => Promise<unknown>): Promise<void> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    await fn(c);
  } finally {
    await c.end();
  }
}
