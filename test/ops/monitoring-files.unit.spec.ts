import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const DASHBOARDS = ['executive', 'oncall', 'debug'];

/** Every panel, those nested in collapsed rows included. */
function panelsOf(dashboard: any): any[] {
  return (dashboard.panels ?? []).flatMap((p: any) => [p, ...(p.panels ?? [])]);
}

describe('Grafana dashboards are provisioning-ready', () => {
  it.each(DASHBOARDS)('%s.json: stable uid, no id, every query through the datasource variable (default uid prometheus)', (name) => {
    const dashboard = JSON.parse(read(`deploy/grafana/dashboards/${name}.json`));
    expect(dashboard.id).toBeNull();
    expect(dashboard.uid).toBe(`token-ledger-${name}`);
    const variable = dashboard.templating.list.find((v: any) => v.name === 'datasource');
    expect(variable).toMatchObject({ type: 'datasource', query: 'prometheus', current: { value: 'prometheus' } });
    const queried = panelsOf(dashboard).filter((p) => p.targets?.length);
    expect(queried.length).toBeGreaterThan(5);
    for (const panel of queried) {
      expect({ panel: panel.title, ds: panel.datasource }).toEqual({ panel: panel.title, ds: { type: 'prometheus', uid: '${datasource}' } });
      for (const target of panel.targets) expect({ panel: panel.title, ds: target.datasource }).toEqual({ panel: panel.title, ds: { type: 'prometheus', uid: '${datasource}' } });
    }
    // Panel ids are unique within the dashboard (Grafana needs that; no other id is hard-coded).
    const ids = panelsOf(dashboard).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('the provisioning files name the data source uid the dashboards default to, and the dashboards directory', () => {
    expect(read('deploy/grafana/provisioning/datasources/prometheus.yml')).toMatch(/^\s+uid: prometheus$/m);
    expect(read('deploy/grafana/provisioning/dashboards/token-ledger.yml')).toMatch(/^\s+path: \/var\/lib\/grafana\/dashboards$/m);
  });
});

describe('docker-compose.yml monitoring services', () => {
  const compose = read('docker-compose.yml');

  it('mounts only paths that exist in the repository', () => {
    const mounts = [...compose.matchAll(/^\s+- \.\/([^:]+):/gm)].map((m) => m[1]);
    expect(mounts).toEqual(expect.arrayContaining(['deploy/prometheus', 'deploy/grafana/dashboards', 'deploy/grafana/provisioning/datasources', 'deploy/grafana/provisioning/dashboards']));
    for (const mount of mounts) expect({ mount, exists: existsSync(path.join(ROOT, mount)) }).toEqual({ mount, exists: true });
  });

  it('binds every published port to loopback', () => {
    const ports = [...compose.matchAll(/^\s+- "([^"]+)"$/gm)].map((m) => m[1]).filter((p) => /^\S*\d+:\d+$/.test(p));
    expect(ports).toEqual(expect.arrayContaining(['127.0.0.1:9090:9090', '127.0.0.1:3001:3000']));
    for (const port of ports) expect(port).toMatch(/^127\.0\.0\.1:/);
  });

  it('Prometheus scrapes the ledger service as job token-ledger (the alerts read up{job="token-ledger"})', () => {
    const config = read('deploy/prometheus/prometheus.yml');
    expect(config).toMatch(/job_name: token-ledger\n(?:.*\n)*?\s+- targets: \['token-ledger:3000'\]/);
    expect(compose).toMatch(/^  token-ledger:$/m);
    expect(read('deploy/grafana/provisioning/datasources/prometheus.yml')).toContain('url: http://prometheus:9090');
  });
});
