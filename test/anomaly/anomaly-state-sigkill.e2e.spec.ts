import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { describeWithBackend } from '../backends';
import { eventually } from '../messaging/support';
import { freshDatabase } from '../support/fresh-database';
import { LedgerClient } from '../support/ledger-harness';
import { spawnLedger, type LedgerProcess } from '../support/ledger-process';

jest.setTimeout(180_000);

/**
 * Without Kafka the engine stages its window state in memory and writes it, with its checkpoint,
 * every LEDGER_ANOMALY_STATE_FLUSH_MS (docs/anomaly.md). Here the interval is ten minutes and the
 * server is SIGKILLed after the engine has taken three refreshes of a family in but before it wrote
 * them: restarted, it replays from its checkpoint, so a fourth refresh makes the burst (more than 3
 * in the window) — and the reuse anomaly it recorded before the kill is not recorded again.
 */
describeWithBackend('postgres', 'anomaly engine SIGKILLed between its batches and its state write (PostgreSQL)', (url) => {
  let db: { url: string; drop: () => Promise<void> };
  let dir: string;
  const running: LedgerProcess[] = [];

  beforeAll(async () => {
    db = await freshDatabase(url, 'tl_anomaly_kill');
    dir = mkdtempSync(path.join(tmpdir(), 'tl-anomaly-kill-'));
    writeFileSync(path.join(dir, 'rules.json'), JSON.stringify({ rules: { refresh_burst: { perFamily: { max: 3, windowSeconds: 600 } } } }));
  });
  afterAll(async () => {
    for (const p of running.splice(0)) await p.kill();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(): Promise<{ server: LedgerProcess; api: LedgerClient }> {
    const server = await spawnLedger({
      LEDGER_STORE: 'postgres',
      DATABASE_URL: db.url,
      LEDGER_ANOMALY_RULES: path.join(dir, 'rules.json'),
      LEDGER_ANOMALY_STATE_FLUSH_MS: '600000',
    });
    running.push(server);
    return { server, api: new LedgerClient(server.baseUrl) };
  }

  async function query<T>(text: string, params: unknown[] = []): Promise<T[]> {
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      return (await c.query(text, params)).rows as T[];
    } finally {
      await c.end();
    }
  }
  const anomalies = async (api: LedgerClient, subject: string): Promise<Array<{ rule: string; familyId: string }>> =>
    (await api.admin('GET', `/v1/anomalies?subject=${subject}`)).body.items;

  it('replays from its checkpoint: the window comes back, nothing is recorded twice', async () => {
    let { server, api } = await start();
    const client = await api.registerClient({ clientId: 'anomaly-kill', reuseGraceSeconds: 0 });
    const family = await api.issue({ subject: 'burster', clientId: client.clientId, scope: 'api:read' });
    let token = family.refresh_token as string;
    for (let i = 0; i < 3; i++) {
      const res = await api.refresh(token, client);
      expect(res.status).toBe(200);
      token = res.body.refresh_token;
    }
    // A reuse after them: once its anomaly is recorded, the engine has handled the three refreshes too.
    const other = await api.issue({ subject: 'reuser', clientId: client.clientId, scope: 'api:read' });
    expect((await api.refresh(other.refresh_token, client)).status).toBe(200);
    expect((await api.refresh(other.refresh_token, client)).body.error).toBe('invalid_grant');
    await eventually(async () => (await anomalies(api, 'reuser')).length === 1, 'reuse anomaly recorded');
    expect(await anomalies(api, 'burster')).toEqual([]);
    // Staged, not written: the kill lands between the two steps.
    expect(await query(`select key from an_state where key = $1`, [`f:${family.family_id}`])).toEqual([]);
    expect(await query(`select position from msg_checkpoints where name = 'anomaly-engine'`)).toEqual([]);
    await server.kill();

    ({ server, api } = await start());
    const fourth = await api.refresh(token, client);
    expect(fourth.status).toBe(200);
    await eventually(async () => (await anomalies(api, 'burster')).length > 0, 'burst anomaly after the restart');
    expect(await anomalies(api, 'burster')).toEqual([expect.objectContaining({ rule: 'refresh_burst', familyId: family.family_id })]);
    expect(await anomalies(api, 'reuser')).toHaveLength(1);

    // A clean stop writes what is staged, and the checkpoint with it (at least to the fourth refresh).
    const [last] = await query<{ position: string }>(`select max(position) as position from tl_events where stream_id = $1`, [`family-${family.family_id}`]);
    expect(Number(last.position)).toBeGreaterThan(0);
    await server.stop();
    const [row] = await query<{ state: { refreshes: unknown[] } }>(`select state from an_state where key = $1`, [`f:${family.family_id}`]);
    expect(row.state.refreshes).toHaveLength(4);
    const [checkpoint] = await query<{ position: string }>(`select position from msg_checkpoints where name = 'anomaly-engine'`);
    expect(Number(checkpoint.position)).toBeGreaterThanOrEqual(Number(last.position));
  });
});
