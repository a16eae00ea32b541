import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { describeWithPrometheus, promtool } from '../support/prometheus';

const PROM_DIR = path.resolve(__dirname, '../../deploy/prometheus');
const RULE_FILES = ['alerts.yml', 'recording.yml'];
const RULE_TESTS = readdirSync(path.join(PROM_DIR, 'tests')).filter((f) => f.endsWith('.test.yml')).map((f) => `tests/${f}`);

/**
 * The alert and recording rules as operators get them: Prometheus's own checker and its rule unit
 * tests (deploy/prometheus/tests/*.test.yml: each alert fires in one case and stays quiet in another).
 */
describeWithPrometheus(['promtool'], 'Prometheus rules (promtool)', () => {
  it('promtool check rules: the rule files parse, every expression is valid, no duplicate rules', () => {
    const { status, output } = promtool(['check', 'rules', ...RULE_FILES], PROM_DIR);
    expect(output).toContain('SUCCESS');
    expect(status).toBe(0);
  });

  it('promtool test rules: every alert fires when it should and not when it should not', () => {
    const { status, output } = promtool(['test', 'rules', ...RULE_TESTS], PROM_DIR);
    // On failure the output names the alert, the time and the expected and actual alerts.
    if (status !== 0) throw new Error(output);
    expect(RULE_TESTS.length).toBeGreaterThanOrEqual(3);
    expect(output.match(/SUCCESS/g)).toHaveLength(RULE_TESTS.length);
  });

  it('promtool check config: the compose configuration (deploy/prometheus/prometheus.yml) is valid', () => {
    const { status, output } = promtool(['check', 'config', 'prometheus.yml'], PROM_DIR);
    if (status !== 0) throw new Error(output);
    expect(output).toContain('SUCCESS');
  });
});
