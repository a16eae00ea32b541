import type { OpenedStore } from '@token-ledger/event-store';

/** The store with some of its methods replaced (a test's view of it); the rest forwarded, bound to it. */
export function withOverrides(store: OpenedStore, overrides: Partial<Record<keyof OpenedStore, unknown>>): OpenedStore {
  return new Proxy(store, {
    get(target, property) {
      if (property in overrides) return overrides[property as keyof OpenedStore];
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
