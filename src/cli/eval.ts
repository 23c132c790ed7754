import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { EvalCaseError, readGoldenCase, writeGoldenCase, type GoldenCase } from '../eval/case-schema';
import { junitXml } from '../eval/junit';
import type { CaseReport, LiveCaseReport } from '../eval/run';
import type { ModelSpec } from '../agents';
import { ensureLocalModel } from './support/local-models';
import { settingsFromEnv } from './context';
import { CliError, UsageError } from './cli-errors';
import { out, outJson, printable } from './format';
import { loadRegistry } from './local-stack';
import { EVAL_FAILED_EXIT_CODE } from './support/exit-codes';
import { defaultAgentsPath, defaultPoliciesPath } from './support/project-paths';
import { recordedCase, reportLines, startBench } from './support/replay-bench';

const CASE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** The golden cases of a directory, sorted by name; a bad file stops everything with its name and field. */
export function readCases(dir: string): { name: string; file: string; golden: GoldenCase }[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CliError(`golden case directory ${dir} does not exist (record a case with 'warden eval record <runId> --as <name>')`);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  if (files.length === 0) throw new CliError(`no golden cases (*.json) in ${dir}`);
  return files.map((f) => {
    const file = path.join(dir, f);
    try {
      return { name: f.replace(/\.json$/, ''), file, golden: readGoldenCase(file) };
    } catch (err) {
      if (EvalCaseError.isInstance(err)) throw new CliError(err.message);
      throw err;
    }
  });
}

interface RecordOptions {
  as: string;
  dir: string;
  force?: boolean;
}

interface EvalRunOptions {
  live?: boolean;
  model?: string;
  repeat: string;
  minPassRate?: string;
  junit?: string;
  agents: string;
  policies: string;
  workflowBundle?: string;
  json?: boolean;
}

export function registerEval(program: Command): void {
  const evalCommand = program.command('eval').description('Golden runs: record a finished run as a case, replay the cases under today\'s agents and policies');

  evalCommand
    .command('record')
    .description('Save a finished run as a golden case <dir>/<name>.json: its model answers, tool results, decisions and outcome, and expectations to edit')
    .argument('<runId>')
    .requiredOption('--as <name>', 'case name: the file is <dir>/<name>.json')
    .option('--dir <dir>', 'directory of golden cases', 'evals')
    .option('--force', 'overwrite an existing case')
    .action(async (runId: string, opts: RecordOptions) => {
      if (!CASE_NAME.test(opts.as)) throw new UsageError(`--as "${opts.as}" must be a file name: letters, digits, '.', '_' and '-'`);
      const file = path.join(opts.dir, `${opts.as}.json`);
      if (existsSync(file) && !opts.force) throw new CliError(`${file} exists already; pass --force to overwrite it`);
      const golden = await recordedCase(runId);
      writeGoldenCase(file, golden);
      out(`recorded ${printable(runId)} as ${file}: ${golden.turns.length} model answer(s), ${golden.toolResults.length} tool result(s), ${golden.decisions.length} decision(s), outcome ${golden.outcome.status}`);
    });

  evalCommand
    .command('run')
    .description(`Replay every golden case of a directory with its recorded model answers and tool results, under the current agents and policies; exit ${EVAL_FAILED_EXIT_CODE} if any case fails`)
    .argument('[dir]', 'directory of golden cases', 'evals')
    .option('--junit <file>', 'also write the results as JUnit XML')
    .option('--agents <module>', 'module exporting agents (TS or JS)', defaultAgentsPath())
    .option('--policies <dir>', 'directory of policy files', defaultPoliciesPath())
    .option('--workflow-bundle <file>', 'a prebuilt workflow bundle (bundleWorkflowCode output) instead of bundling at start')
    .option('--json', 'print JSON')
    .option('--live', "judge each case's expectations against a real model instead of replaying its recorded answers")
    .option('--model <model>', 'with --live: the model (local:smollm2, openai:<model>, anthropic:<model>)', 'local:smollm2')
    .option('--repeat <n>', 'with --live: runs per case', '3')
    .option('--min-pass-rate <rate>', `with --live: exit ${EVAL_FAILED_EXIT_CODE} when a case passes less often than this (0 to 1)`)
    .addHelpText('after', '\nWith TEMPORAL_ADDRESS set, the replays run on that server (on a task queue of their own); otherwise on a headless dev server started for them.')
    .action(async (dir: string, opts: EvalRunOptions) => {
      if (opts.live) return runLive(dir, opts);
      if (opts.minPassRate !== undefined) throw new UsageError('--min-pass-rate goes with --live');
      const cases = readCases(dir);
      const registry = loadRegistry(opts.agents, opts.policies);
      const settings = process.env.TEMPORAL_ADDRESS ? settingsFromEnv() : null;
      const setup = await startBench(registry, settings, null, opts.workflowBundle);
      const reports: CaseReport[] = [];
      try {
        for (const c of cases) {
          const report = await setup.bench.replay(c.golden, { name: c.name });
          reports.push(report);
          if (!opts.json) reportLines(report).forEach((l) => out(l));
        }
      } finally {
        await setup.close();
      }
      if (opts.junit) {
        mkdirSync(path.dirname(path.resolve(opts.junit)), { recursive: true });
        writeFileSync(opts.junit, junitXml(reports));
      }
      const failed = reports.filter((r) => !r.passed).length;
      if (opts.json) outJson({ passed: failed === 0, cases: reports });
      else out(`${reports.length - failed} of ${reports.length} case(s) passed${opts.junit ? `; JUnit XML in ${opts.junit}` : ''}`);
      if (failed > 0) process.exitCode = EVAL_FAILED_EXIT_CODE;
    });
}

/** The model a live evaluation runs on, checked before anything starts. */
function liveModel(value: string | undefined): Extract<ModelSpec, string> {
  const model = value ?? 'local:smollm2';
  if (!/^(openai|anthropic|local):\S+$/.test(model)) throw new UsageError(`--model ${model}: use local:<name>, openai:<model> or anthropic:<model>`);
  return model as Extract<ModelSpec, string>;
}

/** `warden eval run --live`: each case's goal on a real model, `--repeat` times; its pass rate against its expectations. */
async function runLive(dir: string, opts: EvalRunOptions): Promise<void> {
  const repeat = Number(opts.repeat);
  if (!Number.isSafeInteger(repeat) || repeat < 1 || repeat > 100) throw new UsageError(`--repeat ${opts.repeat}: a whole number from 1 to 100`);
  const minPassRate = opts.minPassRate === undefined ? undefined : Number(opts.minPassRate);
  if (minPassRate !== undefined && !(minPassRate >= 0 && minPassRate <= 1)) throw new UsageError(`--min-pass-rate ${opts.minPassRate}: a number from 0 to 1`);
  const model = liveModel(opts.model);
  const cases = readCases(dir);
  if (model.startsWith('local:')) {
    const name = model.slice('local:'.length);
    if (!name.includes('/') && !name.endsWith('.gguf')) await ensureLocalModel(name);
  }
  const registry = loadRegistry(opts.agents, opts.policies);
  const settings = process.env.TEMPORAL_ADDRESS ? settingsFromEnv() : null;
  const setup = await startBench(registry, settings, null, opts.workflowBundle, model);
  const reports: LiveCaseReport[] = [];
  try {
    for (const c of cases) {
      const report = await setup.bench.live(c.golden, { name: c.name, repeat });
      reports.push(report);
      if (opts.json) continue;
      out(`${report.passed === report.repeat ? 'PASS' : report.passed === 0 ? 'FAIL' : 'PART'} ${printable(c.name)} (${report.agent}) on ${model}: ${report.passed} of ${report.repeat} passed (${Math.round(report.passRate * 100)}%)`);
      for (const r of report.runs) {
        out(`  ${r.passed ? 'pass' : 'fail'} ${printable(r.runId)}: ${r.status}; ran ${r.toolsRun.join(', ') || 'no tool'}`);
        for (const f of r.failures) out(`       ${printable(f)}`);
      }
    }
  } finally {
    await setup.close();
  }
  const below = minPassRate === undefined ? [] : reports.filter((r) => r.passRate < minPassRate);
  if (opts.json) outJson({ model, repeat, minPassRate: minPassRate ?? null, passed: below.length === 0, cases: reports });
  else out(`${reports.length} case(s) on ${model}, ${repeat} run(s) each${minPassRate === undefined ? '' : `; ${below.length === 0 ? 'all' : `${reports.length - below.length} of ${reports.length}`} at or over the pass rate ${minPassRate}`}`);
  if (below.length > 0) process.exitCode = EVAL_FAILED_EXIT_CODE;
}
