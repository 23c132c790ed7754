import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { ZodType } from 'zod';
import { loadAgents, type AgentRegistry } from '../agents';
import { CompiledPolicy, parsePolicyText, PolicyError } from '../governance';
import type { GovernedTool } from '../governance';
import {
  formatPolicyTestProblem,
  parsePolicyTestText,
  PolicyTestError,
  runPolicyTests,
  type PolicyTestOptions,
  type PolicyTestProblem,
  type PolicyTestResult,
} from '../governance/change-safety/policy-tests';
import { PolicySourceMap } from '../governance/policy/policy-location';
import { formatZodError } from '../zod-error';
import { CliError, describeError } from './cli-errors';
import { out, outJson, printable } from './format';
import { defaultPoliciesPath, prepareAgentsModule } from './support/project-paths';

/** A test file's name: the policy's own name with `.test` before the extension. */
const TEST_FILE = /\.test\.(ya?ml|json)$/;

/** The exit code of `warden policy test` when a test file cannot be run as written (as a usage error). */
export const MALFORMED_TEST_EXIT_CODE = 2;

/** The test files `target` names: every `*.test.yaml` (`.yml`, `.json`) in a directory, or the one file given. */
function testFilesOf(target: string): string[] {
  if (!existsSync(target)) throw new CliError(`${target} does not exist: name a directory of policies and their tests, or one test file (<policy>.test.yaml)`);
  if (statSync(target).isDirectory()) {
    const files = readdirSync(target)
      .filter((f) => TEST_FILE.test(f))
      .sort()
      .map((f) => path.join(target, f));
    if (files.length === 0) throw new CliError(`no policy tests in ${target}: write them beside each policy, as <policy>.test.yaml (see docs/policies.md#policy-tests)`);
    return files;
  }
  if (TEST_FILE.test(target)) return [target];
  // A policy file: its tests beside it.
  const sibling = ['yaml', 'yml', 'json'].map((ext) => target.replace(/\.(ya?ml|json)$/, `.test.${ext}`)).find((f) => f !== target && existsSync(f));
  if (!sibling) throw new CliError(`${target} is not a policy test file (<policy>.test.yaml) and has no tests beside it`);
  return [sibling];
}

/** The policy file a test file tests: the one it names (`policy:`, relative to it), else its own name without `.test`. */
function policyFileOf(testFile: string, named: string | undefined, text: string): string {
  const dir = path.dirname(testFile);
  if (named !== undefined) {
    const file = path.resolve(dir, named);
    if (existsSync(file)) return path.join(dir, named);
    const at = new PolicySourceMap(text).positionOf(['policy']);
    throw new PolicyTestError(`${testFile}: invalid policy test file`, testFile, [{ path: 'policy', message: `no policy file ${path.join(dir, named)}`, ...(at ? { line: at.line, column: at.column } : {}) }]);
  }
  const base = testFile.replace(TEST_FILE, '');
  const found = ['.yaml', '.yml', '.json'].map((ext) => base + ext).find((f) => existsSync(f));
  if (found) return found;
  throw new PolicyTestError(`${testFile}: invalid policy test file`, testFile, [
    { path: 'policy', message: `no policy file ${path.basename(base)}.yaml beside it: name the policy it tests with policy: <file>` },
  ]);
}

/** The agents' tools by agent, and what each tool's schema makes of arguments, as the worker has them. */
async function agentToolsOf(module: string): Promise<Map<string, PolicyTestOptions>> {
  prepareAgentsModule(module);
  let registry: AgentRegistry;
  try {
    registry = loadAgents(module);
  } catch (err) {
    throw new CliError(describeError(err));
  }
  try {
    await registry.resolveTools();
    const byAgent = new Map<string, PolicyTestOptions>();
    for (const agent of registry.list()) {
      const specs = registry.spec(agent.name).tools;
      const inputs = new Map(registry.get(agent.name).tools.map((t) => [t.name, t.input as ZodType]));
      const tools = new Map<string, GovernedTool>(specs.map((s) => [s.name, s]));
      byAgent.set(agent.name, {
        tools,
        prepareArgs: (tool, args) => {
          const input = inputs.get(tool);
          if (!input) return { args };
          const made = input.safeParse(args);
          return made.success ? { args: made.data as Record<string, unknown> } : { refused: formatZodError(made.error) };
        },
      });
    }
    return byAgent;
  } catch (err) {
    throw new CliError(describeError(err));
  } finally {
    await registry.close();
  }
}

interface CaseReport extends PolicyTestResult {
  line?: number;
}

type FileReport =
  | { file: string; policy: string; agent: string; policyVersion: string; passed: number; failed: number; uncoveredRules: string[]; uncoveredQuotas: string[]; cases: CaseReport[] }
  | { file: string; malformed: true; error: string; problems: PolicyTestProblem[] }
  | { file: string; policy: string; error: string };

/** Runs one test file; a malformed file or an invalid policy is reported, not thrown, so the other files still run. */
function runFile(file: string, agents: Map<string, PolicyTestOptions> | undefined, agentsModule: string | undefined): FileReport {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read policy test file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let policyFile = '';
  try {
    const suite = parsePolicyTestText(text, file);
    policyFile = policyFileOf(file, suite.policy, text);
    const policy = parsePolicyText(readFileSync(policyFile, 'utf8'), policyFile);
    let options: PolicyTestOptions = {};
    if (agents) {
      const own = agents.get(policy.agent);
      if (!own) throw new CliError(`${policyFile}: the policy is for agent ${policy.agent}, which ${agentsModule} does not export (it exports ${[...agents.keys()].join(', ')})`);
      options = own;
    }
    const compiled = new CompiledPolicy(policy, options.tools ? { knownTools: new Set(options.tools.keys()) } : {});
    const map = new PolicySourceMap(text);
    const run = runPolicyTests(compiled, suite, { ...options, locate: (at) => map.positionOf(at, 'key') }, file);
    const cases = run.results.map((r): CaseReport => {
      const at = map.positionOf(['cases', r.index]);
      return at ? { ...r, line: at.line } : r;
    });
    return { file, policy: policyFile, agent: run.agent, policyVersion: run.policyVersion, passed: run.passed, failed: run.failed, uncoveredRules: run.uncoveredRules, uncoveredQuotas: run.uncoveredQuotas, cases };
  } catch (err) {
    if (PolicyTestError.isInstance(err)) return { file, malformed: true, error: err.message.split('\n')[0] ?? err.message, problems: [...err.problems] };
    if (PolicyError.isInstance(err) || CliError.isInstance(err)) return { file, policy: policyFile, error: describeError(err) };
    throw err;
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function printFile(report: FileReport): void {
  if ('malformed' in report) {
    out(`${report.file}: invalid policy test file, not run`);
    report.problems.forEach((p) => out(`  ${formatPolicyTestProblem(report.file, p)}`));
    return;
  }
  if ('error' in report) {
    out(`${report.file}: cannot test ${report.policy || 'its policy'}: ${report.error}`);
    return;
  }
  out(`${report.file} → ${report.policy} (${report.agent}, ${report.policyVersion})`);
  for (const c of report.cases) {
    if (c.passed) {
      out(`  ✓ ${printable(c.name)}`);
      continue;
    }
    out(`  ✗ ${printable(c.name)} (${report.file}${c.line === undefined ? '' : `:${c.line}`}, ${printable(c.tool)})`);
    out(`      ${printable(c.failure ?? '')}`);
  }
  if (report.uncoveredRules.length > 0) out(`  rules no case reaches: ${report.uncoveredRules.join(', ')}`);
  if (report.uncoveredQuotas.length > 0) out(`  quotas no case reaches: ${report.uncoveredQuotas.join(', ')}`);
}

export function registerPolicyTest(policy: Command): void {
  policy
    .command('test')
    .description('Run the test cases written beside each policy (<policy>.test.yaml): each call must get the decision and rule it expects')
    .addHelpText('after', `\nExit codes: 0 every case passed, 1 a case failed (or a policy is invalid), ${MALFORMED_TEST_EXIT_CODE} a test file is malformed.`)
    .argument('[target]', 'a directory of policies and their tests, one test file, or one policy file with its tests beside it (default the policies directory)')
    .option('--agents <module>', "module exporting agents: each call goes through its tool's own schema, and tool.risk is the tool's (otherwise every tool exists with risk low unless a case says)")
    .option('--json', 'print JSON')
    .action(async (target: string | undefined, opts: { agents?: string; json?: boolean }) => {
      const files = testFilesOf(target ?? defaultPoliciesPath());
      const agents = opts.agents === undefined ? undefined : await agentToolsOf(opts.agents);
      const reports = files.map((f) => runFile(f, agents, opts.agents));
      const passed = reports.reduce((n, r) => n + ('passed' in r ? r.passed : 0), 0);
      const failed = reports.reduce((n, r) => n + ('failed' in r ? r.failed : 0), 0);
      const malformed = reports.filter((r) => 'malformed' in r).length;
      const broken = reports.filter((r) => 'error' in r && !('malformed' in r)).length;
      if (opts.json) outJson({ passed, failed, malformed, errors: broken, files: reports });
      else {
        reports.forEach(printFile);
        const extra = [malformed > 0 ? `${malformed} malformed` : '', broken > 0 ? `${broken} not run` : ''].filter(Boolean).join(', ');
        out(`${plural(passed + failed, 'case')}: ${passed} passed, ${failed} failed (${plural(files.length, 'file')}${extra ? `, ${extra}` : ''})`);
      }
      if (malformed > 0) process.exitCode = MALFORMED_TEST_EXIT_CODE;
      else if (failed > 0 || broken > 0) process.exitCode = 1;
    });
}
