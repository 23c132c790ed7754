import { proxyActivities, proxyLocalActivities, type ActivityOptions } from '@temporalio/workflow';
import type { CoreActivities, NON_RETRYABLE_ERRORS } from '../../activities/activity-types';
import { durationMs, type RetrySettings } from '../../governance/workflow-safe';

// The run's activities, by how each is called. Imported as types only: the workflow bundle holds
// no activity code. Option order and names are part of recorded histories: keep them.

export const nonRetryableErrorTypes: (typeof NON_RETRYABLE_ERRORS)[number][] = [
  'SlackNotifyError',
  'ToolError',
  'ToolInputError',
  'ModelConfigError',
  'DefinitionError',
  'PolicyError',
  'ModelCallError',
  'RunInputError',
];

export const core = proxyActivities<CoreActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', maximumAttempts: 10, nonRetryableErrorTypes },
});

/** Decisions, operator commands and seals are the worker's business (its current keyring, the store's seal key), close by: a local activity. */
export const verifier = proxyLocalActivities<CoreActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200ms', maximumAttempts: 3, nonRetryableErrorTypes },
});

/**
 * The run's last write to the run store (as it ends or continues as new), under FEWER_COMMANDS: a
 * local activity, with no task round trip of its own. The write is idempotent (rows are keyed by
 * seq), so a workflow task retried after it ran does no harm.
 */
export const recorder = proxyLocalActivities<CoreActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1s', maximumAttempts: 10, nonRetryableErrorTypes },
});

/**
 * Quota bookings and settlements: short store transactions, so a short timeout, and a booking lost
 * with a worker is retried within seconds (each is idempotent per run, call and quota).
 */
export const quotaBook = proxyActivities<CoreActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 20, nonRetryableErrorTypes },
});

export const notifier = proxyActivities<CoreActivities>({
  startToCloseTimeout: '30 seconds',
  // A retried post may show a second message; its buttons act on the same approval.
  retry: { initialInterval: '2s', maximumAttempts: 3, nonRetryableErrorTypes },
});

export const model = proxyActivities<CoreActivities>({
  startToCloseTimeout: '5 minutes',
  // The worker heartbeats while the model thinks: one that dies mid-call is replaced in seconds, not minutes.
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 6, nonRetryableErrorTypes },
});

/** A tool's retry policy: Warden's defaults, then the tool's own settings, then the policy's override. */
export function retryPolicy(...layers: (RetrySettings | undefined)[]): ActivityOptions['retry'] {
  const merged: RetrySettings = { maximumAttempts: 3, initialInterval: '1s' };
  for (const layer of layers) Object.assign(merged, layer);
  return {
    maximumAttempts: merged.maximumAttempts,
    initialInterval: merged.initialInterval === undefined ? undefined : durationMs(merged.initialInterval),
    backoffCoefficient: merged.backoffCoefficient,
    maximumInterval: merged.maximumInterval === undefined ? undefined : durationMs(merged.maximumInterval),
    nonRetryableErrorTypes: [...nonRetryableErrorTypes, ...(merged.nonRetryableErrorTypes ?? [])],
  };
}
