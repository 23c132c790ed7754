import { ApplicationFailure } from '@temporalio/activity';
import { APICallError, InvalidPromptError } from '@ai-sdk/provider';
import { ToolError } from '../agents';
import { ModelConfigError } from './models';

/** A failure Temporal does not retry, of its own type (every retry policy lists Warden's). */
export function nonRetryable(type: string, message: string, cause?: unknown): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true, cause: cause instanceof Error ? cause : undefined });
}

/** Rethrows an error so Temporal retries only what can succeed on a retry. */
export function classify(err: unknown): never {
  if (err instanceof ApplicationFailure) throw err;
  if (ToolError.isInstance(err)) {
    // Its own type: 'ToolError' is in every retry policy's non-retryable list.
    if (err.options.retryable) throw ApplicationFailure.create({ type: 'RetryableToolError', message: err.message, nonRetryable: false });
    throw nonRetryable('ToolError', err.message);
  }
  if (ModelConfigError.isInstance(err)) throw nonRetryable('ModelConfigError', err.message);
  // A stored conversation the SDK refuses stays refused on every retry.
  if (InvalidPromptError.isInstance(err)) throw nonRetryable('ModelCallError', `the run's conversation cannot be sent to the model: ${err.message}`);
  if (APICallError.isInstance(err) && !err.isRetryable) throw nonRetryable('ModelCallError', `${err.message} (HTTP ${err.statusCode ?? '?'})`);
  throw err;
}
