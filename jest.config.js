// Three projects so a developer can run only the fast ones: `npx jest --selectProjects unit`.
const common = {
  rootDir: __dirname,
  transform: {
    '^.+\\.ts$': ['@swc/jest'],
    // oauth4webapi ships ES modules only; jest's CommonJS runtime needs them compiled like our sources.
    '/node_modules/oauth4webapi/.+\\.js$': ['@swc/jest', { module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!oauth4webapi/)'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  testEnvironment: 'node',
  moduleNameMapper: {
    '^@token-ledger/([a-z-]+)$': '<rootDir>/libs/$1/src',
  },
};
// Backend resolution step 2 (test/backends.ts): start testcontainers for backends without an env var.
// On the int and e2e projects, not top-level, so jest runs it (once, through the @swc/jest transform)
// only when a selected test is in one of them: `--selectProjects unit` never loads it.
const backends = {
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
};
module.exports = {
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
  // Integration and e2e suites start real stores and servers; a unit test never gets near this.
  testTimeout: 60000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs,test}/**/*.unit.spec.ts'] },
    { ...common, ...backends, displayName: 'int', testMatch: ['<rootDir>/{apps,libs,test}/**/*.int.spec.ts'] },
    { ...common, ...backends, displayName: 'e2e', testMatch: ['<rootDir>/{apps,test}/**/*.e2e.spec.ts'] },
  ],
};
