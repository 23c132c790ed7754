import { z } from 'zod';

/**
 * The JSON Schema of a tool's arguments as its zod schema makes them: the output side, the value
 * the run governs and shows approvers, queries and the audit trail. Redaction walks it (see
 * `argsSchemaOf`), because the input side, which the model is shown, names the fields before a
 * transform renames or reshapes them (`z.object({ card }).transform(({ card }) => ({ cardNumber: card }))`).
 *
 * `sensitive` marks follow every pipe and transform, failing closed: where the output of a pipe is
 * not described (a transform's result) and its input carries a mark, the whole output is marked;
 * where it is described (`.pipe(z.object({ cardNumber: z.string().meta({ sensitive: true }) }))`)
 * and marks something, those marks count; where it is described but marks nothing while its input
 * does, the whole output is marked too, since the value may still be in there.
 *
 * Returns null when the schema has no pipe or transform: then the input side redacts the same
 * values, and the tool's spec stays as it was (it travels in every run's history).
 */
export function argsJsonSchema(input: z.ZodType): Record<string, unknown> | null {
  let reshaped = false;
  const schema = z.toJSONSchema(input, {
    io: 'output',
    unrepresentable: 'any',
    override: (ctx) => {
      const def = (ctx.zodSchema as { _zod: { def: { type: string; in?: z.ZodType } } })._zod.def;
      if (def.type !== 'pipe' && def.type !== 'transform') return;
      reshaped = true;
      if (def.type !== 'pipe' || def.in === undefined) return;
      const marked = marksSensitive(z.toJSONSchema(def.in, { io: 'input', unrepresentable: 'any' }));
      if (marked && !marksSensitive(ctx.jsonSchema)) (ctx.jsonSchema as Record<string, unknown>).sensitive = true;
    },
  }) as Record<string, unknown>;
  if (!reshaped) return null;
  delete schema.$schema;
  return schema;
}

/** Keywords whose value maps names to subschemas: the map itself is no schema, its values are. */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);
/** Keywords whose value is data, not a schema: a `sensitive` key in there marks nothing. */
const DATA = new Set(['default', 'const', 'enum', 'examples']);

/** Whether a JSON Schema marks anything in it `sensitive: true`. */
function marksSensitive(schema: unknown): boolean {
  if (Array.isArray(schema)) return schema.some(marksSensitive);
  if (typeof schema !== 'object' || schema === null) return false;
  const node = schema as Record<string, unknown>;
  if (node.sensitive === true) return true;
  return Object.entries(node).some(([key, value]) => {
    if (DATA.has(key)) return false;
    if (SCHEMA_MAPS.has(key) && typeof value === 'object' && value !== null) return Object.values(value).some(marksSensitive);
    return marksSensitive(value);
  });
}
