import { readFileSync } from 'node:fs';
import type * as Zod from 'zod';
import type { ScriptTurn } from '../../workflows/run-types';
import type * as ZodErrorModule from '../../zod-error';
import { CliError } from '../cli-errors';

let scriptSchema: Zod.ZodType<ScriptTurn[]> | undefined;

/**
 * The ScriptTurn shape, strict, so a misspelt key fails here instead of being ignored by the model.
 * Built on first use: zod is required only by the commands that read a script.
 */
function scriptSchemaOf(): Zod.ZodType<ScriptTurn[]> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- see above
  const { z } = require('zod') as typeof Zod;
  // A delegation's call may carry the delegate run's own script: the same shape, one level down.
  const turns: Zod.ZodType<ScriptTurn[]> = z.lazy(() =>
    z.array(
      z.strictObject({
        toolCalls: z
          .array(z.strictObject({ name: z.string().min(1), args: z.record(z.string(), z.unknown()).optional(), id: z.string().min(1).optional(), script: turns.optional() }))
          .optional(),
        text: z.string().optional(),
        usage: z.strictObject({ inputTokens: z.int().min(0).optional(), outputTokens: z.int().min(0).optional() }).optional(),
      }),
    ),
  );
  scriptSchema ??= turns;
  return scriptSchema;
}

/** Reads a script file for the `scripted` model: a JSON array of turns. Errors name the file and the path. */
export function readScript(file: string): ScriptTurn[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read script ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new CliError(`script ${file} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = scriptSchemaOf().safeParse(doc);
  if (!parsed.success) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- zod's formatter is loaded only on this error path, as zod is
    const { formatZodError } = require('../../zod-error') as typeof ZodErrorModule;
    throw new CliError(`script ${file} is not an array of turns ({toolCalls?, text?, usage?}): ${formatZodError(parsed.error)}`);
  }
  return parsed.data;
}
