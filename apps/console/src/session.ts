/**
 * The signed-in API key: in sessionStorage (this tab only, gone when it closes), never in a URL or
 * a cookie. The key's scopes decide what the UI offers; the server still checks every call.
 */
import type { Principal } from './api';

const STORAGE_KEY = 'token-ledger.console.api-key';

export function storedKey(): string | null {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled: sign in again on reload
  }
}

export function storeKey(key: string | null): void {
  try {
    if (key === null) sessionStorage.removeItem(STORAGE_KEY);
    else sessionStorage.setItem(STORAGE_KEY, key);
  } catch {
    /* memory only */
  }
}

/** `admin` grants every other scope (as on the server). */
export function can(principal: Principal | null, scope: string): boolean {
  return !!principal && (principal.scopes.includes(scope) || principal.scopes.includes('admin'));
}
