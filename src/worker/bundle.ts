import { bundleWorkflowCode, type BundleOptions } from '@temporalio/worker';

/**
 * The modules every run uses, loaded once per worker thread and shared by its runs instead of
 * loaded again for each run it starts or replays (the SDK gives each run its own copy of every
 * module not preloaded): Warden's workflows, CEL, protobuf and the SDK's workflow API.
 *
 * src/workflows/shared-modules.ts names them and says what sharing asks of them. The SDK freezes
 * what they export; the whole test suite runs its workflows this way.
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
