/**
 * Running Warden's workflows and activities: `createWardenWorker` builds a Temporal worker for an
 * agent registry; `bundleWardenWorkflows` prebuilds its workflow bundle.
 */
export { connectWorker, createWardenWorker, DEFAULT_MAX_CACHED_RUNS } from './create-worker';
export type { WardenWorkerOptions } from './create-worker';
export { bundleWardenWorkflows, SHARED_WORKFLOW_MODULES } from './bundle';
export { cachedWorkflowBundle } from './bundle-cache';
export type { BundleCacheOptions, CachedBundle } from './bundle-cache';
