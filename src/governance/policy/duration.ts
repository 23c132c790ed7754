import ms, { type StringValue } from 'ms';
import { errorMarker, WardenError } from '../../errors';

/** A text that is not a duration where one is needed; the message quotes it. */
export class DurationError extends WardenError {
  static override readonly marker = errorMarker('DurationError');
  override name = 'DurationError';
}

/**
 * A duration as policy files write it: `500ms`, `30s`, `10m`, `24h`, `7d`. Narrower than what
 * `ms` reads ("1.5 hours", "2 weeks", "-1h", a bare "30" as 30 ms): a policy validates as it always
 * has, and a duration has one spelling, so the same policy keeps the same version (its hash).
 */
export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/**
 * Milliseconds in a duration string, as `ms` reads it (the parser the Temporal SDK reads its own
 * durations with; pure, so workflow code may call this); throws on one `DURATION_PATTERN` refuses
 * (policies are validated before this runs).
 */
export function durationMs(text: string): number {
  if (!DURATION_PATTERN.test(text)) throw new DurationError(`not a duration: "${text}" (expected e.g. 30s, 10m, 24h)`);
  return Math.round(ms(text as StringValue));
}
