import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LedgerClient } from './support/ledger-harness';
import { spawnLedger, type LedgerProcess } from './support/ledger-process';

/**
 * The embedded store gathers concurrent appends into one PGlite transaction (group commit); a
 * rotation is answered only once its batch committed. SIGKILL the server while chains rotate in
 * parallel, restart it on the same data directory: every rotation that was answered 200 is still
 * there, so the token it consumed is dead (presenting it again is a reuse → invalid_grant).
 */
const CHAINS = 16;
const ACKS_BEFORE_KILL = 200;

describe('embedded store: answered rotations survive SIGKILL', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tl-sigkill-rotate-'));
  const running: LedgerProcess[] = [];
  // Rate limits off: 16 chains rotating as fast as they can would hit the per-client limit.
  const env = { LEDGER_DATA_DIR: dataDir, LEDGER_RATE_LIMIT_AUTH_FAILURES: 'off', LEDGER_RATE_LIMIT_OAUTH: 'off', LEDGER_RATE_LIMIT_V1: 'off' };

  afterAll(async () => {
    for (const p of running.splice(0)) await p.kill();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps every rotation it answered', async () => {
    const first = await spawnLedger(env);
    running.push(first);
    let api = new LedgerClient(first.baseUrl);
    const client = await api.registerClient({ clientId: 'sigkill-rotate', reuseGraceSeconds: 0, maxFamiliesPerSubject: 100 });
    const chains = await Promise.all(
      Array.from({ length: CHAINS }, async (_, i) => {
        const issued = await api.issue({ subject: `rotor-${i}`, clientId: client.clientId, scope: 'api:read' });
        return { current: issued.refresh_token as string, consumed: undefined as string | undefined };
      }),
    );

    // Closed loops; the kill lands while every chain has a request in flight.
    let acks = 0;
    let killed = false;
    let reachedTarget!: () => void;
    const target = new Promise<void>((resolve) => (reachedTarget = resolve));
    const loops = chains.map(async (chain) => {
      while (!killed) {
        const presented = chain.current;
        const res = await api.refresh(presented, client).catch(() => undefined);
        if (!res || killed) return;
        expect(res.status).toBe(200);
        chain.consumed = presented;
        chain.current = res.body.refresh_token;
        if (++acks === ACKS_BEFORE_KILL) reachedTarget();
      }
    });
    await target;
    killed = true;
    await first.kill();
    await Promise.all(loops);

    const second = await spawnLedger(env);
    running.push(second);
    api = new LedgerClient(second.baseUrl);
    for (const chain of chains) {
      if (chain.consumed === undefined) continue;
      const replay = await api.refresh(chain.consumed, client);
      expect({ status: replay.status, error: replay.body.error }).toEqual({ status: 400, error: 'invalid_grant' });
    }
    expect(chains.filter((c) => c.consumed !== undefined).length).toBe(CHAINS);
  }, 180_000);
});
