import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DefaultLogger } from '@temporalio/worker';
import { bundleWardenWorkflows } from '../src/worker/bundle';
import { startDevServer, type DevServer } from '../src/dev-server';

/** What setup leaves for teardown. Jest runs both in its parent process, so a global carries it. */
export interface WardenTestGlobals {
  server: DevServer;
  tempDir: string;
}

declare global {
  var __wardenTest: WardenTestGlobals | undefined;
}

/**
 * Starts one in-memory dev server and bundles the workflows once for all the integration tests: a
 * server per test file costs seconds each, and a worker given `workflowBundle: { codePath }` skips
 * webpack. Test files read the env vars set here. The `integration` project of jest.config.js runs
 * it, so a run of unit tests alone starts nothing.
 */
export default async function globalSetup(): Promise<void> {
  const tempDir = mkdtempSync(path.join(os.tmpdir(), 'warden-test-'));
  // Server start and webpack take a few seconds each; run them side by side.
  const [server, bundle] = await Promise.allSettled([
    startDevServer({ headless: true, log: () => {} }),
    bundleWardenWorkflows({ logger: new DefaultLogger('WARN') }),
  ]);
  if (server.status === 'rejected' || bundle.status === 'rejected') {
    // Jest skips globalTeardown when setup throws: leave neither a server nor a temp dir behind.
    if (server.status === 'fulfilled') await server.value.stop();
    rmSync(tempDir, { recursive: true, force: true });
    throw server.status === 'rejected' ? server.reason : (bundle as PromiseRejectedResult).reason;
  }

  const bundlePath = path.join(tempDir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.value.code);
  process.env.WARDEN_TEST_TEMPORAL_ADDRESS = server.value.address;
  process.env.WARDEN_TEST_NAMESPACE = server.value.namespace;
  process.env.WARDEN_TEST_WORKFLOW_BUNDLE = bundlePath;
  globalThis.__wardenTest = { server: server.value, tempDir };
}
