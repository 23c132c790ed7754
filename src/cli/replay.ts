import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { AgentRegistry, toolSpec, type PolicyEntry } from '../agents';
import { parsePolicyText } from '../governance';
import { checkPolicy } from '../governance/policy/policy-check';
import { throwPolicyProblems } from '../governance/policy/parse-policy';
import { settingsFromEnv, storeLocation } from './context';
import { CliError, describeError } from './cli-errors';
import { out, outJson } from './format';
import { loadRegistry } from './local-stack';
import { EVAL_FAILED_EXIT_CODE } from './support/exit-codes';
import { defaultAgentsPath, defaultPoliciesPath } from './support/project-paths';
import { recordedCase, reportLines, startBench } from './support/replay-bench';

interface ReplayCliOptions {
  policy?: string;
  agents: string;
  policies: string;
  fromStep?: number;
  workflowBundle?: string;
  json?: boolean;
}

function parseStep(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number of model answers (0 or more)');
  return n;
}

/** The registry with one agent's policy replaced by a file, checked against the agent's tools as a policy directory is. */
function withPolicyFile(registry: AgentRegistry, agent: string, file: string): AgentRegistry {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read policy ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const agents = registry.list();
  try {
    const policy = parsePolicyText(text, file);
    if (policy.agent !== agent) throw new CliError(`${file} is a policy for ${policy.agent}; the run is of ${agent}`);
    const problems = checkPolicy(policy, registry.get(agent).tools.map(toolSpec), text);
    if (problems.length > 0) throwPolicyProblems(file, problems);
    const others = agents.map((a) => registry.policyFor(a.name)).filter((p): p is PolicyEntry => p !== undefined && p.policy.agent !== agent);
    return new AgentRegistry(agents, [...others, { policy, source: file }]);
  } catch (err) {
    if (CliError.isInstance(err)) throw err;
    throw new CliError(describeError(err));
  }
}

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description("Run a finished run again from its recorded model answers, under today's agents and policy, as a new run linked to it (WardenReplayOf); tools answer with their recorded results")
    .argument('<runId>')
    .option('--policy <file>', "the agent's policy for the replay (default: its file in --policies)")
    .option('--agents <module>', 'module exporting agents (TS or JS)', defaultAgentsPath())
    .option('--policies <dir>', 'directory of policy files', defaultPoliciesPath())
    .option('--from-step <k>', 'use only the first K recorded model answers; the scripted model then ends the run with a text answer', parseStep)
    .option('--workflow-bundle <file>', 'a prebuilt workflow bundle (bundleWorkflowCode output) instead of bundling at start')
    .option('--json', 'print JSON')
    .addHelpText('after', `\nThe new run lives on TEMPORAL_ADDRESS and in the run store (WARDEN_STORE), served by a worker of this command on a task queue of its own. Exit ${EVAL_FAILED_EXIT_CODE} when a decision or the outcome differs.`)
    .action(async (runId: string, opts: ReplayCliOptions) => {
      const golden = await recordedCase(runId);
      const loaded = loadRegistry(opts.agents, opts.policies);
      const registry = opts.policy ? withPolicyFile(loaded, golden.agent, opts.policy) : loaded;
      const setup = await startBench(registry, settingsFromEnv(), storeLocation(), opts.workflowBundle);
      let report;
      try {
        report = await setup.bench.replay(golden, { name: runId.replace(/^warden\/[^/]+\//, ''), ...(opts.fromStep !== undefined ? { fromStep: opts.fromStep } : {}) });
      } finally {
        await setup.close();
      }
      if (opts.json) outJson(report);
      else reportLines(report).forEach((l) => out(l));
      if (!report.passed) process.exitCode = EVAL_FAILED_EXIT_CODE;
    });
}
