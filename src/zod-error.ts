import { z } from 'zod';

/**
 * The one formatter for zod errors: `z.prettifyError` on one line, issues joined by "; ",
 * each with its path (`✖ Invalid input: expected string, received number → at users[0].id`).
 * Callers put the file or source in front. Not for policy files: their problems carry YAML
 * line and column (`src/governance/policy/parse-policy.ts`).
 */
export function formatZodError(error: z.ZodError): string {
  return z.prettifyError(error).replace(/\n\s*→/g, ' →').replace(/\n/g, '; ');
}
