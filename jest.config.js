// Three projects so a developer can run only the fast ones: `npx jest --selectProjects unit`.
const common = {
  rootDir: __dirname,
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  moduleFileExtensions: ['ts', 'js', 'json'],
  testEnvironment: 'node',
  moduleNameMapper: {
    '^@token-ledger/([a-z-]+)$': '<rootDir>/libs/$1/src',
  },
};
module.exports = {
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
  // Integration and e2e suites start real stores and servers; a unit test never gets near this.
  testTimeout: 60000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs}/**/*.unit.spec.ts'] },
    { ...common, displayName: 'int', testMatch: ['<rootDir>/{apps,libs,test}/**/*.int.spec.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/{apps,test}/**/*.e2e.spec.ts'] },
  ],
};
