// Three projects so a developer can run only the fast ones: `npx jest --selectProjects unit`.
const common = {
  rootDir: __dirname,
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  moduleFileExtensions: ['ts', 'js', 'json'],
  testEnvironment: 'node',
  moduleNameMapper: {
    '^@token-ledger/(domain|event-store|crypto)$': '<rootDir>/libs/$1/src',
  },
};
module.exports = {
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs}/**/*.unit.spec.ts'] },
    { ...common, displayName: 'int', testMatch: ['<rootDir>/{apps,libs,test}/**/*.int.spec.ts'], testTimeout: 60000 },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/{apps,test}/**/*.e2e.spec.ts'], testTimeout: 60000 },
  ],
};
