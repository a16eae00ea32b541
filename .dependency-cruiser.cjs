/**
 * Import boundaries, checked by `npm run lint:deps` (part of `npm test`); see docs/testing.md.
 * test/boundaries.unit.spec.ts runs this file against test/fixtures/boundaries to prove each rule bites.
 *
 * Paths are relative to the directory depcruise runs in (the repo root, or the fixture root in the test).
 */

// Tests and their helpers may reach across boundaries (a spec wires real stores, an app, fixtures);
// the same files tsconfig.build.json leaves out of the build: specs, contract suites, testing/ folders,
// test-*.ts helpers, and the top-level test/ tree.
const TEST_CODE = '(^test/|[.]spec[.]ts$|[.]contract[.]ts$|/testing/|/test-[^/]*[.]ts$)';

// Each lib may import only the libs listed against it: lower layers never import higher ones, so the
// write path (domain, event-store, envelope) builds and tests without the read side. The apps may
// import any lib. Domain has its own, stricter rule below (`domain-is-pure`).
const LIB_LAYERS = {
  // The port and its adapters: no lib today; domain is allowed by the layering.
  'event-store': ['domain'],
  // Stored event <-> domain/public event, stream names, the hash chain: what the command side needs.
  envelope: ['domain', 'event-store'],
  // Secrets and key ring, kept in the store's key-value table.
  crypto: ['domain', 'event-store'],
  // Read side and tooling over the store: each stands on the write path, never on each other; so the
  // first three never import libs/forensics (issue #13 item 1: they take the envelope from libs/envelope).
  projections: ['domain', 'event-store', 'envelope'],
  messaging: ['domain', 'event-store', 'envelope'],
  anomaly: ['domain', 'event-store', 'envelope'],
  forensics: ['domain', 'event-store', 'envelope'],
  // The SSF transmitter's data plane (SET mapping, outbox, push): a reader of the write path too.
  signals: ['domain', 'event-store', 'envelope'],
  // The resource-server SDK ships to other services without the ledger's code.
  verifier: [],
};

const layerRules = Object.entries(LIB_LAYERS).map(([lib, allowed]) => ({
  name: `layer-${lib}`,
  comment: `libs/${lib} may import only ${allowed.length ? allowed.map((l) => `libs/${l}`).join(', ') : 'no other lib'} (layering in .dependency-cruiser.cjs).`,
  severity: 'error',
  from: { path: `^libs/${lib}/`, pathNot: TEST_CODE },
  to: { path: `^libs/(?!(?:${[lib, ...allowed].join('|')})/)` },
}));

module.exports = {
  forbidden: [
    {
      // The deciders are pure (no I/O, clock, randomness or framework): anything outside the lib,
      // npm packages, Node core modules (`node:crypto` or `crypto`) and Nest included, would let
      // one in. Test helpers (test-secrets.ts, testing/) may use node:crypto.
      name: 'domain-is-pure',
      comment: 'libs/domain imports only files inside libs/domain: no other lib, no app, no npm package, no Node core module.',
      severity: 'error',
      from: { path: '^libs/domain/', pathNot: TEST_CODE },
      to: { pathNot: '^libs/domain/' },
    },
    {
      // Libs are reusable building blocks; the apps compose them. A lib that reaches into an app
      // drags the app (Nest, HTTP, config) along. Tests are exempt: today
      // libs/forensics/src/public-event-json.int.spec.ts drives apps/cli's replay (it belongs in test/).
      name: 'libs-not-to-apps',
      comment: 'libs/* never import apps/*.',
      severity: 'error',
      from: { path: '^libs/', pathNot: TEST_CODE },
      to: { path: '^apps/' },
    },
    {
      // A cycle makes load order matter and keeps two modules from being understood (or moved) apart.
      name: 'no-circular',
      comment: 'No circular dependencies between non-test modules.',
      severity: 'error',
      from: { pathNot: TEST_CODE },
      to: { circular: true },
    },
    {
      // Issue #13 item 2: the command side does not know it is served over OAuth/HTTP, so it can run
      // from the CLI, a worker or a test without the transport.
      name: 'ledger-not-to-transport',
      comment: 'apps/token-ledger/src/ledger imports nothing from oauth/ or http/.',
      severity: 'error',
      from: { path: '^apps/token-ledger/src/ledger/' },
      to: { path: '^apps/token-ledger/src/(?:oauth|http)/' },
    },
    {
      // Issue #13 item 1: the command side takes the event envelope from libs/envelope; libs/forensics
      // (timelines, verify, export) is a reader on top of the write path. For the libs (domain,
      // event-store, crypto, envelope, projections, messaging, anomaly) the layer rules below say the
      // same: none of them lists forensics.
      name: 'ledger-not-to-forensics',
      comment: 'apps/token-ledger/src/ledger imports libs/envelope, never libs/forensics.',
      severity: 'error',
      from: { path: '^apps/token-ledger/src/ledger/', pathNot: TEST_CODE },
      to: { path: '^libs/forensics/' },
    },
    {
      // The analyst console is bundled for the browser and talks to the ledger over HTTP only: server
      // code (Nest, stores, secrets) must never end up in the bundle the ledger serves at /console.
      name: 'console-stands-alone',
      comment: 'apps/console imports only its own files and npm packages: no lib, no other app.',
      severity: 'error',
      from: { path: '^apps/console/' },
      to: { path: '^(libs|apps/(?!console/))' },
    },
    ...layerRules,
    {
      // `@token-ledger/x` goes through the lib's index, its public surface; a relative (or baseUrl)
      // path into libs/x/src reaches past it and breaks when the lib's files move. ($1: the
      // importer's own lib or top folder, so a lib's relative imports of its own files are fine.)
      name: 'libs-through-alias',
      comment: 'Import another lib as @token-ledger/<lib>, not by a relative path into libs/<lib>/src.',
      severity: 'error',
      from: { path: '^(apps|bench|libs/[^/]+|scripts)/', pathNot: TEST_CODE },
      to: { path: '^libs/[^/]+/', pathNot: '^$1/', dependencyTypesNot: ['aliased-tsconfig-paths'] },
    },
    {
      // An import the cruiser cannot resolve is invisible to every rule above (a broken tsconfig
      // path would pass them all), so it fails the check; tsc reports the same import with details.
      name: 'not-to-unresolvable',
      comment: 'Every import resolves (to a file, an npm package or a Node core module).',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // npm packages are leaves: their own imports are not ours to check.
    doNotFollow: { path: ['node_modules'] },
    // Boundary fixtures break the rules on purpose; only test/boundaries.unit.spec.ts cruises them.
    exclude: { path: '^test/fixtures/' },
    // `process.getBuiltinModule('fs')` is a Node core import too (domain-is-pure).
    detectProcessBuiltinModuleCalls: true,
    // Type-only imports couple modules as much as value imports do.
    tsPreCompilationDeps: true,
    // `@token-ledger/*` -> libs/*/src.
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.tsx', '.d.ts', '.js', '.cjs', '.mjs', '.json'],
      mainFields: ['main', 'types', 'typings'],
    },
    // Only compute what the rules need (keeps `npm test` fast).
    skipAnalysisNotInRules: true,
  },
};
