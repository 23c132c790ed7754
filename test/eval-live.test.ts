/**
 * `warden eval run --live`: the repository's golden cases judged against the local model, through
 * the CLI, on the suite's Temporal server. The pass rate is whatever the model earns; what is
 * checked is that every repetition ran, was judged and reported, and the flags' bad input.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LiveCaseReport } from '../src/eval/run';
import { knownModel, modelFile } from '../src/models/local';
import { runCli } from './fixtures/run-cli';
import { settings } from './helpers';

const root = path.join(__dirname, '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-eval-live-'));
const evals = path.join(tmp, 'evals');
const policies = path.join(tmp, 'policies');
const env = () => ({ ...process.env, TEMPORAL_ADDRESS: settings().address, WARDEN_HOME: path.join(tmp, 'home'), WARDEN_SHOP_DB: path.join(tmp, 'shop.db') });
const bundle = process.env.WARDEN_TEST_WORKFLOW_BUNDLE ?? '';
const available = existsSync(modelFile(knownModel('smollm2'), process.env));
if (!available) process.stderr.write("test/eval-live.test.ts: the live runs are skipped: the local model is not fetched ('warden models fetch smollm2'; .ci/run does)\n");

beforeAll(() => {
  cpSync(path.join(root, 'evals', 'refund-late-delivery.json'), path.join(evals, 'refund-late-delivery.json'));
  // The example policies with three model calls a run: a repetition on a CPU then takes a minute, not twenty calls' worth.
  mkdirSync(policies, { recursive: true });
  for (const agent of ['refund-agent', 'procurement-agent', 'triage-agent']) {
    const text = readFileSync(path.join(root, 'policies', `${agent}.yaml`), 'utf8');
    writeFileSync(path.join(policies, `${agent}.yaml`), text.replace(/^( {2}maxSteps:) \d+/m, '$1 3'));
  }
  expect(readFileSync(path.join(policies, 'refund-agent.yaml'), 'utf8')).toMatch(/^ {2}maxSteps: 3\b/m);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('warden eval run --live', () => {
  (available ? it : it.skip)(
    'runs each case on the local model --repeat times and reports its pass rate against its expectations',
    async () => {
      const r = await runCli(['eval', 'run', evals, '--live', '--repeat', '2', '--policies', policies, '--workflow-bundle', bundle, '--json'], env(), 900_000);
      expect(r.stderr).not.toMatch(/^error/m);
      const report = JSON.parse(r.stdout) as { model: string; repeat: number; passed: boolean; cases: LiveCaseReport[] };
      expect(report).toMatchObject({ model: 'local:smollm2', repeat: 2, passed: true });
      const [c] = report.cases;
      expect(c).toMatchObject({ name: 'refund-late-delivery', agent: 'refund-agent', repeat: 2 });
      expect(c!.runs).toHaveLength(2);
      expect(c!.passRate).toBe(c!.passed / 2);
      for (const run of c!.runs) {
        expect(run.runId).toMatch(/^warden\/refund-agent\/live-refund-late-delivery-/);
        // Judged by the case's expectations: a pass has no failures, a fail says what missed.
        expect(run.passed).toBe(run.failures.length === 0);
        expect(run.status).not.toBe('failed');
      }
      // With a threshold no case can reach, the command fails with the eval exit code.
      const strict = await runCli(['eval', 'run', evals, '--live', '--repeat', '1', '--min-pass-rate', '1', '--policies', policies, '--workflow-bundle', bundle], env(), 900_000);
      const rate = Number(/(\d+) of 1 passed/.exec(strict.stdout)?.[1]);
      expect(strict.code).toBe(rate === 1 ? 0 : 21);
      expect(strict.stdout).toMatch(/1 case\(s\) on local:smollm2, 1 run\(s\) each; (all|0 of 1) at or over the pass rate 1/);
    },
    1_200_000,
  );

  it('refuses bad flags before starting anything', async () => {
    const bad = async (args: string[], message: RegExp) => {
      const r = await runCli(['eval', 'run', evals, ...args], env());
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
    };
    await bad(['--live', '--repeat', '0'], /--repeat 0: a whole number from 1 to 100/);
    await bad(['--live', '--min-pass-rate', '2'], /--min-pass-rate 2: a number from 0 to 1/);
    await bad(['--live', '--model', 'gpt-4o'], /--model gpt-4o: use local:<name>, openai:<model> or anthropic:<model>/);
    await bad(['--min-pass-rate', '0.5'], /--min-pass-rate goes with --live/);
  }, 120_000);
});
