import { bundleWorkflowCode, type BundleOptions } from '@temporalio/worker';

/**
 * Libraries the workflow uses that keep no per-run state: each worker thread loads them once and
 * every run shares them, instead of loading them again for each run it starts or replays (the SDK
 * gives each run its own copy of every other module). CEL with its protobuf runtime was most of
 * the cost of starting or replaying a run (about 90 ms of CPU per run on a 2-core machine).
 *
 * src/workflows/shared-modules.ts names them. The SDK freezes what they export, so they must
 * never be changed at run time; the whole test suite runs its workflows this way.
 */
export const SHARED_WORKFLOW_MODULES: readonly string[] = [require.resolve('../workflows/shared-modules')];

/** Where Warden's workflows and failure converter are, for `Worker.create` and `bundleWorkflowCode`. */
export const WORKFLOWS_PATH = require.resolve('../workflows');
export const FAILURE_CONVERTER_PATH = require.resolve('../codec/failure-converter');

/**
 * Bundles Warden's workflows the way a worker runs them (shared modules preloaded); a worker
 * given the result as `workflowBundle: { code }` starts without webpack. `workflowsPath` may name a
 * module that re-exports Warden's workflows with more of its own.
 */
export async function bundleWardenWorkflows(options: Partial<BundleOptions> = {}): Promise<{ code: string }> {
  return bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    failureConverterPath: FAILURE_CONVERTER_PATH,
    ...options,
    preloadModules: [...SHARED_WORKFLOW_MODULES, ...(options.preloadModules ?? [])],
  });
}
