/**
 * The little SQL surface the shared event store, the KV store and (later) the read models need.
 * PGlite and pg.Pool both satisfy it behind thin wrappers in the adapter files, so every statement
 * is written once and runs unchanged on both.
 */
export interface SqlQueryable {
  /** One statement with $n parameters; resolves to the result rows. */
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
}

export interface SqlClient extends SqlQueryable {
  /** Several ;-separated statements without parameters, run as one implicit transaction. */
  exec(script: string): Promise<void>;
  /** Runs fn inside BEGIN/COMMIT on one connection; ROLLBACK when fn throws. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** pg hands bigint back as a string, PGlite as a number; everything above this layer uses numbers. */
export function toNumber(value: unknown): number {
  return typeof value === 'number' ? value : Number(value);
}

export function toOptionalNumber(value: unknown): number | undefined {
  return value === null || value === undefined ? undefined : toNumber(value);
}
