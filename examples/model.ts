import { DefinitionError, type ModelSpec } from '../src/agents';

type NamedModel = `openai:${string}` | `anthropic:${string}` | `local:${string}`;

const isNamedModel = (value: string): value is NamedModel => /^(openai|anthropic|local):\S+$/.test(value);

/**
 * The model the example agents use: `scripted` (answers from a JSON script, no key, no network)
 * unless `WARDEN_MODEL` names a real one such as `openai:gpt-4o-mini`, or `local:smollm2` (or just
 * `local`), the small model that runs on the worker's CPU without a key. Read once, when the worker
 * loads the examples; the API key stays in the worker's environment.
 */
export function exampleModel(value: string | undefined = process.env.WARDEN_MODEL): ModelSpec {
  if (value === undefined || value === '' || value === 'scripted') return 'scripted';
  if (value === 'local') return 'local:smollm2';
  if (isNamedModel(value)) return value;
  throw new DefinitionError(`WARDEN_MODEL="${value}" is not a model: use scripted, local (local:smollm2), openai:<model> or anthropic:<model>`);
}
