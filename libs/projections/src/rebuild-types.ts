/** What a rebuild of the read models is asked and answers (rebuild.ts, rebuild-in-sql.ts). */

export interface RebuildProgress {
  /**
   * Work done, in events: the replay path counts the events applied; the set-based path counts the
   * events copied, folded and indexed so far, each phase weighted by its share of the work, so
   * done / elapsed is the rebuild's throughput and done / total its fraction at every moment.
   */
  done: number;
  /** Events up to the head (0 when the store cannot count them cheaply: EventStoreDB). */
  total: number;
  /** 0–1: done / total, or position / head when the total is unknown. */
  fraction: number;
  /**
   * Replay: highest position applied. Set-based: 0 while filling, then the head; at the end, what
   * the swapped-in read models include (past the head when they caught up with a live runner).
   */
  position: number;
  head: number;
  /** Set-based path: what it is doing (fill, index, catch-up, swap). */
  phase?: string;
}

/** One timed step of a set-based rebuild (for benchmarks and logs). */
export interface RebuildStep {
  name: string;
  /** Which of the parallel connections ran it (0-based). */
  lane: number;
  /** Start, relative to the rebuild's start, and duration. */
  startMs: number;
  ms: number;
}

export interface RebuildResult extends RebuildProgress {
  method: 'sql' | 'replay';
  /** Set-based path: every statement group, in the order they started. */
  steps: RebuildStep[];
}

export interface RebuildOptions {
  /**
   * 'sql': set-based, inside the database that holds the events (embedded and PostgreSQL stores;
   * every projection must have a SQL rebuild). 'replay': read the events and apply them batch by
   * batch, as a live runner would (any store, any projection). 'auto' (default): 'sql' when possible.
   */
  method?: 'auto' | 'sql' | 'replay';
  /** Events per batch: the replay's batches, and the set-based path's catch-up batches (default 5000). */
  batchSize?: number;
  /** Set-based path: events per slice of the events table when filling a per-event table (about; default 50,000). */
  chunkSize?: number;
  /** Set-based path on PostgreSQL: statements running at once (default 2; PGlite runs one). */
  parallelism?: number;
  onProgress?: (p: RebuildProgress) => void;
}
