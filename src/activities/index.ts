/**
 * The worker's side of a run: `createActivities` builds the activities a worker registers (Warden's
 * own and one per tool), and `RunLimits` bounds what a model's answer may propose.
 */
export type * from './activity-types';
export { NON_RETRYABLE_ERRORS } from './activity-types';
export { resolveModel, scriptedModel, createModelResolver, ModelConfigError } from './models';
export type { ModelEnv, ModelResolver } from './models';
export { DEFAULT_LIMITS } from './proposals';
export type { RunLimits } from './proposals';
export { createActivities } from './create-activities';
export type { ActivityDeps } from './create-activities';
