/**
 * The Helm chart (deploy/helm/token-ledger), linted and rendered by Helm's own engine through
 * scripts/helm/render.js (helm-java; no helm binary), asserted on the parsed manifests.
 *
 * Needs Java 17+ (plus javac and Maven for the first build on a machine). Without them the suite is
 * skipped with the reason, unless REQUIRE_BACKENDS names `helm` (CI), where it fails.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { requiredBackends } from '../backends';

interface RenderResult {
  status: number;
  stdout: string;
  stderr: string;
}
// Plain CommonJS script shared with .ci/run, so required rather than imported.
const helm = require('../../scripts/helm/render') as {
  toolchain(): { ok: true } | { ok: false; reason: string };
  renderAsync(options: RenderOptions): Promise<RenderResult>;
};
interface RenderOptions {
  chart: string;
  values?: string[];
  set?: Record<string, string | number | boolean>;
}

const ROOT = path.resolve(__dirname, '..', '..');
const CHART = 'deploy/helm/token-ledger';
const DEFAULT_VALUES = `${CHART}/ci/default-values.yaml`;
const FULL_VALUES = `${CHART}/ci/full-values.yaml`;
const chartRules = (file: string) => parse(fs.readFileSync(path.join(ROOT, CHART, 'files', file), 'utf8')).groups;

/** Env names that carry a credential; every one must come from a Secret. */
const SECRET_NAME = /KEY|SECRET|TOKEN|PASSWORD|KEK|DATABASE_URL|EVENTSTORE_URL|REDIS_URL|WEBHOOK_URL|HEADERS/;
/** Settings whose names match SECRET_NAME but hold no secret (a key prefix, a lifetime, the path of a mounted Secret). */
const NOT_SECRET = new Set(['LEDGER_REDIS_KEY_PREFIX', 'LEDGER_MAX_ACCESS_TOKEN_TTL', 'KAFKA_SSL_KEY_FILE']);

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: unknown };
}

/** The value sets this file renders, each once; all are rendered side by side in beforeAll. */
const CASES = {
  defaults: { values: [DEFAULT_VALUES] },
  full: { values: [FULL_VALUES], set: { replicaCount: 3, 'autoscaling.enabled': true, 'serviceMonitor.enabled': true, 'prometheusRule.enabled': true } },
  threeReplicasNoExtras: { values: [DEFAULT_VALUES], set: { replicaCount: 3, 'anomaly.enabled': false, 'podDisruptionBudget.enabled': false } },
  noDatabaseUrl: { set: {} },
  embeddedStore: { set: { 'secrets.databaseUrl.name': 'db', store: 'embedded' } },
  secretInPlainEnv: { set: { 'secrets.databaseUrl.name': 'db', 'extraEnv.LEDGER_KEK': 'abc' } },
  saslWithoutSecret: { set: { 'secrets.databaseUrl.name': 'db', 'kafka.brokers': 'k:9092', 'kafka.sasl.mechanism': 'plain' } },
  misspelledValue: { values: [DEFAULT_VALUES], set: { replicas: 3 } },
} satisfies Record<string, Omit<RenderOptions, 'chart'>>;
type CaseName = keyof typeof CASES;
const results = new Map<CaseName, RenderResult>();

function rendered(name: CaseName): RenderResult {
  const result = results.get(name);
  if (!result) throw new Error(`${name} was not rendered`);
  return result;
}

function renderOk(name: CaseName): Manifest[] {
  const result = rendered(name);
  if (result.status !== 0) throw new Error(`helm lint/template exited ${result.status}:\n${result.stderr}`);
  return parseAllDocuments(result.stdout)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0].message}`);
      return doc.toJS() as Manifest | null;
    })
    .filter((m): m is Manifest => m !== null);
}

function only(manifests: Manifest[], kind: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind);
  expect(found).toHaveLength(1);
  return found[0];
}

function ledgerContainer(manifests: Manifest[]) {
  const containers = only(manifests, 'Deployment').spec.template.spec.containers;
  expect(containers).toHaveLength(1);
  return containers[0];
}

function envOf(manifests: Manifest[]): Map<string, EnvVar> {
  const env = ledgerContainer(manifests).env as EnvVar[];
  const byName = new Map(env.map((e) => [e.name, e]));
  expect(byName.size).toBe(env.length); // no variable set twice
  return byName;
}

/** Every credential-like variable is a secretKeyRef, and no plain value looks like a credential. */
function expectNoPlaintextSecrets(manifests: Manifest[]): void {
  expect(manifests.filter((m) => m.kind === 'Secret')).toEqual([]);
  for (const manifest of manifests) {
    for (const container of manifest.spec?.template?.spec?.containers ?? []) {
      for (const e of (container.env ?? []) as EnvVar[]) {
        if (SECRET_NAME.test(e.name) && !NOT_SECRET.has(e.name)) {
          expect({ name: e.name, value: e.value, secretKeyRef: Boolean(e.valueFrom?.secretKeyRef?.name && e.valueFrom.secretKeyRef.key) }).toEqual({
            name: e.name,
            value: undefined,
            secretKeyRef: true,
          });
        }
        // A URL with user info (postgres://user:pass@…) in a plain value would be a leak.
        if (e.value !== undefined) expect({ name: e.name, credentialUrl: /:\/\/[^/\s]*@/.test(e.value) }).toEqual({ name: e.name, credentialUrl: false });
      }
    }
  }
}

const toolchain = helm.toolchain();
const required = requiredBackends().has('helm');

function describeWithHelm(title: string, body: () => void): void {
  if (toolchain.ok) return describe(title, body);
  if (required) {
    return describe(title, () => {
      it('requires helm (Java)', () => {
        throw new Error(`helm unavailable: ${toolchain.reason}, and REQUIRE_BACKENDS=${process.env.REQUIRE_BACKENDS} requires it`);
      });
    });
  }
  console.warn(`${title}: skipped: helm unavailable: ${toolchain.reason}`);
  describe.skip(`${title} (skipped: helm unavailable: ${toolchain.reason})`, body);
}

describeWithHelm('Helm chart deploy/helm/token-ledger (real Helm engine)', () => {
  // The first build on a machine downloads helm-java with Maven (once); renders take ~2 s each.
  jest.setTimeout(180_000);
  beforeAll(async () => {
    const names = Object.keys(CASES) as CaseName[];
    const all = await Promise.all(names.map((name) => helm.renderAsync({ chart: CHART, ...CASES[name] })));
    names.forEach((name, i) => results.set(name, all[i]));
  });

  describe('defaults (only the DATABASE_URL reference set)', () => {
    let manifests: Manifest[];
    beforeAll(() => {
      manifests = renderOk('defaults');
    });

    it('renders exactly the always-on resources', () => {
      expect(manifests.map((m) => m.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
    });

    it('runs 2 replicas on PostgreSQL, DATABASE_URL from the named Secret', () => {
      const deployment = only(manifests, 'Deployment');
      expect(deployment.spec.replicas).toBe(2);
      const env = envOf(manifests);
      expect(env.get('LEDGER_STORE')?.value).toBe('postgres');
      expect(env.get('DATABASE_URL')).toEqual({ name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'token-ledger-secrets', key: 'DATABASE_URL' } } });
      // Unset references leave their variable out rather than pointing at a Secret that is not there.
      for (const name of ['LEDGER_KEK', 'LEDGER_ADMIN_TOKEN', 'LEDGER_REDIS_URL', 'KAFKA_BROKERS', 'KAFKA_SASL_PASSWORD']) expect(env.has(name)).toBe(false);
    });

    it('probes /readyz and /healthz on the port the app listens on (PORT)', () => {
      const container = ledgerContainer(manifests);
      const env = envOf(manifests);
      const port = container.ports.find((p: { name: string }) => p.name === 'http');
      expect(port.containerPort).toBe(3000);
      expect(env.get('PORT')?.value).toBe(String(port.containerPort));
      expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
      expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
      expect(container.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
      const service = only(manifests, 'Service');
      expect(service.spec.ports).toEqual([expect.objectContaining({ name: 'http', targetPort: 'http' })]);
      expect(service.spec.selector).toEqual(only(manifests, 'Deployment').spec.selector.matchLabels);
    });

    it('runs non-root on a read-only root filesystem with no capabilities, /tmp an emptyDir', () => {
      const pod = only(manifests, 'Deployment').spec.template.spec;
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.automountServiceAccountToken).toBe(false);
      const container = ledgerContainer(manifests);
      expect(container.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: 1000,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        privileged: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(container.securityContext.runAsUser).toBeGreaterThan(0);
      const tmp = container.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/tmp');
      expect(pod.volumes.find((v: { name: string }) => v.name === tmp.name)).toHaveProperty('emptyDir');
      expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
      expect(container.resources.limits).toHaveProperty('memory');
    });

    it('mounts the anomaly rules ConfigMap where LEDGER_ANOMALY_RULES points, as a valid rules file', () => {
      const configMap = only(manifests, 'ConfigMap');
      const rules = JSON.parse(configMap.data!['rules.json']);
      expect(rules.rules.failed_refresh_storm.perIp).toEqual({ enabled: true, max: 50, windowSeconds: 300 });
      const pod = only(manifests, 'Deployment').spec.template.spec;
      const volume = pod.volumes.find((v: { configMap?: { name: string } }) => v.configMap?.name === configMap.metadata.name);
      const mount = ledgerContainer(manifests).volumeMounts.find((m: { name: string }) => m.name === volume.name);
      expect(envOf(manifests).get('LEDGER_ANOMALY_RULES')?.value).toBe(`${mount.mountPath}/rules.json`);
      expect(envOf(manifests).get('LEDGER_ANOMALY_ENGINE')?.value).toBe('on');
      // A changed rules file rolls the pods.
      expect(only(manifests, 'Deployment').spec.template.metadata.annotations['checksum/anomaly-rules']).toMatch(/^[0-9a-f]{64}$/);
    });

    it('has a PodDisruptionBudget over the ledger pods', () => {
      const pdb = only(manifests, 'PodDisruptionBudget');
      expect(pdb.apiVersion).toBe('policy/v1');
      expect(pdb.spec.maxUnavailable).toBe(1);
      expect(pdb.spec.selector.matchLabels).toEqual(only(manifests, 'Deployment').spec.selector.matchLabels);
    });

    it('carries no plaintext secret', () => {
      expectNoPlaintextSecrets(manifests);
    });
  });

  describe('replicas=3, HPA, ServiceMonitor, PrometheusRule, Kafka SASL+TLS, every secret reference', () => {
    let manifests: Manifest[];
    beforeAll(() => {
      manifests = renderOk('full');
    });

    it('renders the optional resources', () => {
      expect(manifests.map((m) => m.kind).sort()).toEqual([
        'ConfigMap',
        'Deployment',
        'HorizontalPodAutoscaler',
        'PodDisruptionBudget',
        'PrometheusRule',
        'Service',
        'ServiceAccount',
        'ServiceMonitor',
      ]);
    });

    it('leaves the replica count to the HPA, which starts from replicaCount', () => {
      expect(only(manifests, 'Deployment').spec).not.toHaveProperty('replicas');
      const hpa = only(manifests, 'HorizontalPodAutoscaler');
      expect(hpa.apiVersion).toBe('autoscaling/v2');
      expect(hpa.spec).toMatchObject({ minReplicas: 3, maxReplicas: 8, scaleTargetRef: { kind: 'Deployment', name: only(manifests, 'Deployment').metadata.name } });
      expect(hpa.spec.metrics[0]).toMatchObject({ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } });
    });

    it('scrapes /metrics on the http port of the Service', () => {
      const monitor = only(manifests, 'ServiceMonitor');
      expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
      expect(monitor.metadata.labels).toMatchObject({ release: 'kube-prometheus-stack' });
      expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: 'http', path: '/metrics' })]);
      const service = only(manifests, 'Service');
      expect(service.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
    });

    it('ships the chart copies of the recording and alert rules as the PrometheusRule', () => {
      const rule = only(manifests, 'PrometheusRule');
      expect(rule.spec.groups).toEqual([...chartRules('prometheus-recording.yml'), ...chartRules('prometheus-rules.yml')]);
      expect(rule.spec.groups.length).toBeGreaterThan(0);
    });

    it('takes every credential from a Secret', () => {
      const env = envOf(manifests);
      const refs = Object.fromEntries([...env.values()].filter((e) => e.valueFrom?.secretKeyRef).map((e) => [e.name, e.valueFrom!.secretKeyRef]));
      expect(refs).toEqual({
        DATABASE_URL: { name: 'token-ledger-secrets', key: 'DATABASE_URL' },
        LEDGER_KEK: { name: 'token-ledger-secrets', key: 'LEDGER_KEK' },
        LEDGER_ADMIN_TOKEN: { name: 'token-ledger-secrets', key: 'LEDGER_ADMIN_TOKEN' },
        LEDGER_REDIS_URL: { name: 'token-ledger-redis', key: 'url' },
        LEDGER_ANOMALY_WEBHOOK_URL: { name: 'token-ledger-webhook', key: 'url' },
        KAFKA_SASL_USERNAME: { name: 'token-ledger-kafka', key: 'username' },
        KAFKA_SASL_PASSWORD: { name: 'token-ledger-kafka', key: 'password' },
        OTEL_EXPORTER_OTLP_HEADERS: { name: 'token-ledger-otel', key: 'headers' },
      });
      expectNoPlaintextSecrets(manifests);
    });

    it('mounts the Kafka TLS Secret read-only where KAFKA_SSL_CA_FILE, _CERT_FILE and _KEY_FILE point', () => {
      const env = envOf(manifests);
      expect(env.get('KAFKA_SSL')?.value).toBe('true');
      expect(env.get('KAFKA_SASL_MECHANISM')?.value).toBe('scram-sha-512');
      const pod = only(manifests, 'Deployment').spec.template.spec;
      const volume = pod.volumes.find((v: { secret?: { secretName: string } }) => v.secret?.secretName === 'token-ledger-kafka-tls');
      const mount = ledgerContainer(manifests).volumeMounts.find((m: { name: string }) => m.name === volume.name);
      expect(mount.readOnly).toBe(true);
      expect(env.get('KAFKA_SSL_CA_FILE')?.value).toBe(`${mount.mountPath}/ca.crt`);
      expect(env.get('KAFKA_SSL_CERT_FILE')?.value).toBe(`${mount.mountPath}/tls.crt`);
      expect(env.get('KAFKA_SSL_KEY_FILE')?.value).toBe(`${mount.mountPath}/tls.key`);
    });
  });

  it('replicaCount=3 without an HPA sets the Deployment to 3', () => {
    const manifests = renderOk('threeReplicasNoExtras');
    expect(only(manifests, 'Deployment').spec.replicas).toBe(3);
    // Switching the engine off drops the rules and their mount.
    expect(manifests.map((m) => m.kind).sort()).toEqual(['Deployment', 'Service', 'ServiceAccount']);
    expect(envOf(manifests).get('LEDGER_ANOMALY_ENGINE')?.value).toBe('off');
    expect(envOf(manifests).has('LEDGER_ANOMALY_RULES')).toBe(false);
  });

  it.each<[string, CaseName, RegExp]>([
    ['no DATABASE_URL reference', 'noDatabaseUrl', /secrets\.databaseUrl is required: .*several replicas.*kubectl create secret generic/],
    ['the embedded store', 'embeddedStore', /store=embedded is not supported by this chart/],
    ['a secret-looking plain variable', 'secretInPlainEnv', /extraEnv\.LEDGER_KEK looks like a secret/],
    ['SASL without its Secret', 'saslWithoutSecret', /kafka\.sasl\.existingSecret is empty/],
  ])('refuses to render with %s, saying why', (_title, name, message) => {
    const result = rendered(name);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
  });

  it('fails lint on a value values.schema.json does not know (a typo is never ignored)', () => {
    const result = rendered('misspelledValue');
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/Additional property replicas is not allowed/);
  });
});

describe('the Prometheus rules in the chart', () => {
  // Helm reads no file outside the chart, so the chart carries copies of deploy/prometheus/*.yml;
  // the burn-rate alerts read recording.yml's series, so both files travel together.
  it.each([
    ['files/prometheus-rules.yml', 'alerts.yml'],
    ['files/prometheus-recording.yml', 'recording.yml'],
  ])('%s is a byte-identical copy of deploy/prometheus/%s', (copy, original) => {
    const chartCopy = fs.readFileSync(path.join(ROOT, CHART, copy));
    expect(chartCopy.equals(fs.readFileSync(path.join(ROOT, 'deploy', 'prometheus', original)))).toBe(true);
  });
});
