import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ConfigError, loadConfig } from './ledger-config';

describe('loadConfig', () => {
  it('runs on the embedded default with nothing set', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ store: 'embedded', port: 3000, signingAlg: 'ES256', trustProxy: false, sweepIntervalSeconds: 10, issuer: 'http://localhost:3000' });
    expect(c.dataDir).toMatch(/data$/);
  });

  it('reports every bad variable at once, one line each', () => {
    try {
      loadConfig({ PORT: 'eighty', LEDGER_STORE: 'mongo', LEDGER_SIGNING_ALG: 'HS256', LEDGER_TRUST_PROXY: '10.0.0.0/99', LEDGER_ADMIN_TOKEN: 'short', LEDGER_ISSUER: 'ftp://x' });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems.join('\n');
      for (const name of ['PORT', 'LEDGER_STORE', 'LEDGER_SIGNING_ALG', 'LEDGER_TRUST_PROXY', 'LEDGER_ADMIN_TOKEN', 'LEDGER_ISSUER']) {
        expect(problems).toContain(name);
      }
    }
  });

  it('bounds the wait for a database connection: 3 s by default, LEDGER_DB_ACQUIRE_TIMEOUT_MS otherwise', () => {
    expect(loadConfig({}).databaseAcquireTimeoutMs).toBe(3000);
    expect(loadConfig({ LEDGER_DB_ACQUIRE_TIMEOUT_MS: '750' }).databaseAcquireTimeoutMs).toBe(750);
    for (const bad of ['0', '-1', '2.5', 'soon', '600000']) {
      expect(() => loadConfig({ LEDGER_DB_ACQUIRE_TIMEOUT_MS: bad })).toThrow(/LEDGER_DB_ACQUIRE_TIMEOUT_MS/);
    }
  });

  it('runs the embedded store\'s PGlite in its own thread unless LEDGER_EMBEDDED_THREAD=off, and refuses other values', () => {
    expect(loadConfig({}).embeddedThread).toBe(true);
    expect(loadConfig({ LEDGER_EMBEDDED_THREAD: 'on' }).embeddedThread).toBe(true);
    expect(loadConfig({ LEDGER_EMBEDDED_THREAD: 'off' }).embeddedThread).toBe(false);
    expect(() => loadConfig({ LEDGER_EMBEDDED_THREAD: 'yes' })).toThrow(/LEDGER_EMBEDDED_THREAD="yes": expected one of on, off/);
  });

  it('bounds the client label of the metrics: 50 ids by default, LEDGER_METRICS_MAX_CLIENTS otherwise', () => {
    expect(loadConfig({}).metricsMaxClients).toBe(50);
    expect(loadConfig({ LEDGER_METRICS_MAX_CLIENTS: '200' }).metricsMaxClients).toBe(200);
    for (const bad of ['0', '-3', '1.5', 'all', '10001']) {
      expect(() => loadConfig({ LEDGER_METRICS_MAX_CLIENTS: bad })).toThrow(`LEDGER_METRICS_MAX_CLIENTS=${JSON.stringify(bad)}: expected a whole number from 1 to 10000`);
    }
  });

  it('SSF: https-only push endpoints and a 15 s verification interval by default; both settable, bad values refused', () => {
    expect(loadConfig({})).toMatchObject({ ssfAllowInsecurePush: false, ssfMinVerificationIntervalSeconds: 15 });
    expect(loadConfig({ LEDGER_SSF_ALLOW_INSECURE_PUSH: 'true', LEDGER_SSF_MIN_VERIFICATION_INTERVAL_SECONDS: '60' })).toMatchObject({ ssfAllowInsecurePush: true, ssfMinVerificationIntervalSeconds: 60 });
    expect(loadConfig({ LEDGER_SSF_ALLOW_INSECURE_PUSH: 'false' }).ssfAllowInsecurePush).toBe(false);
    expect(() => loadConfig({ LEDGER_SSF_ALLOW_INSECURE_PUSH: 'yes' })).toThrow(/LEDGER_SSF_ALLOW_INSECURE_PUSH="yes": expected one of true, false/);
    for (const bad of ['0', '-1', 'soon', '86401']) expect(() => loadConfig({ LEDGER_SSF_MIN_VERIFICATION_INTERVAL_SECONDS: bad })).toThrow(/LEDGER_SSF_MIN_VERIFICATION_INTERVAL_SECONDS/);
  });

  it('allows no CORS origin by default, and only exact origins', () => {
    expect(loadConfig({}).corsOrigins).toEqual([]);
    expect(loadConfig({ LEDGER_CORS_ORIGINS: 'https://app.example.com, http://localhost:5173,https://app.example.com' }).corsOrigins).toEqual([
      'https://app.example.com',
      'http://localhost:5173',
    ]);
    try {
      loadConfig({ LEDGER_CORS_ORIGINS: '*,https://app.example.com/,https://App.example.com,null,ftp://files.example.com,app.example.com' });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems;
      expect(problems).toHaveLength(6);
      expect(problems.join('\n')).toContain('"https://app.example.com/" is not an origin (did you mean "https://app.example.com"?)');
      expect(problems.join('\n')).toContain('"https://App.example.com" is not an origin (did you mean "https://app.example.com"?)');
      expect(problems.every((p) => p.startsWith('LEDGER_CORS_ORIGINS: '))).toBe(true);
    }
  });

  it('needs DATABASE_URL for the postgres store', () => {
    expect(() => loadConfig({ LEDGER_STORE: 'postgres' })).toThrow(/DATABASE_URL/);
    expect(loadConfig({ LEDGER_STORE: 'postgres', DATABASE_URL: 'postgres://u@h/db' }).store).toBe('postgres');
  });

  it('needs EVENTSTORE_URL and DATABASE_URL for the eventstoredb store', () => {
    expect(() => loadConfig({ LEDGER_STORE: 'eventstoredb' })).toThrow(/EVENTSTORE_URL[\s\S]*DATABASE_URL|DATABASE_URL[\s\S]*EVENTSTORE_URL/);
    expect(() => loadConfig({ LEDGER_STORE: 'eventstoredb', EVENTSTORE_URL: 'http://x', DATABASE_URL: 'postgres://u@h/db' })).toThrow(/EVENTSTORE_URL/);
    expect(loadConfig({ LEDGER_STORE: 'eventstoredb', EVENTSTORE_URL: 'esdb://localhost:2113?tls=false', DATABASE_URL: 'postgres://u@h/db' })).toMatchObject({
      store: 'eventstoredb',
      eventStoreUrl: 'esdb://localhost:2113?tls=false',
      databaseUrl: 'postgres://u@h/db',
    });
  });

  it('parses trusted proxies', () => {
    expect(loadConfig({ LEDGER_TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ LEDGER_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1']);
  });

  it('rejects malformed broker lists', () => {
    expect(() => loadConfig({ KAFKA_BROKERS: 'not a broker' })).toThrow(/KAFKA_BROKERS/);
    expect(loadConfig({ KAFKA_BROKERS: '127.0.0.1:9092' }).kafkaBrokers).toEqual(['127.0.0.1:9092']);
  });

  it('loads the anomaly rules file, and a bad one stops start-up naming the file and each problem', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tl-config-'));
    const good = path.join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ rules: { impossible_travel: { maxSpeedKmh: 1000 } } }));
    const c = loadConfig({ LEDGER_ANOMALY_RULES: good, LEDGER_ANOMALY_WEBHOOK_URL: 'https://siem.example/hook' });
    expect(c.anomaly).toMatchObject({ enabled: true, rulesFile: good, webhookUrl: 'https://siem.example/hook' });
    expect(c.anomaly.rules.impossible_travel.maxSpeedKmh).toBe(1000);
    expect(loadConfig({ LEDGER_ANOMALY_ENGINE: 'off' }).anomaly.enabled).toBe(false);

    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ rules: { refresh_burst: { perFamily: { max: -1 } }, geo_mismatch: { action: 'shrug' } } }));
    try {
      loadConfig({ LEDGER_ANOMALY_RULES: bad, LEDGER_ANOMALY_WEBHOOK_URL: 'ftp://x', LEDGER_ANOMALY_ENGINE: 'maybe' });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems;
      expect(problems).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^LEDGER_ANOMALY_RULES \(.*bad\.json\): rules\.refresh_burst\.perFamily\.max/),
          expect.stringMatching(/^LEDGER_ANOMALY_RULES \(.*bad\.json\): rules\.geo_mismatch\.action/),
          expect.stringContaining('LEDGER_ANOMALY_WEBHOOK_URL'),
          expect.stringContaining('LEDGER_ANOMALY_ENGINE'),
        ]),
      );
    }
  });

  it('has rate limits by default that bite on failures and floods, in memory without LEDGER_REDIS_URL', () => {
    const c = loadConfig({});
    expect(c.rateLimits).toEqual({
      authFailures: { points: 30, windowSeconds: 60 },
      oauth: { points: 50000, windowSeconds: 10 },
      v1: { points: 50000, windowSeconds: 10 },
    });
    // Far above a busy backend refreshing for many users through one client (≥ 1,000 requests/s).
    for (const limit of [c.rateLimits.oauth, c.rateLimits.v1]) {
      if (limit === 'off') throw new Error('expected a limit');
      expect(limit.points / limit.windowSeconds).toBeGreaterThanOrEqual(5000);
    }
    expect(c.redisUrl).toBeUndefined();
    expect(c.redisKeyPrefix).toBe('token-ledger:');
  });

  it('reads each limit, off, LEDGER_REDIS_URL and its key prefix', () => {
    const c = loadConfig({
      LEDGER_RATE_LIMIT_AUTH_FAILURES: '5/15m',
      LEDGER_RATE_LIMIT_OAUTH: 'off',
      LEDGER_RATE_LIMIT_V1: '100/s',
      LEDGER_REDIS_URL: 'redis://127.0.0.1:6379/2',
      LEDGER_REDIS_KEY_PREFIX: 'ledger-a:',
    });
    expect(c.rateLimits).toEqual({ authFailures: { points: 5, windowSeconds: 900 }, oauth: 'off', v1: { points: 100, windowSeconds: 1 } });
    expect(c).toMatchObject({ redisUrl: 'redis://127.0.0.1:6379/2', redisKeyPrefix: 'ledger-a:' });
    expect(loadConfig({ LEDGER_REDIS_URL: 'rediss://user:pw@cache.internal:6380' }).redisUrl).toBe('rediss://user:pw@cache.internal:6380');
  });

  it('refuses bad limits and Redis settings at start-up, naming each variable', () => {
    try {
      loadConfig({
        LEDGER_RATE_LIMIT_AUTH_FAILURES: '0/1m',
        LEDGER_RATE_LIMIT_OAUTH: '1000 per second',
        LEDGER_RATE_LIMIT_V1: '10/2d',
        LEDGER_REDIS_URL: 'http://127.0.0.1:6379',
        LEDGER_REDIS_KEY_PREFIX: 'has space',
      });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems;
      for (const name of ['LEDGER_RATE_LIMIT_AUTH_FAILURES', 'LEDGER_RATE_LIMIT_OAUTH', 'LEDGER_RATE_LIMIT_V1', 'LEDGER_REDIS_URL', 'LEDGER_REDIS_KEY_PREFIX']) {
        expect(problems.filter((p) => p.startsWith(name))).toHaveLength(1);
      }
      expect(problems.find((p) => p.startsWith('LEDGER_RATE_LIMIT_OAUTH'))).toMatch(/expected N\/WINDOW .* or off/);
    }
    for (const url of ['redis://', 'redis:///0', 'redis://h:6379/db', 'not a url']) {
      expect(() => loadConfig({ LEDGER_REDIS_URL: url })).toThrow(/LEDGER_REDIS_URL/);
    }
  });
});

describe('loadConfig: Kafka TLS and SASL', () => {
  it('carries KAFKA_SSL_* / KAFKA_SASL_* as kafkaSecurity, and reports their problems with the rest', () => {
    const c = loadConfig({ KAFKA_BROKERS: 'k1:9093', KAFKA_SSL: 'true', KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'ledger', KAFKA_SASL_PASSWORD: 'pw' });
    expect(c.kafkaSecurity).toEqual({
      ssl: { ca: undefined, cert: undefined, key: undefined, rejectUnauthorized: true },
      sasl: { mechanism: 'scram-sha-512', username: 'ledger', password: 'pw' },
    });
    expect(loadConfig({ KAFKA_BROKERS: 'k1:9092' }).kafkaSecurity).toBeUndefined();
    try {
      loadConfig({ PORT: 'x', KAFKA_SASL_MECHANISM: 'oauthbearer', KAFKA_SASL_USERNAME: 'ledger', KAFKA_SASL_PASSWORD: 'do-not-print-me' });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as ConfigError).message;
      expect(message).toContain('PORT');
      expect(message).toContain('KAFKA_SASL_MECHANISM="oauthbearer"');
      expect(message).not.toContain('do-not-print-me');
    }
  });
});

describe('loadConfig: SSF delivery', () => {
  it('delivers with 1 s → 60 s backoff, a 10 s push timeout and a 30 s long poll by default', () => {
    expect(loadConfig({}).ssfDelivery).toEqual({ enabled: true, retryMinMs: 1000, retryMaxMs: 60_000, pushTimeoutMs: 10_000, pollWaitMs: 30_000 });
  });

  it('reads each variable, and refuses bad values naming them', () => {
    const c = loadConfig({ LEDGER_SSF_DELIVERY: 'off', LEDGER_SSF_RETRY_MIN_MS: '50', LEDGER_SSF_RETRY_MAX_MS: '400', LEDGER_SSF_PUSH_TIMEOUT_MS: '2000', LEDGER_SSF_POLL_WAIT_MS: '0' });
    expect(c.ssfDelivery).toEqual({ enabled: false, retryMinMs: 50, retryMaxMs: 400, pushTimeoutMs: 2000, pollWaitMs: 0 });
    try {
      loadConfig({ LEDGER_SSF_DELIVERY: 'maybe', LEDGER_SSF_RETRY_MIN_MS: '5000', LEDGER_SSF_RETRY_MAX_MS: '1000', LEDGER_SSF_PUSH_TIMEOUT_MS: 'soon' });
      throw new Error('expected a ConfigError');
    } catch (error) {
      const problems = (error as ConfigError).problems;
      expect(problems.some((p) => p.startsWith('LEDGER_SSF_DELIVERY='))).toBe(true);
      expect(problems.some((p) => p.startsWith('LEDGER_SSF_RETRY_MAX_MS=1000: must not be below'))).toBe(true);
      expect(problems.some((p) => p.startsWith('LEDGER_SSF_PUSH_TIMEOUT_MS='))).toBe(true);
      }
    });
  });

describe('loadConfig: DPoP', () => {
  it('defaults to a 60 s proof window, 5 s of future skew and no server nonce', () => {
    expect(loadConfig({}).dpop).toEqual({ proofMaxAgeSeconds: 60, clockSkewSeconds: 5, nonce: 'off' });
  });

  it('reads LEDGER_DPOP_* and refuses bad values, naming each variable', () => {
    expect(loadConfig({ LEDGER_DPOP_PROOF_MAX_AGE_SECONDS: '120', LEDGER_DPOP_CLOCK_SKEW_SECONDS: '0', LEDGER_DPOP_NONCE: 'required' }).dpop).toEqual({
      proofMaxAgeSeconds: 120,
      clockSkewSeconds: 0,
      nonce: 'required',
    });
    try {
      loadConfig({ LEDGER_DPOP_PROOF_MAX_AGE_SECONDS: '0', LEDGER_DPOP_CLOCK_SKEW_SECONDS: '-1', LEDGER_DPOP_NONCE: 'yes' });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as ConfigError).message;
      expect(message).toContain('LEDGER_DPOP_PROOF_MAX_AGE_SECONDS="0"');
      expect(message).toContain('LEDGER_DPOP_CLOCK_SKEW_SECONDS="-1"');
      expect(message).toContain('LEDGER_DPOP_NONCE="yes"');
    }
  });
});
