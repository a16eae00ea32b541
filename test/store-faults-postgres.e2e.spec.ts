import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { familyStreamId } from '@token-ledger/envelope';
import { isStoreUnavailable, type SqlClient } from '@token-ledger/event-store';
import { describeWithBackend } from './backends';
import { LedgerClient, startLedger, type Ledger } from './support/ledger-harness';
import { TcpProxy } from './support/tcp-proxy';

/**
 * Honest answers while PostgreSQL fails (SPEC §9): an exhausted pool, a database that goes away and
 * comes back under load, one that goes silent. Every answer is a success or a 503 with Retry-After,
 * never a 500 or a hang; /readyz follows the database within 2 s; nothing needs a restart. The app
 * reaches the shared server through a proxy the test breaks, and its connections carry their own
 * application_name, so the server-side kill below touches no other session.
 */
describeWithBackend('postgres', 'PostgreSQL faults', (url) => {
  const appName = `tl_faults_${randomBytes(4).toString('hex')}`;
  let ledger: Ledger;
  let proxy: TcpProxy;
  let admin: Client;
  let api: LedgerClient;

  beforeAll(async () => {
    admin = new Client({ connectionString: url });
    await admin.connect();
    const target = new URL(url);
    proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    const via = new URL(url);
    via.hostname = '127.0.0.1';
    via.port = String(await proxy.open());
    via.searchParams.set('application_name', appName);
    ledger = await startLedger({ store: { kind: 'postgres', url: via.toString() }, env: { LEDGER_DB_ACQUIRE_TIMEOUT_MS: '500' } });
    api = new LedgerClient(ledger.baseUrl);
  }, 60_000);

  afterAll(async () => {
    await proxy?.restore(); // dropping the schema goes through it too
    await ledger?.destroy();
    await proxy?.close();
    await admin?.end();
  });

  const readyz = async (): Promise<{ status: number; body: any; ms: number }> => {
    const started = Date.now();
    const res = await fetch(`${ledger.baseUrl}/readyz`);
    return { status: res.status, body: await res.json(), ms: Date.now() - started };
  };

  it('/readyz turns unready within 2 s of the database going away (reset or silent), and ready again without a restart', async () => {
    expect((await readyz()).status).toBe(200);
    for (const fault of ['cut', 'stall'] as const) {
      const wentAway = Date.now();
      await (fault === 'cut' ? proxy.cut() : proxy.stall());
      const probe = await readyz();
      expect({ fault, status: probe.status, body: probe.body }).toMatchObject({ fault, status: 503, body: { status: 'not_ready', checks: { store: expect.stringMatching(/^unavailable: /) } } });
      expect(Date.now() - wentAway).toBeLessThan(2000);

      await proxy.restore();
      const back = Date.now();
      await eventually(async () => (await readyz()).status === 200, 10_000);
      expect(Date.now() - back).toBeLessThan(5000);
    }
  }, 60_000);

  it('an exhausted pool answers 503 with Retry-After within the acquire timeout (not a hang, not a 500), then serves again', async () => {
    const client = await api.registerClient({ clientId: 'faults-pool' });
    const issued = await api.issue({ subject: 'paula', clientId: client.clientId, scope: 'api:read' });
    const held = await holdConnections(ledger.store.capabilities.sql!, 10);
    try {
      const started = Date.now();
      const [refreshes, issues, probe] = await Promise.all([
        Promise.all(Array.from({ length: 12 }, () => api.refresh(issued.refresh_token, client))),
        Promise.all(Array.from({ length: 4 }, (_, i) => api.admin('POST', '/v1/families', { subject: `paula-${i}`, clientId: client.clientId, scope: 'api:read' }))),
        readyz(),
      ]);
      expect(Date.now() - started).toBeLessThan(5000);
      for (const r of refreshes) {
        expect({ status: r.status, body: r.body, retryAfter: r.headers.get('retry-after') }).toEqual({
          status: 503,
          body: { error: 'temporarily_unavailable', error_description: 'the ledger cannot reach its store; try again later' },
          retryAfter: '5',
        });
      }
      for (const r of issues) {
        expect({ status: r.status, type: r.headers.get('content-type'), detail: r.body.detail, retryAfter: r.headers.get('retry-after') }).toEqual({
          status: 503,
          type: expect.stringContaining('application/problem+json'),
          detail: 'the ledger cannot reach its store; try again later',
          retryAfter: '5',
        });
      }
      expect(probe).toMatchObject({ status: 503, body: { checks: { store: 'unavailable: timeout exceeded when trying to connect' } } });
      expect(probe.ms).toBeLessThan(2000);
    } finally {
      await held.release();
    }
    // Nothing rotated while the pool was exhausted: the same token is still the live head.
    expect((await api.refresh(issued.refresh_token, client)).status).toBe(200);
    expect((await readyz()).status).toBe(200);
  }, 60_000);

  it('under load, the database going away and its backends being killed: only successes and 503s, and everything recovers by itself', async () => {
    // A grace window, as a real client should have: a rotation that committed before its answer was
    // lost is replayed when the client retries with the same token, instead of counting as reuse.
    const client = await api.registerClient({ clientId: 'faults-load', reuseGraceSeconds: 60 });
    const families = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const issued = await api.issue({ subject: `lena-${i}`, clientId: client.clientId, scope: 'api:read' });
        return { id: issued.family_id as string, token: issued.refresh_token as string };
      }),
    );
    const listenersBefore = await listeners();
    expect(listenersBefore).toBeGreaterThan(0);

    const outcomes: { route: string; status: number; retryAfter: string | null; body: any }[] = [];
    let running = true;
    const refresher = async (family: { token: string }) => {
      while (running) {
        const res = await api.refresh(family.token, client).catch((error: Error) => ({ status: 0, body: error.message, headers: new Headers() }));
        outcomes.push({ route: '/oauth/token', status: res.status, retryAfter: res.headers.get('retry-after'), body: res.body });
        if (res.status === 200) family.token = res.body.refresh_token;
        else await sleep(25);
      }
    };
    const issuer = async (n: number) => {
      for (let k = 0; running; k++) {
        const res = await api
          .admin('POST', '/v1/families', { subject: `issuer-${n}-${k}`, clientId: client.clientId, scope: 'api:read' })
          .catch((error: Error) => ({ status: 0, body: error.message, headers: new Headers() }));
        outcomes.push({ route: '/v1/families', status: res.status, retryAfter: res.headers.get('retry-after'), body: res.body });
        if (res.status !== 201) await sleep(25);
      }
    };
    const load = Promise.all([...families.map(refresher), issuer(0), issuer(1)]);

    await sleep(1000);
    // The database goes down: every connection reset, new ones refused for 3 s.
    await proxy.cut();
    await sleep(3000);
    await proxy.open();
    await sleep(2000);
    // The server ends our backends, as a restart does (57P01 admin_shutdown), mid-flight.
    const killed = await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()', [appName]);
    expect(killed.rowCount).toBeGreaterThan(0);
    await sleep(2000);
    running = false;
    await load;

    const unexpected = outcomes.filter((o) => ![200, 201, 503].includes(o.status));
    expect(unexpected).toEqual([]);
    const unavailable = outcomes.filter((o) => o.status === 503);
    expect(unavailable.length).toBeGreaterThan(0); // the outage was seen
    expect(outcomes.length - unavailable.length).toBeGreaterThan(unavailable.length / 10); // and work went on around it
    for (const o of unavailable) {
      expect(o.retryAfter).toMatch(/^[1-9]\d*$/);
      if (o.route === '/oauth/token') expect(o.body).toMatchObject({ error: 'temporarily_unavailable' });
      else expect(o.body).toMatchObject({ status: 503, title: 'Service Unavailable' });
    }

    // Every family is intact and refreshes, with no restart.
    for (const family of families) {
      const res = await api.refresh(family.token, client);
      expect({ status: res.status, body: res.status === 200 ? 'ok' : res.body }).toEqual({ status: 200, body: 'ok' });
      family.token = res.body.refresh_token;
    }

    // The projection thread caught up with everything committed, outage or not.
    await eventually(async () => ledger.runtime.readModels.runner.position >= (await ledger.store.headPosition()), 20_000);
    for (const family of families) {
      const events = await ledger.store.readStream(familyStreamId(family.id));
      const generation = Math.max(...events.map((e) => Number((e.data as { generation?: number }).generation ?? 0)));
      expect(generation).toBeGreaterThan(1);
      const view = await api.admin('GET', `/v1/families/${family.id}`);
      expect(view.body).toMatchObject({ status: 'active', generation });
    }
    // The LISTEN connections (this thread's and the worker threads') are back.
    await eventually(async () => (await listeners()) >= listenersBefore, 10_000);
  }, 120_000);

  /** Backends of this app sitting in LISTEN: one per open store (the API thread's and each worker thread's). */
  async function listeners(): Promise<number> {
    const { rows } = await admin.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where application_name = $1 and query ilike 'listen %'", [appName]);
    return rows[0].n;
  }
});

/** Takes `n` connections of the pool inside open transactions, until released. */
async function holdConnections(sql: SqlClient, n: number): Promise<{ release(): Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const entered: Promise<void>[] = [];
  const done: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    entered.push(
      new Promise<void>((inside) => {
        done.push(
          (async () => {
            // A background reader may hold a connection for a moment: try again until this one is ours.
            for (;;) {
              try {
                await sql.transaction(async () => {
                  inside();
                  await released;
                });
                return;
              } catch (error) {
                if (!isStoreUnavailable(error)) throw error;
              }
            }
          })(),
        );
      }),
    );
  }
  await Promise.all(entered);
  return {
    async release() {
      release();
      await Promise.all(done);
    },
  };
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`not true within ${timeoutMs} ms`);
    await sleep(100);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
