import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, sep } from 'node:path';

// The import-boundary check of `npm run lint:deps`, run with the real config over
// test/fixtures/boundaries: a miniature of the repo in which each bad-* file breaks one rule.
const ROOT = join(__dirname, '..');
const FIXTURES = join(__dirname, 'fixtures', 'boundaries');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');
// dependency-cruiser is ESM only, which jest's module loader cannot import: run its CLI, as npm does.
const DEPCRUISE = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

interface Violation {
  from: string;
  to: string;
  unresolvedTo: string;
  rule: { name: string; severity: string };
}
interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

// `err` is what `npm run lint:deps` prints, and exits with the number of errors; `json` (exit 0)
// gives each violation's rule, from and to.
function depcruise(paths: string[], outputType: 'err' | 'json'): Promise<Run> {
  const args = [DEPCRUISE, ...paths, '--config', CONFIG, '--output-type', outputType];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: FIXTURES, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ exitCode: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}

// An npm package by its name: where node_modules is (or links to) is not the rule's business.
const edge = (v: Violation): string =>
  `${v.rule.name}: ${v.from} → ${/(^|\/)node_modules\//.test(v.to) ? v.unresolvedTo : v.to}`;

// Every deliberate violation in the fixture tree, one rule each.
const EXPECTED = [
  'domain-is-pure: libs/domain/src/bad-node-crypto.ts → crypto',
  'domain-is-pure: libs/domain/src/bad-bare-core.ts → fs',
  'domain-is-pure: libs/domain/src/bad-builtin-call.ts → fs',
  'domain-is-pure: libs/domain/src/bad-nest.ts → @nestjs/common',
  'domain-is-pure: libs/domain/src/bad-other-lib.ts → libs/event-store/src/index.ts',
  'libs-not-to-apps: libs/forensics/src/bad-app.ts → apps/cli/src/replay.ts',
  'no-circular: libs/projections/src/bad-cycle-rebuild-in-sql.ts → libs/projections/src/bad-cycle-rebuild.ts',
  'ledger-not-to-transport: apps/token-ledger/src/ledger/commands/bad-rotate-token.command.ts → apps/token-ledger/src/oauth/oauth-error.ts',
  'ledger-not-to-transport: apps/token-ledger/src/ledger/commands/bad-issue-token.command.ts → apps/token-ledger/src/http/problem.ts',
  'ledger-not-to-forensics: apps/token-ledger/src/ledger/bad-seal.ts → libs/forensics/src/index.ts',
  'layer-projections: libs/projections/src/bad-forensics.ts → libs/forensics/src/index.ts',
  'layer-event-store: libs/event-store/src/bad-projections.ts → libs/projections/src/index.ts',
  'libs-through-alias: apps/cli/src/bad-relative-lib.ts → libs/domain/src/decider.ts',
  'not-to-unresolvable: apps/cli/src/bad-unresolvable.ts → @token-ledger/no-such-lib',
  'console-stands-alone: apps/console/src/bad-server-import.ts → apps/token-ledger/src/http/problem.ts',
];

describe('import boundaries (.dependency-cruiser.cjs)', () => {
  let report: { modules: { source: string }[]; summary: { violations: Violation[] } };
  let lint: Run;

  beforeAll(async () => {
    let json: Run;
    [json, lint] = await Promise.all([depcruise(['apps', 'libs'], 'json'), depcruise(['apps', 'libs'], 'err')]);
    if (json.exitCode !== 0) throw new Error(`depcruise failed: ${json.stderr}`);
    report = JSON.parse(json.stdout);
  }, 30_000);

  it.each(EXPECTED)('reports %s', (violation) => {
    expect(report.summary.violations.map(edge)).toContain(violation);
  });

  it('fails the run with one error per violation, as `npm run lint:deps` does', () => {
    expect(report.summary.violations.filter((v) => v.rule.severity !== 'error')).toEqual([]);
    expect(lint).toMatchObject({ exitCode: EXPECTED.length, stderr: '' });
  });

  it('passes clean code and the test helpers the rules exempt: only the bad-* files are reported', () => {
    expect(report.summary.violations.map(edge).sort()).toEqual([...EXPECTED].sort());
    // ...and every fixture file was cruised, so passing means something.
    const files = readdirSync(FIXTURES, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    expect(report.modules.map((m) => m.source)).toEqual(expect.arrayContaining(files.map((f) => f.split(sep).join('/'))));
  });

  it('has a fixture for every rule (one for all the layer-* rules, made from one table)', () => {
    const { forbidden } = require(CONFIG) as { forbidden: { name: string }[] };
    const proven = new Set(EXPECTED.map((v) => v.slice(0, v.indexOf(':'))));
    const unproven = forbidden.map((r) => r.name).filter((name) => !name.startsWith('layer-') && !proven.has(name));
    expect(unproven).toEqual([]);
  });
});

describe('nest-cli.json', () => {
  it('lists every lib under libs/ as a library project', () => {
    const { projects } = JSON.parse(readFileSync(join(ROOT, 'nest-cli.json'), 'utf8')) as {
      projects: Record<string, { type: string; root: string; sourceRoot: string }>;
    };
    const libs = readdirSync(join(ROOT, 'libs')).filter((lib) => existsSync(join(ROOT, 'libs', lib, 'src', 'index.ts')));
    for (const lib of libs) {
      expect({ lib, ...projects[lib] }).toMatchObject({ lib, type: 'library', root: `libs/${lib}`, sourceRoot: `libs/${lib}/src` });
    }
  });
});
