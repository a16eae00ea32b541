import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import { createVerifier, type Verifier, type VerifierOptions } from '@token-ledger/verifier';
import { resolveBackend } from '../backends';
import { deleteTopics, eventually, kafkaClient, runId, testTopics } from '../messaging/support';
import { freePort } from '../support/free-port';
import { ADMIN_TOKEN, LedgerClient, startLedger, type Ledger } from '../support/ledger-harness';
import { describeWithPrometheus, startPrometheus, type RunningPrometheus } from '../support/prometheus';

jest.setTimeout(90_000);

const ROOT = path.resolve(__dirname, '../..');
const RULE_FILES = ['deploy/prometheus/recording.yml', 'deploy/prometheus/alerts.yml'].map((f) => path.join(ROOT, f));
const DASHBOARDS = ['executive', 'oncall', 'debug'];

/** The alert names of the metric catalogue (issue #16); docs/runbooks/ has one runbook per file named here. */
const ALERTS: Record<string, string> = {
  TokenLedgerRefreshErrorBudgetBurnFast: 'authorization-server-outage',
  TokenLedgerRefreshErrorBudgetBurnSlow: 'authorization-server-outage',
  TokenLedgerRefreshLatencyBudgetBurn: 'authorization-server-outage',
  TokenLedgerDown: 'authorization-server-outage',
  TokenLedgerHigh5xxRate: 'authorization-server-outage',
  TokenLedgerRateLimitSurge: 'suspected-compromise',
  TokenLedgerRevocationPropagationSlow: 'revocation-lag',
  TokenLedgerProjectionLagHigh: 'revocation-lag',
  TokenLedgerRotationConflicts: 'rotation-conflicts',
  TokenLedgerReuseDetectionSpike: 'suspected-compromise',
  TokenLedgerAnomalySpike: 'suspected-compromise',
  TokenLedgerRelayStopped: 'relay-stopped',
};

/**
 * Panels (dashboard/panel title/refId) that legitimately return nothing after this short, healthy
 * load. Everything else must return data.
 */
const NO_DATA_ALLOWED: Record<string, string> = {
  // Nothing on events.v1 is garbage in a healthy run (test/messaging/poison-records.* cover it).
  'debug/Poison records on events.v1 (dead-lettered)/A': 'no poison record is produced',
  // Counted per command once a decision loses an optimistic-concurrency race. One instance rarely
  // loses one (parallel refreshes of a family here end as 1 rotation + grace replays, no retry), and
  // forcing one would make the test timing-dependent; the alert's unit tests cover the series.
  'debug/Concurrency retries by command/A': 'no concurrency race is lost under this load',
};
/** Panels of the Kafka relay: without Kafka (KAFKA_BROKERS unset) the relay does not run. CI has Kafka. */
const NEEDS_KAFKA = ['token_ledger_relay_'];

/**
 * Metrics and labels of the issue #16 catalogue that a build may not export yet (they came with the
 * `metrics` branch). A panel or rule reading one that this build does not export may be empty; it is
 * reported on the console. Once the build exports it, the escape no longer applies: the check is strict.
 */
const CATALOGUE_PENDING: { what: string; readBy: (expr: string) => boolean; exported: (text: string) => boolean }[] = [
  ...[
    'token_ledger_client_refreshes_total',
    'token_ledger_reuse_detections_total',
    'token_ledger_tokens_issued_total',
    'token_ledger_revocations_total',
    'token_ledger_audit_reads_total',
    'token_ledger_concurrency_exhausted_total',
    'token_ledger_relay_published_total',
    'token_ledger_relay_behind_seconds',
    'token_ledger_relay_last_publish_timestamp_seconds',
    'token_ledger_relay_up',
    'token_ledger_anomaly_behind_seconds',
    'token_ledger_verifier_revocation_delay_seconds',
    'token_ledger_verifier_revocations_applied_total',
    'token_ledger_verifier_feed_staleness_seconds',
    'token_ledger_verifier_rejected_records_total',
  ].map((name) => ({ what: name, readBy: (expr: string) => expr.includes(name), exported: (text: string) => text.includes(`# TYPE ${name} `) })),
  {
    what: 'token_ledger_http_request_duration_seconds bucket le="0.3"',
    readBy: (expr) => expr.includes('le="0.3"'),
    exported: (text) => /^token_ledger_http_request_duration_seconds_bucket\{le="0\.3"/m.test(text),
  },
  {
    // `result`, and every answer counted (a 401 from client authentication included).
    what: 'token_ledger_refresh_total{outcome,result} of every answer',
    readBy: (expr) => expr.includes('token_ledger_refresh_total'),
    exported: (text) => /^token_ledger_refresh_total\{[^}]*result="/m.test(text),
  },
  {
    what: 'token_ledger_concurrency_retries_total{command}',
    readBy: (expr) => expr.includes('token_ledger_concurrency_retries_total'),
    exported: (text) => /^token_ledger_concurrency_retries_total\{[^}]*command="/m.test(text),
  },
];

interface Target {
  key: string;
  expr: string;
}

/** Every PromQL target of every panel (rows' nested panels included), with Grafana's variables filled in. */
function dashboardTargets(): Target[] {
  const out: Target[] = [];
  for (const name of DASHBOARDS) {
    const dashboard = JSON.parse(readFileSync(path.join(ROOT, 'deploy/grafana/dashboards', `${name}.json`), 'utf8'));
    const walk = (panels: any[]) => {
      for (const panel of panels ?? []) {
        walk(panel.panels);
        for (const target of panel.targets ?? []) {
          if (!target.expr) continue;
          out.push({ key: `${name}/${panel.title}/${target.refId}`, expr: substitute(target.expr) });
        }
      }
    };
    walk(dashboard.panels);
  }
  return out;
}

/** What Grafana would send: the rate window a few scrapes wide, the range of the dashboard, every instance. */
function substitute(expr: string): string {
  return expr
    .replace(/\$__rate_interval/g, '1m')
    .replace(/\$__interval/g, '15s')
    .replace(/\$__range/g, '10m')
    .replace(/\$\{?instance\}?/g, '.*');
}

/** A resource server's verifier, its token_ledger_verifier_* metrics served for Prometheus. */
async function startVerifier(ledger: Ledger): Promise<{ verifier: Verifier; target: string; metrics(): Promise<string>; close(): Promise<void> }> {
  const registry = new Registry();
  const options: VerifierOptions = {
    issuer: ledger.baseUrl,
    jwksUri: `${ledger.baseUrl}/.well-known/jwks.json`,
    revocations: { sse: { url: `${ledger.baseUrl}/v1/revocations/stream`, token: ADMIN_TOKEN } },
    failMode: 'closed',
    maxStalenessMs: 10_000,
  };
  // `registry` is the verifier SDK's option for its metrics (issue #16); assigned, not written in the
  // literal, so this compiles against an SDK that predates it (then the verifier panels stay empty).
  const verifier = createVerifier(Object.assign(options, { registry }));
  await verifier.ready;
  const port = await freePort();
  const server: Server = createServer((_req, res) => {
    void registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    verifier,
    target: `127.0.0.1:${port}`,
    metrics: () => registry.metrics(),
    async close() {
      await verifier.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A real Prometheus scraping a real ledger (embedded store; Kafka too when KAFKA_BROKERS is set) and
 * a verifier, after a short load. Every dashboard panel's query and every rule's expression is
 * evaluated through Prometheus's HTTP API: each must parse, and the panels must return data.
 */
describeWithPrometheus(['prometheus'], 'Prometheus scrapes a loaded ledger: every dashboard panel and rule evaluates', () => {
  const kafka = resolveBackend('kafka');
  const run = runId();
  const topics = testTopics(run);
  let ledger: Ledger;
  let side: Awaited<ReturnType<typeof startVerifier>>;
  let prometheus: RunningPrometheus;
  let exported = '';

  beforeAll(async () => {
    ledger = await startLedger({
      env: {
        // A few failed client authentications are enough for 429s.
        LEDGER_RATE_LIMIT_AUTH_FAILURES: '3/1m',
        ...(kafka.available ? { KAFKA_BROKERS: kafka.url } : {}),
      },
      ...(kafka.available ? { messaging: { topics, groupPrefix: `tl-test-${run}` } } : {}),
    });
    side = await startVerifier(ledger);
    const ledgerTarget = new URL(ledger.baseUrl).host;
    prometheus = await startPrometheus({ jobs: { 'token-ledger': [ledgerTarget], verifier: [side.target] }, ruleFiles: RULE_FILES, scrapeIntervalSeconds: 1 });

    // The load: logins, rotations, a grace replay, concurrent refreshes, a reuse (revokes the family,
    // an anomaly), refusals, a revoke the verifier sees, audit reads, introspection, then a bad client
    // until the auth-failure limiter answers 429.
    const api = new LedgerClient(ledger.baseUrl);
    const client = await api.registerClient({ clientId: 'ops-app', reuseGraceSeconds: 10 });
    const families = await Promise.all([1, 2, 3, 4].map((n) => api.issue({ subject: `user-${n}`, clientId: 'ops-app', scope: 'api:read', context: { ip: '203.0.113.7', userAgent: 'jest' } })));
    const heads: string[] = [];
    for (const family of families) {
      const first = await api.refresh(family.refresh_token, client);
      expect(first.status).toBe(200);
      const second = await api.refresh(first.body.refresh_token, client);
      expect(second.status).toBe(200);
      heads.push(second.body.refresh_token);
    }
    // Grace replay: the same token again at once.
    const rotated = await api.refresh(heads[0], client);
    expect((await api.refresh(heads[0], client)).status).toBe(200);
    // Concurrent refreshes of one family race for its stream (retries).
    await Promise.all(Array.from({ length: 8 }, () => api.refresh(rotated.body.refresh_token, client)));
    // Reuse: a token two generations old revokes family 2 (and the anomaly rule reuse_detected fires);
    // presenting it again is refused, and a refusal inside the interval is tallied.
    expect((await api.refresh(families[1].refresh_token, client)).status).toBe(400);
    expect((await api.refresh(heads[1], client)).status).toBe(400);
    expect((await api.refresh(heads[1], client)).status).toBe(400);
    // A revocation the verifier applies live.
    expect((await api.admin('POST', `/v1/families/${families[2].family_id}/revoke`, { reason: 'logout' })).status).toBeLessThan(300);
    await eventually(() => side.verifier.revocations.size >= 2, 'the verifier applied the revocations', 15_000);
    expect((await api.form('/oauth/revoke', { token: heads[3] }, client)).status).toBe(200);
    expect((await api.form('/oauth/introspect', { token: heads[0] }, client)).status).toBe(200);
    expect((await api.admin('GET', '/v1/audit')).status).toBe(200);
    expect((await api.admin('GET', `/v1/families/${families[0].family_id}`)).status).toBe(200);
    // A /v1 call with an unknown key and a client with the wrong secret: 401, then 429 once the
    // limiter has seen 3 failures from this address.
    const anonymous = await fetch(`${ledger.baseUrl}/v1/audit`, { headers: { authorization: 'Bearer not-a-key' } });
    expect(anonymous.status).toBe(401);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await api.refresh(heads[0], { clientId: 'ops-app', secret: 'wrong-secret' })).status);
    expect(statuses).toContain(401);
    expect(statuses).toContain(429);

    // Prometheus must have scraped the state after the load at least twice (rates need two samples),
    // and evaluated the rules since.
    const loadEnd = Date.now() / 1000;
    await eventually(
      async () => {
        const [samples] = await prometheus.query('count_over_time(up{job="token-ledger"}[1m])').then((r) => r.map((s) => Number(s.value[1])));
        const after = await prometheus.query(`timestamp(up{job="token-ledger"})`);
        const verifierUp = await prometheus.query('up{job="verifier"} == 1');
        return (samples ?? 0) >= 3 && after.length === 1 && Number(after[0].value[1]) > loadEnd + 1.5 && verifierUp.length === 1;
      },
      'two scrapes of the ledger after the load',
      20_000,
    );
    await eventually(async () => (await prometheus.query('token_ledger:refresh_slow:ratio_rate5m or token_ledger:refresh_errors:ratio_rate5m')).length > 0, 'the recording rules evaluated', 10_000);
    exported = (await (await fetch(`${ledger.baseUrl}/metrics`)).text()) + (await side.metrics());
  });

  afterAll(async () => {
    await prometheus?.stop();
    await side?.close();
    await ledger?.destroy();
    if (kafka.available) {
      const admin = kafkaClient(kafka.url).admin();
      await admin.connect();
      await deleteTopics(admin, Object.values(topics));
      await admin.deleteGroups([`tl-test-${run}-revocations`, `tl-test-${run}-anomaly`]).catch(() => undefined);
      await admin.disconnect();
    }
  });

  /** Why an empty result is acceptable for this expression, or undefined when it is not. */
  const emptyAllowed = (key: string, expr: string): string | undefined => {
    if (NO_DATA_ALLOWED[key]) return NO_DATA_ALLOWED[key];
    if (!kafka.available && NEEDS_KAFKA.some((m) => expr.includes(m))) return 'no Kafka: the relay does not run';
    const pending = CATALOGUE_PENDING.filter((p) => p.readBy(expr) && !p.exported(exported)).map((p) => p.what);
    return pending.length ? `not exported by this build: ${pending.join(', ')}` : undefined;
  };

  it('Prometheus scrapes the ledger and the verifier', async () => {
    const targets = await prometheus.api<{ activeTargets: { labels: { job: string }; health: string; lastError: string }[] }>('/api/v1/targets');
    const health = Object.fromEntries(targets.activeTargets.map((t) => [t.labels.job, `${t.health} ${t.lastError}`.trim()]));
    expect(health).toEqual({ 'token-ledger': 'up', verifier: 'up' });
  });

  it('every panel of the three dashboards parses and returns data', async () => {
    const targets = dashboardTargets();
    expect(targets.length).toBeGreaterThan(40);
    const errors: string[] = [];
    const empty: string[] = [];
    const excused: string[] = [];
    for (const { key, expr } of targets) {
      try {
        const result = await prometheus.query(expr);
        if (result.length > 0) continue;
        const why = emptyAllowed(key, expr);
        if (why) excused.push(`${key}: ${why}`);
        else empty.push(`${key}: ${expr}`);
      } catch (error) {
        errors.push(`${key}: ${(error as Error).message}`);
      }
    }
    if (excused.length) console.warn(`dashboard panels without data, allowed:\n  ${excused.join('\n  ')}`);
    expect(errors).toEqual([]);
    expect(empty).toEqual([]);
  });

  it('every rule is loaded, healthy and evaluates; every alert is catalogued, labelled, annotated and has its runbook', async () => {
    const { groups } = await prometheus.api<{ groups: { name: string; rules: any[] }[] }>('/api/v1/rules');
    const rules = groups.flatMap((g) => g.rules);
    const alerts = rules.filter((r) => r.type === 'alerting');
    const records = rules.filter((r) => r.type === 'recording');
    expect(new Set(alerts.map((a) => a.name))).toEqual(new Set(Object.keys(ALERTS)));
    expect(records.length).toBeGreaterThanOrEqual(14);

    const problems: string[] = [];
    const excused: string[] = [];
    for (const rule of rules) {
      if (rule.health !== 'ok') problems.push(`${rule.name}: health ${rule.health} ${rule.lastError ?? ''}`);
      try {
        const result = await prometheus.query(rule.query);
        const why = result.length === 0 && rule.type === 'recording' ? emptyAllowed(rule.name, rule.query) : undefined;
        if (result.length === 0 && rule.type === 'recording') {
          if (why) excused.push(`${rule.name}: ${why}`);
          else problems.push(`${rule.name}: recording rule has no data: ${rule.query}`);
        }
      } catch (error) {
        problems.push(`${rule.name}: ${(error as Error).message}`);
      }
      if (rule.type !== 'alerting') continue;
      if (!['critical', 'warning'].includes(rule.labels?.severity)) problems.push(`${rule.name}: severity ${rule.labels?.severity}`);
      for (const annotation of ['summary', 'description', 'runbook_url']) if (!rule.annotations?.[annotation]) problems.push(`${rule.name}: no ${annotation}`);
      const runbook = `docs/runbooks/${ALERTS[rule.name]}.md`;
      if (rule.annotations?.runbook_url !== runbook) problems.push(`${rule.name}: runbook_url ${rule.annotations?.runbook_url}, expected ${runbook}`);
      if (!existsSync(path.join(ROOT, runbook))) problems.push(`${rule.name}: ${runbook} does not exist`);
      if (!DASHBOARDS.some((d) => rule.annotations?.dashboard === `token-ledger-${d}`)) problems.push(`${rule.name}: dashboard ${rule.annotations?.dashboard}`);
    }
    if (excused.length) console.warn(`recording rules without data, allowed:\n  ${excused.join('\n  ')}`);
    expect(problems).toEqual([]);
  });

  it('a healthy ledger under load: no outage alert is pending or firing', async () => {
    // Pending = its expression is true now. Latency and propagation-delay alerts are left out: on a
    // loaded CI machine they measure the machine.
    const outage = ['TokenLedgerDown', 'TokenLedgerHigh5xxRate', 'TokenLedgerRefreshErrorBudgetBurnFast', 'TokenLedgerRefreshErrorBudgetBurnSlow', 'TokenLedgerRelayStopped', 'TokenLedgerRotationConflicts'];
    const active = await prometheus.query(`ALERTS{alertname=~"${outage.join('|')}"}`);
    expect(active.map((s) => `${s.metric.alertname} ${s.metric.alertstate}`)).toEqual([]);
  });
});
