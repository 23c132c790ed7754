import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { CompiledPolicy, parsePolicyText, type Policy } from '../governance';
import { runIdFor } from '../config';
import { currentUser, withClient, withStore } from './context';
import { CliError, UsageError } from './errors';
import { out, outJson } from './format';

/** Reads and validates a policy file with the same function the worker uses; errors name the file and the path inside it. */
export function readPolicyFile(file: string): Policy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read policy file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parsePolicyText(text, file);
}

function parseArgs(json: string | undefined): Record<string, unknown> {
  if (json === undefined) return {};
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new UsageError(`--args is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError('--args must be a JSON object, e.g. \'{"amount": 50}\'');
  return value as Record<string, unknown>;
}

interface CheckOptions {
  tool?: string;
  args?: string;
  requester?: string;
  risk?: string;
  json?: boolean;
}

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('Validate policies, try decisions, apply a policy to an agent');

  policy
    .command('check')
    .description('Validate a policy file; with --tool (and --args) print the decision it gives')
    .argument('<file>', 'policy file (YAML or JSON)')
    .option('--tool <name>', 'a tool call to decide')
    .option('--args <json>', 'the call\'s arguments as a JSON object (default {})')
    .option('--requester <id>', 'run.requester for conditions (default $USER)')
    .option('--risk <level>', 'tool.risk for conditions: low, medium or high (default low)')
    .option('--json', 'print JSON')
    .action((file: string, opts: CheckOptions) => {
      if (!opts.tool && (opts.args !== undefined || opts.risk !== undefined)) throw new UsageError('--args and --risk go with --tool');
      if (opts.risk !== undefined && !['low', 'medium', 'high'].includes(opts.risk)) throw new UsageError('--risk must be low, medium or high');
      const args = parseArgs(opts.args);
      const compiled = new CompiledPolicy(readPolicyFile(file));
      const summary = { file, agent: compiled.policy.agent, version: compiled.version, tools: Object.keys(compiled.policy.tools), rules: compiled.policy.rules.length };
      if (!opts.tool) return opts.json ? outJson({ valid: true, ...summary }) : out(`${file}: valid policy for ${summary.agent} (version ${summary.version}, ${summary.rules} rules, tools: ${summary.tools.join(', ')})`);
      const run = { id: runIdFor(summary.agent, 'policy-check'), requester: opts.requester ?? currentUser(), step: 1, toolCalls: 0, costUsd: 0, inputTokens: 0, outputTokens: 0 };
      const decision = compiled.decide({ tool: opts.tool, args, risk: opts.risk }, summary.agent, run);
      if (opts.json) return outJson({ valid: true, ...summary, call: { tool: opts.tool, args }, decision });
      out(`${file}: valid policy for ${summary.agent} (version ${summary.version})`);
      out(`${opts.tool} ${JSON.stringify(args)} → ${decision.decision} (rule ${decision.ruleId}): ${decision.reason}`);
      if (decision.approval) {
        const a = decision.approval;
        out(`  approvers ${a.approvers.join(', ')}, quorum ${a.quorum}, timeout ${a.timeout}${a.escalation ? `, then ${a.escalation.approvers.join(', ')} for ${a.escalation.timeout}` : ''}`);
      }
    });

  policy
    .command('apply')
    .description("Validate a policy, store it as its agent's policy for new runs, and tell the agent's running runs to take it up from the worker")
    .argument('<file>', 'policy file (YAML or JSON)')
    .option('--by <id>', 'who applies it, recorded in each run\'s audit trail (default $USER)')
    .action(async (file: string, opts: { by?: string }) => {
      // Validated before anything is stored or sent: a bad file reaches no run.
      const policy = readPolicyFile(file);
      const version = new CompiledPolicy(policy).version;
      await withClient(async (client) => {
        await withStore((store) => store.setAppliedPolicy(policy.agent, { policy, version, source: path.resolve(file) }));
        const runs = await client.listRuns({ agent: policy.agent });
        const results = await Promise.allSettled(runs.map((r) => client.applyPolicy(r.runId, opts.by ?? currentUser())));
        const sent = results.filter((r) => r.status === 'fulfilled').length;
        out(`applied ${version} to ${policy.agent}: new runs start with it; sent to ${sent} running run(s)`);
      });
    });
}
