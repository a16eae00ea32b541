'use strict';
// `npm run kafka:up -- --secure` (or KAFKA_SECURE=1): a throw-away CA and certificates, SCRAM/PLAIN
// users, a SASL_SSL listener, the KRaft StandardAuthorizer and the ledger's ACLs. Used by up.js;
// docs/kafka.md ("Secured broker") explains the layout. Test broker only: every secret is random,
// lives in the instance directory (mode 0600) and is replaced by the next `kafka:up`.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { fail } = require('./common');

/** The broker's own principal on the (mutual-TLS) controller listener: CN of its certificate. */
const BROKER_CN = 'token-ledger-broker';
/** SASL users: admin (super user; the scripts' own probe and ACL set-up), then the three clients. */
const USERS = ['admin', 'ledger', 'verifier', 'other'];
const SCRAM_MECHANISMS = ['SCRAM-SHA-512', 'SCRAM-SHA-256'];
/** What the ledger owns (libs/messaging/src/topics.ts DEFAULT_TOPICS) and its consumer groups. */
const LEDGER_TOPIC_PREFIX = 'token-ledger.';
const LEDGER_GROUP_PREFIX = 'token-ledger-';
const REVOCATIONS_TOPIC = 'token-ledger.revocations.v1';
const VERIFIER_GROUP_PREFIX = 'token-ledger-verifier';

function paths(config) {
  const tls = path.join(config.instanceDir, 'tls');
  const secrets = path.join(config.instanceDir, 'secrets');
  return {
    tls,
    secrets,
    caKey: path.join(tls, 'ca.key'),
    caCert: path.join(tls, 'ca.pem'),
    brokerKey: path.join(tls, 'broker.key'),
    brokerCert: path.join(tls, 'broker.pem'),
    brokerKeystore: path.join(tls, 'broker.p12'),
    clientKey: path.join(tls, 'client.key'),
    clientCert: path.join(tls, 'client.pem'),
    keystorePassword: path.join(secrets, 'keystore.password'),
    password: (user) => path.join(secrets, `${user}.password`),
    envFile: (user) => path.join(config.instanceDir, `${user}.env`),
  };
}

function openssl(args, what) {
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  if (result.error) fail(`--secure needs \`openssl\` on PATH (${result.error.code}); on Debian/Ubuntu: apt-get install -y openssl`);
  if (result.status !== 0) fail(`openssl failed while ${what} (exit ${result.status}):\n${result.stderr}`);
}

function writeSecret(file, value) {
  fs.writeFileSync(file, `${value}\n`, { mode: 0o600 });
}

function readSecret(file) {
  return fs.readFileSync(file, 'utf8').trim();
}

/**
 * CA, broker certificate (SAN 127.0.0.1 and localhost; also its client certificate towards the
 * controller) and one client certificate; random passwords. Reused when `reuse` (KAFKA_KEEP_DATA=1:
 * the SCRAM credentials live in the kept metadata) and complete.
 */
function prepareSecrets(config, reuse) {
  const p = paths(config);
  const complete = () =>
    [p.caCert, p.brokerKeystore, p.clientKey, p.clientCert, p.keystorePassword, ...USERS.map(p.password)].every((f) => fs.existsSync(f));
  if (reuse && complete()) return secretsOf(config);

  fs.rmSync(p.tls, { recursive: true, force: true });
  fs.rmSync(p.secrets, { recursive: true, force: true });
  fs.mkdirSync(p.tls, { recursive: true, mode: 0o700 });
  fs.mkdirSync(p.secrets, { recursive: true, mode: 0o700 });
  // Hex: no character that needs quoting in JAAS, properties or the --add-scram syntax.
  for (const user of USERS) writeSecret(p.password(user), crypto.randomBytes(24).toString('hex'));
  writeSecret(p.keystorePassword, crypto.randomBytes(24).toString('hex'));

  const days = '30';
  openssl(
    ['req', '-x509', '-newkey', 'rsa:2048', '-noenc', '-keyout', p.caKey, '-out', p.caCert, '-days', days, '-subj', '/CN=token-ledger test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    'creating the CA',
  );
  const issue = (name, cn, key, cert, ext) => {
    const csr = path.join(p.tls, `${name}.csr`);
    const extFile = path.join(p.tls, `${name}.ext`);
    fs.writeFileSync(extFile, ext);
    openssl(['req', '-newkey', 'rsa:2048', '-noenc', '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`], `creating the ${name} key`);
    openssl(
      ['x509', '-req', '-in', csr, '-CA', p.caCert, '-CAkey', p.caKey, '-set_serial', `0x${crypto.randomBytes(8).toString('hex')}`,
        '-days', days, '-sha256', '-extfile', extFile, '-out', cert],
      `signing the ${name} certificate`,
    );
    fs.rmSync(csr);
    fs.rmSync(extFile);
  };
  issue('broker', BROKER_CN, p.brokerKey, p.brokerCert,
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n');
  issue('client', 'token-ledger-client', p.clientKey, p.clientCert,
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  openssl(
    ['pkcs12', '-export', '-in', p.brokerCert, '-inkey', p.brokerKey, '-certfile', p.caCert, '-name', 'broker',
      '-out', p.brokerKeystore, '-passout', `file:${p.keystorePassword}`],
    'writing the broker keystore',
  );
  for (const f of [p.caKey, p.brokerKey, p.clientKey, p.brokerKeystore]) fs.chmodSync(f, 0o600);
  return secretsOf(config);
}

function secretsOf(config) {
  const p = paths(config);
  return { paths: p, passwords: Object.fromEntries(USERS.map((u) => [u, readSecret(p.password(u))])), keystorePassword: readSecret(p.keystorePassword) };
}

/** server.properties lines replacing the PLAINTEXT listener (up.js serverProperties). */
function listenerProperties(config, secrets) {
  const { paths: p, passwords } = secrets;
  const admin = `username="admin" password="${passwords.admin}"`;
  const plainUsers = USERS.map((u) => `user_${u}="${passwords[u]}"`).join(' ');
  return [
    `listeners=SASL_SSL://${config.host}:${config.port},CONTROLLER://${config.host}:${config.controllerPort}`,
    `advertised.listeners=SASL_SSL://${config.host}:${config.port}`,
    // The controller listener is TLS with client certificates: only the holder of the broker's key
    // (principal User:CN=token-ledger-broker) gets in, so it is no unauthenticated back door.
    'listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL',
    'inter.broker.listener.name=SASL_SSL',
    'controller.listener.names=CONTROLLER',
    'listener.name.controller.ssl.client.auth=required',
    'sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN',
    'sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512',
    `listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required ${admin};`,
    `listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required ${admin};`,
    `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required ${admin} ${plainUsers};`,
    'ssl.keystore.type=PKCS12',
    `ssl.keystore.location=${p.brokerKeystore}`,
    `ssl.keystore.password=${secrets.keystorePassword}`,
    'ssl.truststore.type=PEM',
    `ssl.truststore.location=${p.caCert}`,
    'ssl.endpoint.identification.algorithm=https',
    'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    `super.users=User:admin;User:CN=${BROKER_CN}`,
    'allow.everyone.if.no.acl.found=false',
  ];
}

/** `kafka.tools.StorageTool format` arguments that create every user's SCRAM credentials. */
function scramFormatArgs(secrets) {
  return USERS.flatMap((user) =>
    SCRAM_MECHANISMS.flatMap((mechanism) => ['--add-scram', `${mechanism}=[name=${user},password=${secrets.passwords[user]}]`]),
  );
}

/** kafkajs options for `user` (the scripts connect as admin). */
function kafkajsOptions(secrets, user = 'admin') {
  return {
    ssl: { ca: [fs.readFileSync(secrets.paths.caCert, 'utf8')], rejectUnauthorized: true },
    sasl: { mechanism: 'scram-sha-512', username: user, password: secrets.passwords[user] },
  };
}

/**
 * Least privilege: the ledger creates, writes and reads its `token-ledger.*` topics and uses its
 * `token-ledger-*` consumer groups; the verifier (resource servers) reads the revocations topic with
 * `token-ledger-verifier*` groups; `other` gets nothing. Idempotent (createAcls of an existing
 * binding is a no-op).
 */
function aclBindings(kafkajs) {
  const { AclResourceTypes: R, AclOperationTypes: O, AclPermissionTypes: P, ResourcePatternTypes: T } = kafkajs;
  const allow = (principal, resourceType, resourceName, resourcePatternType, operations) =>
    operations.map((operation) => ({ resourceType, resourceName, resourcePatternType, principal, host: '*', operation, permissionType: P.ALLOW }));
  return [
    ...allow('User:ledger', R.TOPIC, LEDGER_TOPIC_PREFIX, T.PREFIXED, [O.CREATE, O.WRITE, O.READ, O.DESCRIBE, O.DESCRIBE_CONFIGS]),
    ...allow('User:ledger', R.GROUP, LEDGER_GROUP_PREFIX, T.PREFIXED, [O.READ, O.DESCRIBE]),
    ...allow('User:verifier', R.TOPIC, REVOCATIONS_TOPIC, T.LITERAL, [O.READ, O.DESCRIBE]),
    ...allow('User:verifier', R.GROUP, VERIFIER_GROUP_PREFIX, T.PREFIXED, [O.READ, O.DESCRIBE]),
  ];
}

async function applyAcls(config, secrets) {
  const kafkajs = require('kafkajs');
  const kafka = new kafkajs.Kafka({
    clientId: 'token-ledger-kafka-acls',
    brokers: [config.brokers],
    connectionTimeout: 5000,
    logLevel: kafkajs.logLevel.NOTHING,
    ...kafkajsOptions(secrets),
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const acl = aclBindings(kafkajs);
    await admin.createAcls({ acl });
    return acl.length;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** `<instance>/<user>.env`: the client environment for that principal (the password stays in its file). */
function writeEnvFiles(config, secrets) {
  const { paths: p } = secrets;
  const files = {};
  for (const user of USERS) {
    const env = {
      KAFKA_BROKERS: config.brokers,
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: p.caCert,
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: user,
      KAFKA_SASL_PASSWORD_FILE: p.password(user),
    };
    fs.writeFileSync(p.envFile(user), `${Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n')}\n`, { mode: 0o600 });
    files[user] = p.envFile(user);
  }
  return files;
}

module.exports = {
  BROKER_CN,
  USERS,
  aclBindings,
  applyAcls,
  kafkajsOptions,
  listenerProperties,
  paths,
  prepareSecrets,
  scramFormatArgs,
  writeEnvFiles,
};
