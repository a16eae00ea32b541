import { Inject, Injectable } from '@nestjs/common';
import { LedgerSecrets } from '@token-ledger/crypto';
import { apiKeyIsUsable, isApiKeyId, parseApiKey, type ApiKeyEvent, type ApiKeyState } from '@token-ledger/domain';
import type { AggregateRepository } from './aggregate-repository';
import { API_KEY_REPOSITORY } from './tokens';

/**
 * API keys as the /v1 guard sees them. Every check reads the key's stream from the store — no
 * cache — so a revocation stops the key at once on every instance sharing the store. The read is
 * one round trip (the stream's snapshot; concurrent loads share a query), and /v1 is not the
 * refresh hot path.
 */
@Injectable()
export class ApiKeyRegistry {
  constructor(
    @Inject(API_KEY_REPOSITORY) private readonly repo: AggregateRepository<ApiKeyState, ApiKeyEvent>,
    @Inject(LedgerSecrets) private readonly secrets: LedgerSecrets,
  ) {}

  /** The key's state when `presented` is a genuine key, active and unexpired at `now`; else undefined. */
  async authenticate(presented: string, now: number): Promise<ApiKeyState | undefined> {
    const parts = parseApiKey(presented);
    if (!parts) return undefined;
    const { state } = await this.repo.load(parts.keyId);
    if (state.status === 'none' || !this.secrets.verifyApiKeySecret(parts.keyId, parts.secret, state.keyHash)) return undefined;
    return apiKeyIsUsable(state, now) ? state : undefined;
  }

  /** Whether an already authenticated key is still active and unexpired (long-lived requests re-check). */
  async isUsable(keyId: string, now: number): Promise<boolean> {
    if (!isApiKeyId(keyId)) return false;
    return apiKeyIsUsable((await this.repo.load(keyId)).state, now);
  }

  async get(keyId: string): Promise<ApiKeyState | undefined> {
    if (!isApiKeyId(keyId)) return undefined;
    const { state } = await this.repo.load(keyId);
    return state.status === 'none' ? undefined : state;
  }
}
