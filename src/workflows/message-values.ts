import { ActivityFailure } from '@temporalio/workflow';

/** A field of a message from outside, if it is text: messages come from anyone, every field is checked. */
export const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/** The message of a failure for people and the model: an activity's own error, not Temporal's wrapper. */
export function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}
