import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openEventStore } from '@token-ledger/event-store';
import { verifyChain } from '@token-ledger/forensics';
import { describeWithBackend } from './backends';
import { freshDatabase } from './support/fresh-database';
import { LedgerClient } from './support/ledger-harness';
import { spawnLedger, type LedgerProcess } from './support/ledger-process';

/**
 * Tracing end to end: `serve` (a child process, PostgreSQL store) exports OTLP/JSON to a plain
 * receiver here, configured by the OTEL_* variables alone (docs/tracing.md).
 */
interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  links?: { traceId: string; spanId: string }[];
  attributes?: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
}

function attribute(span: ExportedSpan, key: string): string | number | undefined {
  const v = span.attributes?.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : undefined);
}

/** POST /v1/traces (OTLP over HTTP, JSON encoding): keeps every span it is sent. */
async function otlpReceiver(): Promise<{ url: string; spans: ExportedSpan[]; close(): Promise<void> }> {
  const spans: ExportedSpan[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces' && /json/.test(req.headers['content-type'] ?? '')) {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans?: { scopeSpans?: { spans?: ExportedSpan[] }[] }[] };
        for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, spans, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Depth of each span below its trace's root (1 = the root), following parentSpanId inside the set. */
function depths(spans: ExportedSpan[]): Map<string, number> {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const out = new Map<string, number>();
  for (const s of spans) {
    let depth = 1;
    for (let p = s.parentSpanId; p && byId.has(p); p = byId.get(p)!.parentSpanId) depth++;
    out.set(s.spanId, depth);
  }
  return out;
}

/** JSON log lines of the child's stdout. */
function logLines(server: LedgerProcess): Record<string, unknown>[] {
  return server.output
    .join('')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describeWithBackend('postgres', 'tracing (OpenTelemetry, OTLP/JSON to a local receiver)', (url) => {
  let receiver: Awaited<ReturnType<typeof otlpReceiver>>;
  let db: { url: string; drop: () => Promise<void> };
  let dbUrl: string;
  const running: LedgerProcess[] = [];

  beforeAll(async () => {
    receiver = await otlpReceiver();
    db = await freshDatabase(url, 'tl_tracing');
    dbUrl = db.url;
  });
  afterAll(async () => {
    for (const p of running.splice(0)) await p.kill();
    await receiver?.close();
    await db?.drop();
  });

  async function start(otel: Record<string, string>): Promise<{ server: LedgerProcess; api: LedgerClient }> {
    const server = await spawnLedger({ LEDGER_STORE: 'postgres', DATABASE_URL: dbUrl, LEDGER_ANOMALY_ENGINE: 'off', LOG_LEVEL: 'debug', ...otel });
    running.push(server);
    return { server, api: new LedgerClient(server.baseUrl) };
  }

  /** A login (issue a family) and one refresh; the refresh's answer and its log line (route /oauth/token). */
  async function loginAndRefresh(api: LedgerClient, server: LedgerProcess, clientId: string) {
    const client = await api.registerClient({ clientId });
    const family = await api.issue({ subject: `${clientId}-alice`, clientId, scope: 'api:read offline_access' });
    const refreshed = await api.refresh(family.refresh_token, client);
    expect(refreshed.status).toBe(200);
    await server.waitFor(/"route":"\/oauth\/token"/, 5_000);
    const line = logLines(server).find((l) => l.route === '/oauth/token' && l.msg === 'request')!;
    return { family, line };
  }

  it('one refresh is one trace: server span → command → store append → pg, and jwt.sign; its log line names the trace', async () => {
    const { server, api } = await start({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'token-ledger-e2e',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    const { family, line } = await loginAndRefresh(api, server, 'traced');

    const server_ = await until('the refresh server span', 10_000, () => receiver.spans.find((s) => s.name === 'POST /oauth/token'));
    const inTrace = () => receiver.spans.filter((s) => s.traceId === server_.traceId);
    const trace = await until('the refresh trace (command, append, jwt.sign)', 10_000, () => {
      const spans = inTrace();
      const names = spans.map((s) => s.name);
      return ['command RotateToken', 'eventstore.append', 'jwt.sign'].every((n) => names.includes(n)) ? spans : undefined;
    });
    expect(server_.parentSpanId || undefined).toBeUndefined(); // the request came without a traceparent: a root
    expect(trace.length).toBeGreaterThanOrEqual(4);
    const byName = (name: string) => trace.find((s) => s.name === name)!;
    const command = byName('command RotateToken');
    const append = byName('eventstore.append');
    expect(command.parentSpanId).toBe(server_.spanId);
    expect(append.parentSpanId).toBe(command.spanId);
    expect(byName('jwt.sign').parentSpanId).toBe(command.spanId);
    expect(attribute(append, 'eventstore.stream')).toBe(`family-${family.family_id}`);
    expect(attribute(append, 'eventstore.event_count')).toBe(1);
    expect(attribute(server_, 'http.route')).toBe('/oauth/token');
    const depth = depths(trace);
    expect(depth.get(append.spanId)).toBe(3);
    // pg's spans hang below the append (and the loads): the chain goes deeper still.
    expect(Math.max(...depth.values())).toBeGreaterThanOrEqual(4);
    // The login was a trace of its own.
    expect(receiver.spans.some((s) => s.name === 'POST /v1/families' && s.traceId !== server_.traceId)).toBe(true);

    // The request's log line carries the trace (and the server span) it was written in.
    expect(line.trace_id).toBe(server_.traceId);
    expect(line.span_id).toBe(server_.spanId);
    // The stored events carry the writer's context: the rotation's names the refresh's trace.
    const rotated = await until('the rotation in the audit view', 10_000, async () => (await api.admin('GET', `/v1/audit?familyId=${family.family_id}&type=TokenRotated&limit=5`)).body.items?.[0]);
    expect(rotated.metadata.traceparent).toMatch(new RegExp(`^00-${server_.traceId}-${command.spanId}-01$`));
    // The projection thread (a worker of its own, with its own SDK) continues or links the trace.
    const projected = await until('a projection batch span of the refresh', 10_000, () =>
      receiver.spans.find((s) => s.name === 'projection batch' && (s.traceId === server_.traceId || s.links?.some((l) => l.traceId === server_.traceId))),
    );
    expect(projected).toBeDefined();
    // The hash chain covers traceparent like any metadata: verify finds every stream intact.
    const store = await openEventStore({ store: 'postgres', url: dbUrl, poolSize: 2 });
    try {
      const report = await verifyChain(store, { all: true });
      expect(report).toMatchObject({ ok: true, problemCount: 0 });
      expect(report!.events).toBeGreaterThanOrEqual(3);
    } finally {
      await store.close();
    }
    // A subject (a user id, often an address) in a path or a query never reaches the trace backend:
    // the server span's URL attributes are the route pattern.
    const subject = 'traced-alice';
    expect((await api.admin('GET', `/v1/subjects/${subject}/families`)).status).toBe(200);
    expect((await api.admin('GET', `/v1/audit?subject=${subject}&limit=1`)).status).toBe(200);
    const read = await until('the subject read span', 10_000, () => receiver.spans.find((s) => s.name === 'GET /v1/subjects/:sub/families'));
    expect(attribute(read, 'http.route')).toBe('/v1/subjects/:sub/families');
    await until('the audit read span', 10_000, () => receiver.spans.find((s) => s.name === 'GET /v1/audit'));
    expect(JSON.stringify(receiver.spans)).not.toContain(subject);
    console.log(`refresh trace: ${inTrace().map((s) => `${s.name} (depth ${depths(inTrace()).get(s.spanId)})`).join(', ')}`);
    await server.stop();
  }, 60_000);

  it('off (OTEL_SDK_DISABLED=true beside an endpoint; no OTEL variable at all is tracing.unit.spec.ts): nothing exported, no trace ids in logs or events', async () => {
    const before = receiver.spans.length;
    const { server, api } = await start({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '100' });
    const { family, line } = await loginAndRefresh(api, server, 'untraced');
    expect(line.reqId).toBeDefined();
    expect(line.trace_id).toBeUndefined();
    const items = await until('the rotation in the audit view', 10_000, async () => {
      const page = await api.admin('GET', `/v1/audit?familyId=${family.family_id}&limit=10`);
      return page.body.items?.some((e: { type: string }) => e.type === 'TokenRotated') ? (page.body.items as { metadata: Record<string, unknown> }[]) : undefined;
    });
    for (const e of items) expect(e.metadata.traceparent).toBeUndefined();
    // A clean stop flushes whatever would have been buffered: still nothing.
    await server.stop();
    expect(receiver.spans.length).toBe(before);
  }, 60_000);
});
