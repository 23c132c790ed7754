import path from 'node:path';
import type { Command } from 'commander';
import { FILE_HEADERS_ONLY, createTwoFilesPatch } from 'diff';
import { stringify as toYaml } from 'yaml';
import { isFleetFile, loadAgents, loadPolicies, type AgentRegistry, type AnyTool } from '../agents';
import type { ZodType } from 'zod';
import { CompiledPolicy, emptyLoopState, emptyUsage, governCall, parsePolicy, policyVersion, type Policy, type RunFacts } from '../governance';
import { quotaSetFor } from '../governance/quota';
import { DIFF_KINDS, groupDiffs, recordedRun, whatIf } from '../governance/change-safety/what-if';
import { shadowDiffsOf } from '../governance/change-safety/shadow-diff';
import { checkPolicy } from '../governance/policy/policy-check';
import { throwPolicyProblems } from '../governance/policy/parse-policy';
import { runIdFor } from '../config';
import type { RunStore } from '../store';
import type { ToolSpec } from '../workflows/run-types';
import { currentUser, withClientAndStore, withStore } from './context';
import { CliError, describeError, UsageError } from './cli-errors';
import { out, outJson, printable, table } from './format';
import { POLICY_DIFF_EXIT_CODE } from './support/exit-codes';
import { checkPoliciesDir, defaultPoliciesPath, prepareAgentsModule } from './support/project-paths';
import { applyPolicyFile, readFleetFile, readPolicyFile, readPolicyText } from './support/policy-files';
import { parseFailOn, parseSince, readTrails, whatIfLines, type TrailOptions } from './support/what-if-report';
import { loadShadowPolicy } from '../activities/shadow-policy';
import { registerPolicyTest } from './policy-test';
import { formatZodError } from '../zod-error';

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

/** Two texts as a unified diff (`diff -u`), line by line; no lines when they are the same. */
function unifiedDiff(from: string, to: string, labels: { from: string; to: string }): string[] {
  if (from === to) return [];
  const patch = createTwoFilesPatch(labels.from, labels.to, from, to, undefined, undefined, { context: 3, headerOptions: FILE_HEADERS_ONLY });
  return patch.replace(/\n$/, '').split('\n');
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Loads the agents a module exports, as `warden worker --agents` does, turning a bad module into a one-line error. */
function loadAgentModule(module: string): AgentRegistry {
  prepareAgentsModule(module);
  try {
    return loadAgents(module);
  } catch (err) {
    throw new CliError(describeError(err));
  }
}

/**
 * The tools of the policy's agent in `module`, its MCP servers' listed as a worker lists them;
 * refuses a policy for an agent the module does not export.
 */
async function agentTools(module: string, file: string, agent: string): Promise<{ specs: ToolSpec[]; tools: AnyTool[] }> {
  const registry = loadAgentModule(module);
  try {
    const names = registry.list().map((a) => a.name);
    if (!names.includes(agent)) throw new CliError(`${file}: the policy is for agent ${agent}, which ${module} does not export (it exports ${names.join(', ')})`);
    try {
      await registry.resolveTools();
    } catch (err) {
      throw new CliError(describeError(err));
    }
    return { specs: registry.spec(agent).tools, tools: registry.get(agent).tools };
  } finally {
    await registry.close();
  }
}

interface CheckOptions {
  agents?: string;
  tool?: string;
  args?: string;
  requester?: string;
  requesterVerified?: boolean;
  risk?: string;
  json?: boolean;
}

type Applied = NonNullable<Awaited<ReturnType<RunStore['getAppliedPolicy']>>>;

/** A stored applied policy, validated again. It may predate fields moving to the worker, so those are dropped, not refused. */
function appliedPolicy(agent: string, applied: Applied): Policy {
  return parsePolicy(applied.policy, `applied policy of ${agent} (from ${applied.source})`, { dropMovedFields: true });
}

/** The policy files in `dir`, by agent. */
function filePolicies(dir: string): Map<string, { policy: Policy; source: string; version: string }> {
  checkPoliciesDir(dir);
  try {
    // Absolute sources however --policies was written: a --json reader gets paths that work from anywhere.
    return new Map(loadPolicies(path.resolve(dir)).map((p) => [p.policy.agent, { ...p, version: policyVersion(p.policy) }]));
  } catch (err) {
    throw new CliError(describeError(err));
  }
}

const policiesOption = (command: Command) => command.option('--policies <dir>', 'directory of policy files the worker reads', defaultPoliciesPath());

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('Validate policies, try decisions, apply a policy to an agent and see which policy is in force');

  policy
    .command('check')
    .description("Validate a policy file and type-check its conditions; with --agents, against the agent's real tools; with --tool (and --args), print the decision it gives")
    .argument('<file>', 'policy file (YAML or JSON)')
    .option('--agents <module>', "module exporting agents (TS or JS): the policy's agent must be there, with every tool the policy lists")
    .option('--tool <name>', 'a tool call to decide')
    .option('--args <json>', 'the call\'s arguments as a JSON object (default {})')
    .option('--requester <id>', 'run.requester for conditions (default $USER, else your account name)')
    .option('--requester-verified', 'run.requesterVerified for conditions: as if a trusted channel signed the start')
    .option('--risk <level>', "tool.risk for conditions: low, medium or high (default the tool's own with --agents, else low)")
    .option('--json', 'print JSON')
    .action(async (file: string, opts: CheckOptions) => {
      if (!opts.tool && (opts.args !== undefined || opts.risk !== undefined || opts.requesterVerified)) throw new UsageError('--args, --risk and --requester-verified go with --tool');
      if (opts.risk !== undefined && !['low', 'medium', 'high'].includes(opts.risk)) throw new UsageError('--risk must be low, medium or high');
      if (isFleetFile(file)) {
        // The fleet file holds quotas and rate limits across agents, not an agent's policy.
        if (opts.tool || opts.agents) throw new UsageError(`${file} is the fleet file (quotas and rate limits across agents): --tool and --agents go with an agent's policy`);
        const fleet = readFleetFile(file);
        const summary = { file, quotas: fleet.quotas.map((q) => q.id), rateLimits: fleet.rateLimits.map((r) => `${r.tool}:${r.rate}`) };
        if (opts.json) outJson(summary);
        else out(`${file}: fleet file, valid: ${fleet.quotas.length} quota(s)${fleet.quotas.length ? ` (${summary.quotas.join(', ')})` : ''}, ${fleet.rateLimits.length} rate limit(s)${fleet.rateLimits.length ? ` (${summary.rateLimits.join(', ')})` : ''}`);
        return;
      }
      const args = parseArgs(opts.args);
      const { policy: parsed, text } = readPolicyText(file);
      const loaded = opts.agents === undefined ? undefined : await agentTools(opts.agents, file, parsed.agent);
      const tools = loaded?.specs;
      const problems = checkPolicy(parsed, tools, text);
      if (problems.length > 0) throwPolicyProblems(file, problems);

      const compiled = new CompiledPolicy(parsed, tools ? { knownTools: new Set(tools.map((t) => t.name)) } : {});
      const rules = compiled.policy.rules.length;
      const summary = { file, agent: compiled.policy.agent, version: compiled.version, tools: Object.keys(compiled.policy.tools), rules, checkedAgainst: opts.agents ?? null };
      const checked = opts.agents ? `conditions checked against the tools of ${opts.agents}` : 'arguments in conditions not checked: pass --agents to check them against the tools\' schemas';
      if (!opts.tool) {
        if (opts.json) return outJson({ valid: true, ...summary });
        out(`${file}: valid policy for ${summary.agent} (version ${summary.version}, ${plural(rules, 'rule')}, tools: ${summary.tools.join(', ')})`);
        return out(`  ${checked}`);
      }
      const risk = opts.risk ?? tools?.find((t) => t.name === opts.tool)?.risk;
      const run: RunFacts = {
        id: runIdFor(summary.agent, 'policy-check'),
        requester: opts.requester ?? currentUser(),
        requesterVerified: opts.requesterVerified ?? false,
        step: 1,
        toolCalls: 0,
        costUsd: 0,
        inputTokens: 0,
        outputTokens: 0,
      };
      // With the agents, the call goes the workflow's way: the tool's own schema makes the arguments
      // (transforms included), then governCall decides; without them the arguments are taken as given.
      const tool = loaded?.tools.find((t) => t.name === opts.tool);
      let judged = args;
      if (tool) {
        const made = (tool.input as ZodType).safeParse(args);
        if (!made.success) throw new CliError(`invalid arguments for ${opts.tool}, nothing would run: ${formatZodError(made.error)}`);
        judged = made.data as Record<string, unknown>;
      }
      const spec = tools?.find((t) => t.name === opts.tool);
      const decision = tools
        ? (governCall({ usage: emptyUsage(), loop: emptyLoopState(), stoppedTools: [] }, { id: 'policy-check', name: opts.tool, args: judged }, { policy: compiled, agent: summary.agent, tool: spec && { ...spec, risk: (risk ?? spec.risk) as ToolSpec['risk'] }, run, elapsedMs: 0 }).decision ??
          compiled.decide({ tool: opts.tool, args: judged, risk }, summary.agent, run))
        : compiled.decide({ tool: opts.tool, args, risk }, summary.agent, run);
      if (opts.json) return outJson({ valid: true, ...summary, call: { tool: opts.tool, args: judged }, decision });
      out(`${file}: valid policy for ${summary.agent} (version ${summary.version})`);
      out(`${opts.tool} ${JSON.stringify(judged)} → ${decision.decision} (rule ${decision.ruleId}): ${decision.reason}`);
      if (decision.approval) {
        const a = decision.approval;
        out(`  approvers ${a.approvers.join(', ')}, quorum ${a.quorum}, timeout ${a.timeout}${a.escalation ? `, then ${a.escalation.approvers.join(', ')} for ${a.escalation.timeout}` : ''}`);
      }
    });

  policy
    .command('apply')
    .description("Validate a policy, store it as its agent's policy for new runs, and tell the agent's running runs to take it up from the worker")
    .argument('<file>', 'policy file (YAML or JSON)')
    .option('--by <id>', 'who applies it, recorded in each run\'s audit trail (default $USER, else your account name)')
    .action(async (file: string, opts: { by?: string }) => {
      const { version, agent, sent } = await applyPolicyFile(file, opts.by ?? currentUser());
      out(`applied ${version} to ${agent}: new runs start with it; sent to ${sent} running run(s)`);
    });
  policiesOption(
    policy
      .command('list')
      .description('Agents with an applied policy (from `warden policy apply`): its version, source and time, beside the version of their policy file')
      .option('--json', 'print JSON'),
  ).action(async (opts: { policies: string; json?: boolean }) => {
    const files = filePolicies(opts.policies);
    const applied = await withStore((store) => store.listAppliedPolicies());
    const rows = applied.map((a) => {
      const file = files.get(a.agent);
      return { agent: a.agent, version: a.version, source: a.source, appliedAt: a.appliedAt, file: file ? { source: file.source, version: file.version } : null };
    });
    if (opts.json) return outJson(rows);
    if (rows.length === 0) return out(`no applied policies: new runs use the policy files in ${opts.policies}`);
    const lines = table(
      ['AGENT', 'APPLIED', 'APPLIED AT', 'SOURCE', 'FILE'],
      rows.map((r) => [r.agent, r.version, r.appliedAt, r.source, r.file ? `${r.file.version} ${path.relative(process.cwd(), r.file.source) || r.file.source}` : '(no file)']),
    );
    lines.forEach((l) => out(l));
  });

  policiesOption(
    policy
      .command('show')
      .description('The policy new runs of an agent get: the applied one if there is one, else its policy file; says which')
      .argument('<agent>', 'agent name')
      .option('--json', 'print JSON'),
  ).action(async (agent: string, opts: { policies: string; json?: boolean }) => {
    const applied = await withStore((store) => store.getAppliedPolicy(agent));
    const file = filePolicies(opts.policies).get(agent);
    if (applied) {
      const shown = appliedPolicy(agent, applied);
      if (opts.json) return outJson({ agent, inForce: 'applied', version: applied.version, source: applied.source, appliedAt: applied.appliedAt, file: file ? { source: file.source, version: file.version } : null, policy: shown });
      out(`# ${agent}: applied policy ${applied.version}, from ${applied.source}, applied ${applied.appliedAt}`);
      out(`# it overrides ${file ? `${file.source} (${file.version})` : 'no policy file'} until 'warden policy remove ${agent}'`);
      process.stdout.write(toYaml(shown));
      return;
    }
    if (!file) throw new CliError(`no policy for agent ${agent}: nothing applied and no policy file in ${opts.policies}`);
    if (opts.json) return outJson({ agent, inForce: 'file', version: file.version, source: file.source, policy: file.policy });
    out(`# ${agent}: policy file ${file.source} (${file.version}); no applied policy`);
    process.stdout.write(toYaml(file.policy));
  });

  policiesOption(
    policy
      .command('diff')
      .description("What an agent's applied policy changes from its policy file, as a unified diff of the YAML (lines the applied one adds are +)")
      .argument('<agent>', 'agent name'),
  ).action(async (agent: string, opts: { policies: string }) => {
    const applied = await withStore((store) => store.getAppliedPolicy(agent));
    const file = filePolicies(opts.policies).get(agent);
    if (!applied) {
      if (!file) throw new CliError(`no policy for agent ${agent}: nothing applied and no policy file in ${opts.policies}`);
      return out(`no applied policy for ${agent}: new runs use ${file.source} (${file.version})`);
    }
    // Both sides as validated and written out the same way, so only what means something differs (not comments or defaults).
    const from = file ? toYaml(file.policy) : '';
    const to = toYaml(appliedPolicy(agent, applied));
    const lines = unifiedDiff(from, to, { from: file ? `${file.source} (file, ${file.version})` : '(no policy file)', to: `applied ${applied.version} (from ${applied.source}, ${applied.appliedAt})` });
    if (lines.length === 0) return out(`applied policy ${applied.version} of ${agent} is the same as ${file?.source ?? 'its file'}`);
    lines.forEach((l) => out(l));
  });

  policiesOption(
    policy
      .command('remove')
      .description("Drop an agent's applied policy so its policy file counts again for new runs (running runs keep theirs)")
      .argument('<agent>', 'agent name'),
  ).action(async (agent: string, opts: { policies: string }) => {
    const file = filePolicies(opts.policies).get(agent);
    const removed = await withStore(async (store) => {
      const applied = await store.getAppliedPolicy(agent);
      return applied && (await store.removeAppliedPolicy(agent)) ? applied : null;
    });
    if (!removed) throw new CliError(`no applied policy for agent ${agent}; nothing removed`);
    const next = file ? `new runs use ${file.source} (${file.version})` : `agent ${agent} has no policy file in ${opts.policies}: its new runs fail until one is added or applied`;
    out(`removed applied policy ${removed.version} of ${agent}: ${next}; running runs keep the policy they have`);
  });

  registerPolicyTest(policy);
  registerChangeSafety(policy);
}

function registerChangeSafety(policy: Command): void {
  policy
    .command('what-if')
    .description("Decide every recorded call of an agent's runs again under a candidate policy, on the facts each call had, and show what would change; nothing runs")
    .addHelpText('after', `\nExit codes: 0 done, ${POLICY_DIFF_EXIT_CODE} a difference of a kind --fail-on lists was found, 1 an error, 2 a usage error.`)
    .argument('<candidate>', 'candidate policy file (YAML or JSON)')
    .option('--agent <name>', "the agent (default the candidate's; must be the candidate's)")
    .option('--since <duration>', 'runs started within this long (visibility)', '7d')
    .option('--runs <query>', "a Temporal list query that narrows the runs, e.g. \"WardenStatus = 'completed'\"")
    .option('--agents <module>', "module exporting agents: tools' risk and which tools the agent has (otherwise risk is taken as low)")
    .option('--fail-on <kinds>', `exit ${POLICY_DIFF_EXIT_CODE} when a difference of these kinds exists: ${DIFF_KINDS.join(',')} (or any)`)
    .option('--fleet <file>', "the fleet file (policies/fleet.yaml): its quotas that reach the candidate's agent are replayed too")
    .option('--json', 'print JSON')
    .action(async (file: string, opts: TrailOptions & { agent?: string; agents?: string; failOn?: string; fleet?: string; json?: boolean }) => {
      const failOn = parseFailOn(opts.failOn);
      parseSince(opts.since);
      const candidate = readPolicyFile(file);
      if (opts.agent !== undefined && opts.agent !== candidate.agent) throw new UsageError(`--agent ${opts.agent}: the candidate ${file} is a policy for ${candidate.agent}`);
      const tools = opts.agents === undefined ? undefined : (await agentTools(opts.agents, file, candidate.agent)).specs;
      const compiled = new CompiledPolicy(candidate, tools ? { knownTools: new Set(tools.map((t) => t.name)) } : {});
      const fleet = opts.fleet === undefined ? undefined : readFleetFile(opts.fleet);
      const trails = await withClientAndStore((client, store) => readTrails(client, store, candidate.agent, opts));
      const report = whatIf(trails.map((t) => recordedRun(t.runId, t.events)), compiled, {
        ...(tools ? { tools: new Map(tools.map((t) => [t.name, t])) } : {}),
        ...(fleet ? { quotas: quotaSetFor(candidate.agent, candidate, fleet) } : {}),
      });
      const failing = report.diffs.filter((d) => failOn.includes(d.kind));
      if (opts.json) outJson({ candidate: file, ...report, failOn, failing: failing.length });
      else whatIfLines(file, report).forEach((l) => out(l));
      if (failing.length > 0) {
        if (!opts.json) process.stderr.write(`what-if: ${plural(failing.length, 'difference')} of a kind --fail-on lists (${[...new Set(failing.map((d) => d.kind))].join(', ')})\n`);
        process.exitCode = POLICY_DIFF_EXIT_CODE;
      }
    });

  policy
    .command('shadow-report')
    .description("The calls on which runs' shadow policies disagreed with the enforced ones, grouped by rule (read from the audit trails)")
    .option('--agent <name>', 'one agent (default every agent)')
    .option('--since <duration>', 'runs started within this long (visibility)', '7d')
    .option('--runs <query>', 'a Temporal list query that narrows the runs')
    .option('--json', 'print JSON')
    .action(async (opts: TrailOptions & { agent?: string; json?: boolean }) => {
      parseSince(opts.since);
      const trails = await withClientAndStore((client, store) => readTrails(client, store, opts.agent, opts));
      const diffs = trails.flatMap((t) => shadowDiffsOf(t.runId, t.events).map((d) => ({ ...d, agent: t.agent })));
      const shadowed = trails.filter((t) => t.events.some((e) => e.type === 'run_started' && typeof e.data.shadowPolicyVersion === 'string'));
      const { byKind, byRule } = groupDiffs(diffs.map((d) => ({ kind: d.kind, before: d.enforced, after: d.shadow })));
      const shadows = [...new Set(diffs.map((d) => d.shadow.policyVersion))];
      if (opts.json) return outJson({ agent: opts.agent ?? null, runs: trails.length, shadowedRuns: shadowed.length, diffs: diffs.length, shadowVersions: shadows, byKind, byRule, calls: diffs });
      const who = opts.agent ?? 'every agent';
      out(`shadow report for ${who}: ${plural(trails.length, 'run')} (${shadowed.length} with a shadow policy), ${plural(diffs.length, 'disagreement')}`);
      if (diffs.length === 0) return;
      out('');
      DIFF_KINDS.filter((k) => byKind[k] > 0).forEach((k) => out(`  ${k.padEnd(17)} ${byKind[k]}`));
      out('');
      out('by rule:');
      table(['KIND', 'ENFORCED RULE', 'SHADOW RULE', 'CALLS'], byRule.map((b) => [b.kind, b.from, b.to, String(b.count)].map(printable))).forEach((l) => out(`  ${l}`));
      out('');
      out(`shadow version(s): ${shadows.map(printable).join(', ')}; apply it with 'warden policy promote-shadow <agent>'`);
    });

  policiesOption(
    policy
      .command('promote-shadow')
      .description("Apply the shadow policy an agent's policy names as the agent's policy (like 'warden policy apply <shadow file>')")
      .argument('<agent>', 'agent name')
      .option('--by <id>', "who applies it, recorded in each run's audit trail (default $USER, else your account name)"),
  ).action(async (agent: string, opts: { policies: string; by?: string }) => {
    const applied = await withStore((store) => store.getAppliedPolicy(agent));
    const current = applied ? { policy: appliedPolicy(agent, applied), source: applied.source } : filePolicies(opts.policies).get(agent);
    if (!current) throw new CliError(`no policy for agent ${agent}: nothing applied and no policy file in ${opts.policies}`);
    const shadow = loadShadowPolicy(current.policy, current.source);
    if (!shadow) throw new CliError(`the policy of ${agent} (${current.source}) names no shadow policy: nothing to promote`);
    if ('error' in shadow) throw new CliError(`cannot promote the shadow of ${agent}: ${shadow.error}`);
    const { version, sent } = await applyPolicyFile(shadow.source, opts.by ?? currentUser());
    out(`promoted shadow ${shadow.source} (${version}) to ${agent}: new runs start with it; sent to ${sent} running run(s)`);
  });
}
