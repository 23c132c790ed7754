/**
 * The JSON schema a local model's answer is constrained to: an object with the calls it makes
 * (each "tool X with arguments of X's schema") and its text answer. Built within the subset of
 * JSON Schema node-llama-cpp turns into a grammar; what the subset cannot say (patterns, ranges,
 * references) is left to the tool's own schema check in the workflow, like any model's answer.
 */

type Schema = Record<string, unknown>;

/** Longest string the grammar lets the model write in an argument, and in its answer. */
const MAX_STRING = 60;
const MAX_ANSWER = 160;
const MAX_ITEMS = 5;
const MAX_DEPTH = 5;
const ANY_SCALAR: Schema = { type: ['string', 'number', 'boolean', 'null'] };
const SCALARS = new Set(['string', 'number', 'integer', 'boolean', 'null']);
const isScalar = (v: unknown) => v === null || ['string', 'number', 'boolean'].includes(typeof v);

function node(value: unknown): Schema | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Schema) : undefined;
}

/** A JSON schema from a tool's declaration, narrowed to what the grammar can hold. */
export function grammarSchema(input: unknown, depth = 0): Schema {
  const s = node(input);
  if (!s || depth > MAX_DEPTH) return ANY_SCALAR;
  const description = typeof s.description === 'string' ? { description: s.description.slice(0, 200) } : {};
  if (s.const !== undefined && isScalar(s.const)) return { const: s.const, ...description };
  if (Array.isArray(s.enum) && s.enum.length > 0 && s.enum.every(isScalar)) return { enum: s.enum, ...description };
  const alternatives = Array.isArray(s.anyOf) ? s.anyOf : Array.isArray(s.oneOf) ? s.oneOf : undefined;
  if (alternatives && alternatives.length > 0) return { oneOf: alternatives.map((a) => grammarSchema(a, depth + 1)), ...description };
  const types = Array.isArray(s.type) ? s.type.filter((t): t is string => typeof t === 'string') : typeof s.type === 'string' ? [s.type] : [];
  if (types.length > 1) return types.every((t) => SCALARS.has(t) && t !== 'string') ? { type: types, ...description } : grammarSchema({ ...s, type: types[0] }, depth);
  switch (types[0]) {
    case 'string': {
      if (s.format === 'date-time' || s.format === 'date' || s.format === 'time') return { type: 'string', format: s.format, ...description };
      const max = Math.min(typeof s.maxLength === 'number' ? s.maxLength : MAX_STRING, MAX_STRING);
      const min = typeof s.minLength === 'number' && s.minLength <= max ? { minLength: s.minLength } : {};
      return { type: 'string', maxLength: max, ...min, ...description };
    }
    case 'number':
    case 'integer':
    case 'boolean':
    case 'null':
      return { type: types[0], ...description };
    case 'array': {
      const max = Math.min(typeof s.maxItems === 'number' ? s.maxItems : MAX_ITEMS, MAX_ITEMS);
      const min = typeof s.minItems === 'number' && s.minItems <= max ? { minItems: s.minItems } : {};
      return { type: 'array', items: grammarSchema(s.items, depth + 1), maxItems: max, ...min, ...description };
    }
    case 'object': {
      const properties: Record<string, Schema> = {};
      for (const [key, child] of Object.entries(node(s.properties) ?? {})) properties[key] = grammarSchema(child, depth + 1);
      const required = Array.isArray(s.required) ? s.required.filter((k): k is string => typeof k === 'string' && Object.hasOwn(properties, k)) : [];
      return { type: 'object', properties, required, additionalProperties: false, ...description };
    }
    default:
      return ANY_SCALAR;
  }
}

export interface OfferedTool {
  name: string;
  description?: string;
  inputSchema: unknown;
}

/** The answer's schema: `{calls: [{tool, args}], answer}`, each call one of the offered tools with its own arguments. */
export function answerSchema(tools: readonly OfferedTool[], maxCalls: number): Schema {
  const answer = { type: 'string', maxLength: MAX_ANSWER };
  if (tools.length === 0) return { type: 'object', properties: { answer }, required: ['answer'], additionalProperties: false };
  const call = {
    oneOf: tools.map((t) => ({ type: 'object', properties: { tool: { const: t.name }, args: grammarSchema(t.inputSchema) }, required: ['tool', 'args'], additionalProperties: false })),
  };
  return { type: 'object', properties: { calls: { type: 'array', items: call, maxItems: maxCalls }, answer }, required: ['calls', 'answer'], additionalProperties: false };
}

/** How the system prompt describes the tools and the answer's form to the model. */
export function toolInstructions(tools: readonly OfferedTool[]): string {
  if (tools.length === 0) return 'Answer as JSON: {"answer": "<your answer>"}.';
  const lines = [
    'Answer as JSON: {"calls": [{"tool": "<tool name>", "args": {<arguments>}}], "answer": "<text>"}.',
    'To use a tool, put the call in "calls". When you are done, leave "calls" empty and give your final answer in "answer".',
    'Tools:',
  ];
  for (const t of tools) {
    // The tool's own schema, patterns and ranges included: the grammar cannot hold them, the model can read them.
    const args = JSON.stringify(t.inputSchema, (key, value: unknown) => (key === '$schema' || key === 'additionalProperties' ? undefined : value));
    lines.push(`- ${t.name}: ${(t.description ?? '').slice(0, 300)} Arguments: ${args.length > 600 ? `${args.slice(0, 600)}…` : args}`);
  }
  return lines.join('\n');
}
