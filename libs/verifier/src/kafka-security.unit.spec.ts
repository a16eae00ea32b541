import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { kafkajsSecurity, KafkaSecurityConfigError, kafkaSecurityFromEnv, parseKafkaSecurityEnv } from './kafka-security';

const dir = mkdtempSync(path.join(tmpdir(), 'tl-kafka-security-'));
const pem = (name: string, label: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, `-----BEGIN ${label}-----\nAAAA\n-----END ${label}-----\n`);
  return file;
};
const CA = pem('ca.pem', 'CERTIFICATE');
const CERT = pem('client.pem', 'CERTIFICATE');
const KEY = pem('client.key', 'PRIVATE KEY');
const PASSWORD_FILE = path.join(dir, 'ledger.password');
writeFileSync(PASSWORD_FILE, 's3cret-from-file\n');
const NOT_PEM = path.join(dir, 'notes.txt');
writeFileSync(NOT_PEM, 'hello');

const problemsOf = (env: NodeJS.ProcessEnv) => parseKafkaSecurityEnv(env).problems.join('\n');

describe('parseKafkaSecurityEnv (KAFKA_SSL_* / KAFKA_SASL_*)', () => {
  it('is plaintext with nothing set', () => {
    expect(parseKafkaSecurityEnv({})).toEqual({ security: undefined, problems: [] });
    expect(kafkajsSecurity(undefined)).toEqual({});
  });

  it('reads TLS files and SCRAM credentials, password from a file, mechanism case-insensitive', () => {
    const security = kafkaSecurityFromEnv({
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: CA,
      KAFKA_SSL_CERT_FILE: CERT,
      KAFKA_SSL_KEY_FILE: KEY,
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'ledger',
      KAFKA_SASL_PASSWORD_FILE: PASSWORD_FILE,
    });
    expect(security).toEqual({
      ssl: { ca: expect.stringContaining('BEGIN CERTIFICATE'), cert: expect.stringContaining('BEGIN CERTIFICATE'), key: expect.stringContaining('PRIVATE KEY'), rejectUnauthorized: true },
      sasl: { mechanism: 'scram-sha-512', username: 'ledger', password: 's3cret-from-file' },
    });
    expect(kafkajsSecurity(security)).toEqual({
      ssl: { ca: [security!.ssl!.ca], cert: security!.ssl!.cert, key: security!.ssl!.key, rejectUnauthorized: true },
      sasl: { mechanism: 'scram-sha-512', username: 'ledger', password: 's3cret-from-file' },
    });
    // The settings cross into worker threads: plain, structured-clonable data.
    expect(structuredClone(security)).toEqual(security);
  });

  it('TLS with the system CAs, SASL PLAIN without TLS, and rejectUnauthorized=false when asked', () => {
    expect(kafkaSecurityFromEnv({ KAFKA_SSL: '1' })).toEqual({ ssl: { ca: undefined, cert: undefined, key: undefined, rejectUnauthorized: true } });
    expect(kafkaSecurityFromEnv({ KAFKA_SSL: 'true', KAFKA_SSL_REJECT_UNAUTHORIZED: 'false' })?.ssl?.rejectUnauthorized).toBe(false);
    expect(kafkaSecurityFromEnv({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' })).toEqual({
      sasl: { mechanism: 'plain', username: 'u', password: 'p' },
    });
  });

  it('names every problem at once, one per variable, and never the password', () => {
    const env = {
      KAFKA_SSL: 'maybe',
      KAFKA_SSL_CA_FILE: path.join(dir, 'missing.pem'),
      KAFKA_SASL_MECHANISM: 'gssapi',
      KAFKA_SASL_PASSWORD: 'hunter2-secret',
    };
    expect(() => kafkaSecurityFromEnv(env)).toThrow(KafkaSecurityConfigError);
    const problems = problemsOf(env);
    expect(problems).toContain('KAFKA_SSL="maybe": expected true or false');
    expect(problems).toContain('KAFKA_SASL_MECHANISM="gssapi": expected one of plain, scram-sha-256, scram-sha-512');
    expect(problems).toContain('KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM');
    expect(problems).not.toContain('hunter2');
    // KAFKA_SSL is not true, so the CA file is a contradiction rather than silently ignored.
    expect(problems).toContain('KAFKA_SSL: must be true when KAFKA_SSL_CA_FILE is set');
  });

  it('checks the files: missing, not PEM, certificate without key', () => {
    const problems = problemsOf({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: path.join(dir, 'missing.pem'), KAFKA_SSL_CERT_FILE: NOT_PEM });
    expect(problems).toMatch(/KAFKA_SSL_CA_FILE=.*missing\.pem: cannot read a CA certificate \(ENOENT\)/);
    expect(problems).toMatch(/KAFKA_SSL_CERT_FILE=.*notes\.txt: not a PEM file/);
    expect(problems).toContain('KAFKA_SSL_KEY_FILE: required with KAFKA_SSL_CERT_FILE');
    expect(problemsOf({ KAFKA_SSL: 'true', KAFKA_SSL_KEY_FILE: KEY })).toContain('KAFKA_SSL_CERT_FILE: required with KAFKA_SSL_KEY_FILE');
  });

  it('SASL: a password xor a password file, and no credentials without a mechanism', () => {
    expect(problemsOf({ KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'u' })).toContain(
      'KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE: required with KAFKA_SASL_MECHANISM',
    );
    expect(problemsOf({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p', KAFKA_SASL_PASSWORD_FILE: PASSWORD_FILE })).toContain(
      'set one, not both',
    );
    expect(problemsOf({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD_FILE: path.join(dir, 'nope') })).toMatch(
      /KAFKA_SASL_PASSWORD_FILE=.*nope: cannot read it \(ENOENT\)/,
    );
    expect(problemsOf({ KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' })).toContain(
      'KAFKA_SASL_MECHANISM: required when KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD are set',
    );
  });
});
