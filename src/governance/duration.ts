import { errorMarker, WardenError } from '../errors';

/** A text that is not a duration where one is needed; the message quotes it. */
export class DurationError extends WardenError {
  static override readonly marker = errorMarker('DurationError');
  override name = 'DurationError';
}

/** A duration as policy files write it: `500ms`, `30s`, `10m`, `24h`, `7d`. */
export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds in a duration string; throws on a malformed one (policies are validated before this runs). */
export function durationMs(text: string): number {
  const match = DURATION_PATTERN.exec(text);
  if (!match) throw new DurationError(`not a duration: "${text}" (expected e.g. 30s, 10m, 24h)`);
  return Math.round(Number(match[1]) * (UNIT_MS[match[2] ?? 'ms'] ?? 1));
}
