import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { DefaultLogger } from '@temporalio/worker';
import { WORKFLOW_TELEMETRY_MODULES } from '../src/telemetry/worker-telemetry';
import { bundleWardenWorkflows } from '../src/worker/bundle';

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

/**
 * What a run loads for itself, found the way the SDK's reusable V8 context keeps modules
 * (`@temporalio/worker/lib/workflow/reusable-vm.js`): every module loaded before the first run
 * (the bundle's entry and `preloadModules`) goes into one cache the thread's runs share; a
 * module first required while a run is loaded goes into that run's own cache. Before Warden's
 * workflow modules and CEL were shared, each run loaded 56 modules of its own (about 400 KB of
 * workflow-thread heap per cached run; `npm run bench:memory` measures it).
 */
function modulesOfOneRun(code: string): string[] {
  const context = vm.createContext({ console, performance, TextEncoder, TextDecoder, URL, URLSearchParams, AbortController, setTimeout, clearTimeout });
  const shared = new Map<string | symbol, unknown>();
  const run = new Map<string | symbol, unknown>();
  let loadingRun = false;
  const cache = new Proxy(
    {},
    {
      get: (_, key) => shared.get(key) ?? run.get(key),
      set: (_, key, value) => {
        (loadingRun ? run : shared).set(key, value);
        return true;
      },
    },
  );
  Object.defineProperty(context, '__webpack_module_cache__', { value: cache });
  new vm.Script(code).runInContext(context);
  vm.runInContext('__TEMPORAL__.preloadModules?.()', context);
  loadingRun = true;
  vm.runInContext('__TEMPORAL__.importWorkflows(); __TEMPORAL__.importInterceptors()', context);
  return [...run.keys()].map(String);
}

test('a run loads no module of its own: Warden, CEL and the SDK are shared by every run of a worker thread', () => {
  expect(modulesOfOneRun(bundle)).toEqual([]);
});

test("a worker that traces loads OpenTelemetry's API for each run, through its interceptors, and nothing else", async () => {
  const { code } = await bundleWardenWorkflows({ logger: new DefaultLogger('WARN'), workflowInterceptorModules: [...WORKFLOW_TELEMETRY_MODULES] });
  const own = modulesOfOneRun(code);
  expect(own).toContain('./src/telemetry/workflow-interceptors.ts');
  expect(own.filter((m) => !m.startsWith('./node_modules/@opentelemetry/') && !m.startsWith('./node_modules/@temporalio/interceptors-opentelemetry/') && m !== './src/telemetry/workflow-interceptors.ts')).toEqual([]);
}, 120_000);
