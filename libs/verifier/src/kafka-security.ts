import { readFileSync } from 'node:fs';
import type { KafkaConfig } from 'kafkajs';

export const KAFKA_SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number];

/**
 * TLS and SASL settings of a Kafka client, as plain data: PEM contents (not paths) and the
 * password, so they are read and checked once at start-up and can cross into a worker thread.
 * Shared by the ledger (its relay, propagator, anomaly consumer) and resource servers, so both read
 * the same `KAFKA_SSL_*` / `KAFKA_SASL_*` environment (README, docs/kafka.md).
 */
export interface KafkaSecurity {
  ssl?: { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean };
  sasl?: { mechanism: KafkaSaslMechanism; username: string; password: string };
}

/** The kafkajs `ssl` / `sasl` client options for these settings (none: plaintext). */
export function kafkajsSecurity(security: KafkaSecurity | undefined): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const out: Pick<KafkaConfig, 'ssl' | 'sasl'> = {};
  if (security?.ssl) {
    const { ca, cert, key, rejectUnauthorized } = security.ssl;
    out.ssl = { rejectUnauthorized, ...(ca ? { ca: [ca] } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
  }
  if (security?.sasl) {
    const { mechanism, username, password } = security.sasl;
    out.sasl = { mechanism, username, password } as KafkaConfig['sasl'];
  }
  return out;
}

const TRUE = ['true', '1', 'yes', 'on'];
const FALSE = ['false', '0', 'no', 'off'];

/**
 * Reads `KAFKA_SSL`, `KAFKA_SSL_CA_FILE`, `KAFKA_SSL_CERT_FILE`, `KAFKA_SSL_KEY_FILE`,
 * `KAFKA_SSL_REJECT_UNAUTHORIZED`, `KAFKA_SASL_MECHANISM`, `KAFKA_SASL_USERNAME`,
 * `KAFKA_SASL_PASSWORD` / `KAFKA_SASL_PASSWORD_FILE`. Returns every problem (one line per variable,
 * never a password) instead of throwing, so the ledger reports them with the rest of its config.
 */
export function parseKafkaSecurityEnv(env: NodeJS.ProcessEnv = process.env): { security?: KafkaSecurity; problems: string[] } {
  const problems: string[] = [];
  const set = (name: string): string | undefined => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = set(name);
    if (raw === undefined) return fallback;
    if (TRUE.includes(raw.toLowerCase())) return true;
    if (FALSE.includes(raw.toLowerCase())) return false;
    problems.push(`${name}=${JSON.stringify(raw)}: expected true or false`);
    return fallback;
  };
  const file = (name: string, what: string): string | undefined => {
    const p = set(name);
    if (p === undefined) return undefined;
    try {
      const text = readFileSync(p, 'utf8');
      if (!text.includes('-----BEGIN ')) problems.push(`${name}=${p}: not a PEM file (expected ${what})`);
      return text;
    } catch (error) {
      problems.push(`${name}=${p}: cannot read ${what} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
      return undefined;
    }
  };

  const security: KafkaSecurity = {};
  const sslFiles = ['KAFKA_SSL_CA_FILE', 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE', 'KAFKA_SSL_REJECT_UNAUTHORIZED'].filter((n) => set(n) !== undefined);
  if (bool('KAFKA_SSL', false)) {
    const ca = file('KAFKA_SSL_CA_FILE', 'a CA certificate');
    const cert = file('KAFKA_SSL_CERT_FILE', 'a client certificate');
    const key = file('KAFKA_SSL_KEY_FILE', 'a private key');
    if (set('KAFKA_SSL_CERT_FILE') && !set('KAFKA_SSL_KEY_FILE')) problems.push('KAFKA_SSL_KEY_FILE: required with KAFKA_SSL_CERT_FILE (the client certificate’s key)');
    if (set('KAFKA_SSL_KEY_FILE') && !set('KAFKA_SSL_CERT_FILE')) problems.push('KAFKA_SSL_CERT_FILE: required with KAFKA_SSL_KEY_FILE');
    security.ssl = { ca, cert, key, rejectUnauthorized: bool('KAFKA_SSL_REJECT_UNAUTHORIZED', true) };
  } else if (sslFiles.length > 0) {
    problems.push(`KAFKA_SSL: must be true when ${sslFiles.join(', ')} ${sslFiles.length > 1 ? 'are' : 'is'} set`);
  }

  const mechanism = set('KAFKA_SASL_MECHANISM')?.toLowerCase();
  const username = set('KAFKA_SASL_USERNAME');
  const passwordFile = set('KAFKA_SASL_PASSWORD_FILE');
  let password = set('KAFKA_SASL_PASSWORD');
  if (mechanism !== undefined) {
    if (!(KAFKA_SASL_MECHANISMS as readonly string[]).includes(mechanism)) {
      problems.push(`KAFKA_SASL_MECHANISM=${JSON.stringify(env.KAFKA_SASL_MECHANISM)}: expected one of ${KAFKA_SASL_MECHANISMS.join(', ')}`);
    }
    if (!username) problems.push(`KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM`);
    if (password !== undefined && passwordFile !== undefined) {
      problems.push('KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE: set one, not both');
    } else if (passwordFile !== undefined) {
      try {
        password = readFileSync(passwordFile, 'utf8').replace(/\r?\n$/, '');
        if (!password) problems.push(`KAFKA_SASL_PASSWORD_FILE=${passwordFile}: the file is empty`);
      } catch (error) {
        problems.push(`KAFKA_SASL_PASSWORD_FILE=${passwordFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
      }
    } else if (password === undefined) {
      problems.push('KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE: required with KAFKA_SASL_MECHANISM');
    }
    if (username && password) security.sasl = { mechanism: mechanism as KafkaSaslMechanism, username, password };
  } else {
    const stray = ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD', 'KAFKA_SASL_PASSWORD_FILE'].filter((n) => set(n) !== undefined);
    if (stray.length > 0) problems.push(`KAFKA_SASL_MECHANISM: required when ${stray.join(', ')} ${stray.length > 1 ? 'are' : 'is'} set (plain, scram-sha-256 or scram-sha-512)`);
  }

  if (problems.length > 0) return { problems };
  return { security: security.ssl || security.sasl ? security : undefined, problems };
}

export class KafkaSecurityConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid Kafka security settings:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'KafkaSecurityConfigError';
  }
}

/**
 * For resource servers: the `KAFKA_SSL_*` / `KAFKA_SASL_*` environment as verifier options
 * (`revocations: { kafka: { brokers, security: kafkaSecurityFromEnv() } }`); throws
 * KafkaSecurityConfigError listing every problem. undefined when nothing is set (plaintext).
 */
export function kafkaSecurityFromEnv(env: NodeJS.ProcessEnv = process.env): KafkaSecurity | undefined {
  const { security, problems } = parseKafkaSecurityEnv(env);
  if (problems.length > 0) throw new KafkaSecurityConfigError(problems);
  return security;
}
