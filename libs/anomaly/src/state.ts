/**
 * Per-key state the rules read and update (SPEC §5): one track per family, per subject and per IP.
 * Plain JSON, so the same state lives in memory (backtest) or in SQL (the running engine), and a
 * restart resumes every sliding window where it was.
 */

/**
 * A counted event in a sliding window: [occurredAt ms, store position], and how many it counts for
 * when that is not 1 (an aggregated RefreshRejected stands for `count` refusals).
 */
export type Mark = [at: number, position: number] | [at: number, position: number, weight: number];

/** Where a family was used from (the located part is absent for private or unknown addresses). */
export interface UseSite {
  at: number;
  ip: string;
  country: string;
  city?: string;
  lat: number;
  lon: number;
}

export interface FamilyTrack {
  kind: 'family';
  /** Last position applied: a family's events arrive in store order, so anything at or below is a duplicate. */
  pos: number;
  /** Last use located to a city (impossible_travel compares with it). */
  lastCity?: UseSite;
  /** Last country the family was used from (geo_mismatch). */
  lastCountry?: { country: string; at: number; ip: string };
  deviceId?: string;
  userAgentFamily?: string;
  refreshes: Mark[];
  /** A burst fired at this time is not reported again until the window has passed. */
  burstFiredAt?: number;
}

/** A subject's or an address's failed_refresh_storm window: all failures, and those of real tokens alone. */
export interface StormWindow {
  failures: Mark[];
  /** Failures that were not forgeries (expired, revoked, reused, another client's or wrong-scope tokens). */
  realFailures?: Mark[];
  stormFiredAt?: number;
  /** The last storm was reported alert-only: forgeries made it, real failures alone did not pass max. */
  stormAlertOnly?: boolean;
}

export interface SubjectTrack extends StormWindow {
  kind: 'subject';
  pos: number;
  refreshes: Mark[];
  burstFiredAt?: number;
}

/** Events of one IP come from many subjects (Kafka partitions), so they are deduplicated by position. */
export interface IpTrack extends StormWindow {
  kind: 'ip';
}

export type KeyState = FamilyTrack | SubjectTrack | IpTrack;

export const familyKey = (familyId: string): string => `f:${familyId}`;
export const subjectKey = (subject: string): string => `s:${subject}`;
export const ipKey = (ip: string): string => `i:${ip}`;

/**
 * The states an engine step reads and writes. A value of `null` means "delete" (a family that
 * ended no longer needs its track).
 */
export type StateMap = Map<string, KeyState | null>;

/** Where the engine keeps its state between batches. */
export interface AnomalyStateStore {
  /** The current states of `keys` (absent keys have no state yet). */
  load(keys: readonly string[]): Promise<StateMap>;
  /** Writes the given states (null deletes). */
  save(states: StateMap): Promise<void>;
}

/** State in a Map: backtests and unit tests. */
export class MemoryStateStore implements AnomalyStateStore {
  readonly states = new Map<string, KeyState>();

  async load(keys: readonly string[]): Promise<StateMap> {
    const out: StateMap = new Map();
    for (const key of keys) {
      const s = this.states.get(key);
      if (s) out.set(key, s);
    }
    return out;
  }

  async save(states: StateMap): Promise<void> {
    for (const [key, s] of states) {
      if (s === null) this.states.delete(key);
      else this.states.set(key, s);
    }
  }
}
