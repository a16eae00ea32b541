import type { KeyValueStore } from './event-store';

/**
 * In-memory KeyValueStore test double (MemoryEventStore's kv). Values round-trip through JSON (as
 * in a real store, so no object is shared with the caller), and every call yields to the event loop
 * a few times first so concurrent callers interleave the way they would against a database.
 */
export class MemoryKeyValueStore implements KeyValueStore {
  readonly data = new Map<string, string>();
  readonly calls: { op: 'get' | 'putIfAbsent' | 'put'; key: string }[] = [];

  constructor(private readonly maxYields = 3) {}

  async get<T = unknown>(key: string): Promise<T | undefined> {
    await this.yieldSome();
    this.calls.push({ op: 'get', key });
    const raw = this.data.get(key);
    return raw === undefined ? undefined : (JSON.parse(raw) as T);
  }

  async putIfAbsent<T>(key: string, value: T): Promise<T> {
    await this.yieldSome();
    this.calls.push({ op: 'putIfAbsent', key });
    if (!this.data.has(key)) this.data.set(key, JSON.stringify(value));
    return JSON.parse(this.data.get(key) as string) as T;
  }

  async put<T>(key: string, value: T): Promise<void> {
    await this.yieldSome();
    this.calls.push({ op: 'put', key });
    this.data.set(key, JSON.stringify(value));
  }

  /** Everything stored, as one string: what an attacker with a database dump would see. */
  dump(): string {
    return JSON.stringify(Object.fromEntries(this.data));
  }

  private async yieldSome(): Promise<void> {
    const n = Math.floor(Math.random() * (this.maxYields + 1));
    for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
