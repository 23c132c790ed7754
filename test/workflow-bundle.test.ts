import { readFileSync } from 'node:fs';

/**
 * The workflow bundle the suite runs (test/global-setup.ts builds it as a worker does). Every
 * module a workflow imports is evaluated again for each run a worker starts or replays, so what is
 * in the bundle is a cost per run: these libraries belong to the worker and the CLI, never to the
 * workflow. Measured before they were taken out: 108 ms of worker CPU per started run, 69 ms after.
 */
const bundle = readFileSync(process.env.WARDEN_TEST_WORKFLOW_BUNDLE ?? '', 'utf8');
const modules = [...bundle.matchAll(/^\/\*\*\*\/ "([^"]+)"/gm)].map((m) => m[1] ?? '');

test.each(['zod', 'yaml', '@noble/curves', 'better-sqlite3', 'pg', 'ai', '@ai-sdk/provider', 'pino', 'jose'])('the workflow bundle has no %s', (pkg) => {
  expect(modules.filter((m) => m.startsWith(`./node_modules/${pkg}/`))).toEqual([]);
});

test('the workflow bundle has no worker-only Warden modules', () => {
  const ours = modules.filter((m) => m.startsWith('./src/'));
  expect(ours.length).toBeGreaterThan(5);
  expect(ours.filter((m) => /\/(activities|agents|approvals|cli|client|store|worker)\/|policy-schema|policy-problem|policy-location|keyring|signed-decision|policy\.ts/.test(m))).toEqual([]);
});

test('the libraries every run shares are loaded once per worker thread, before any run', () => {
  const preload = /exports\.preloadModules = function preloadModules\(\) \{([^}]*)\}/.exec(bundle)?.[1] ?? '';
  expect(preload).toContain('./src/workflows/shared-modules.ts');
});
