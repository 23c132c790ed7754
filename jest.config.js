/**
 * Test files (under test/) that need no Temporal server, no dev server and no workflow bundle: the
 * `unit` project, which has no global setup. Every other test file is `integration`, whose global
 * setup starts the suite's dev server and bundles the workflows.
 *
 * A file belongs here only if it never reaches `createTestBed`, `settings()`, a `WARDEN_TEST_*`
 * variable, `startDevServer`, `WardenClient.connect`, `warden dev` or another server (PostgreSQL).
 * One listed by mistake fails loudly: test/unit-setup.ts hides the suite's server from it even
 * when jest runs both projects at once. A file left off the list only runs slower.
 */
const unitTests = [
  'governance/*.test.ts',
  'cli-first-use.test.ts',
  'cluster-cli.test.ts',
  'conversation-window.test.ts',
  'console-grafana.test.ts',
  'docs-links.test.ts',
  'errors.test.ts',
  'examples.test.ts',
  'local-model-fetch.test.ts',
  'model-call.test.ts',
  'models.test.ts',
  'policy-check.test.ts',
  'policy-test.test.ts',
  'quota-cli.test.ts',
  'store.test.ts',
  'security/canonical.test.ts',
  'security/identity-confusables.test.ts',
  'security/keyring.test.ts',
  'security/redaction.test.ts',
  'security/store-files.test.ts',
];

/** @type {import('jest').Config} */
const shared = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022' } }] },
  // Jest's module system cannot require an ES module; swc compiles these ESM-only packages to CommonJS.
  transformIgnorePatterns: ['/node_modules/(?!canonicalize/)'],
};

/** @type {import('jest').Config} */
module.exports = {
  testTimeout: 120000,
  maxWorkers: 1,
  // Jest runs a project's globalSetup only when the run holds one of its files: `jest test/store.test.ts`
  // or `jest --selectProjects unit` starts no server. test/run-projects.ts runs the two one after the other.
  projects: [
    {
      ...shared,
      displayName: 'unit',
      testMatch: unitTests.map((file) => `**/test/${file}`),
      setupFiles: ['<rootDir>/test/unit-setup.ts'],
    },
    {
      ...shared,
      displayName: 'integration',
      testMatch: ['**/*.test.ts', ...unitTests.map((file) => `!**/test/${file}`)],
      globalSetup: '<rootDir>/test/global-setup.ts',
      globalTeardown: '<rootDir>/test/global-teardown.ts',
    },
  ],
};
