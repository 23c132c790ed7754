import { DURATION_PATTERN, durationMs, parsePolicy } from '../../src/governance';
import { DurationError } from '../../src/governance/policy/duration';

/** What durationMs computed before it read durations with `ms`: the pattern's number times its unit. */
function handWritten(text: string): number {
  const [, n, unit] = DURATION_PATTERN.exec(text) ?? [];
  const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  return Math.round(Number(n) * (unitMs[unit ?? ''] ?? NaN));
}

const policyWith = (timeout: string) => ({ agent: 'a', tools: { t: { timeout } }, rules: [{ id: 'r', decision: 'allow' }] });

describe('policy durations', () => {
  test.each(['0ms', '500ms', '1s', '30s', '1.5s', '10m', '90m', '1h', '1.5h', '24h', '7d', '0.25d', '365d'])('%s is as many milliseconds as before', (text) => {
    expect(durationMs(text)).toBe(handWritten(text));
    expect(() => parsePolicy(policyWith(text), 'p.yaml')).not.toThrow();
  });

  // `ms` reads all of these; a policy does not, as before: one spelling per duration keeps a policy's version (its hash) stable.
  test.each(['1.5 hours', '2 weeks', '1w', '1y', '30', '-1h', '30S', ' 30s', '.5s', '10 m', ''])('"%s" is refused, by durationMs and by policy validation', (text) => {
    expect(() => durationMs(text)).toThrow(DurationError);
    expect(() => parsePolicy(policyWith(text), 'p.yaml')).toThrow(/must be a duration/);
  });

  test('the error says what a duration looks like', () => {
    expect(() => durationMs('1.5 hours')).toThrow('not a duration: "1.5 hours" (expected e.g. 30s, 10m, 24h)');
  });
});
