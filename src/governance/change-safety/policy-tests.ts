import { z } from 'zod';
import { errorMarker, WardenError } from '../../errors';
import { emptyUsage, type BudgetUsage } from '../accounting/budget';
import { emptyLoopState } from '../accounting/loop-detector';
import { governCall, spentOf, type GovernedTool, type GovernState } from '../calls/govern-call';
import { DURATION_PATTERN, durationMs } from '../policy/duration';
import type { CompiledPolicy, RunFacts } from '../policy/policy-compiled';
import { PolicySourceMap } from '../policy/policy-location';
import { formatPolicyPath } from '../policy/policy-problem';
import { budgetsSchema } from '../policy/policy-schema';
import { callAmount, judgeQuota, quotaMessage, quotaSetFor, rulesForCall } from '../quota';
import { verdictOf, type Verdict } from './what-if';

// Test cases written beside a policy (`refund-agent.test.yaml` beside `refund-agent.yaml`), each
// one proposed call with the facts of its run and the decision it must get. They are decided by
// `governCall`, the workflow's own function, so a passing case means the runtime decides alike.

const count = z.number().int('must be a whole number').min(0, 'must be 0 or more');
const amount = z.number().min(0, 'must be 0 or more');

const runSchema = z.strictObject({
  id: z.string().min(1).optional(),
  requester: z.string().min(1, 'must name the requester').default('tester'),
  requesterVerified: z.boolean().default(false),
  /** `run.tenant`: the tenant a signed start named (default none, '' in conditions). */
  tenant: z.string().min(1, 'must name the tenant (leave it out for none)').optional(),
});

const usageSchema = z.strictObject({
  /** Model calls so far: `run.step` (the first tool call comes after the first model call). */
  steps: count.default(1),
  toolCalls: count.default(0),
  toolCallsByTool: z.record(z.string(), count).default({}),
  inputTokens: count.default(0),
  outputTokens: count.default(0),
  costUsd: amount.default(0),
  /** Time since the run started (for `maxWallTime`). */
  elapsed: z.string().regex(DURATION_PATTERN, 'must be a duration such as 30s, 10m, 24h or 7d').optional(),
});

const delegationSchema = z.strictObject({
  /** For a delegate: the ceiling its delegating run gave it, enforced besides its own budgets. */
  ceiling: budgetsSchema.optional(),
  /** For a delegating run: what the runs it delegated to used, charged to its budgets and run facts. */
  delegatesUsed: z
    .strictObject({ steps: count.default(0), toolCalls: count.default(0), inputTokens: count.default(0), outputTokens: count.default(0), costUsd: amount.default(0) })
    .optional(),
});

export const POLICY_TEST_DECISIONS = ['allow', 'deny', 'require_approval'] as const;

const expectSchema = z.strictObject({
  decision: z.enum(POLICY_TEST_DECISIONS, { error: 'must be allow, deny or require_approval' }),
  rule: z.string({ error: 'must be the id of the rule that decides (or default:no-match, budget:<limit>, loop:<action>, …)' }).min(1, 'must not be empty'),
  /** A part of the reason the decision must carry. */
  reason: z.string().min(1, 'must not be empty').optional(),
});

export const policyTestCaseSchema = z.strictObject({
  name: z.string({ error: 'every case needs a name' }).min(1, 'must not be empty'),
  tool: z.string({ error: 'must name the tool the call is for' }).min(1, 'must not be empty'),
  args: z.record(z.string(), z.unknown(), { error: 'must be a map of the call\'s arguments' }).default({}),
  /** `tool.risk`; without the agents, low unless given. */
  risk: z.enum(['low', 'medium', 'high'], { error: 'must be low, medium or high' }).optional(),
  run: runSchema.default({ requester: 'tester', requesterVerified: false }),
  usage: usageSchema.default({ steps: 1, toolCalls: 0, toolCallsByTool: {}, inputTokens: 0, outputTokens: 0, costUsd: 0 }),
  delegation: delegationSchema.optional(),
  /**
   * What each of the policy's quotas (by id) holds already in the call's counter and window,
   * committed and reserved together; a quota not named holds nothing.
   */
  quotas: z.record(z.string(), z.number({ error: 'must be the amount the quota holds already (a number)' }).min(0, 'must be 0 or more'), { error: 'must map quota ids to the amounts they hold already' }).optional(),
  expect: expectSchema,
});

export const policyTestFileSchema = z
  .strictObject({
    /** The policy file the cases test, relative to the test file. Default: its own name without `.test`. */
    policy: z.string().min(1, 'must be the path of the policy file, relative to this one').optional(),
    cases: z.array(policyTestCaseSchema, { error: 'must be a list of cases' }).min(1, 'must hold at least one case'),
  })
  .superRefine((file, ctx) => {
    const seen = new Set<string>();
    file.cases.forEach((c, i) => {
      if (seen.has(c.name)) ctx.addIssue({ code: 'custom', path: ['cases', i, 'name'], message: `duplicate case name "${c.name}"` });
      seen.add(c.name);
    });
  });

export type PolicyTestCase = z.output<typeof policyTestCaseSchema>;
export type PolicyTestFile = z.output<typeof policyTestFileSchema>;

/** One thing wrong with a test file, where it is: the case (index and name) and the field. */
export interface PolicyTestProblem {
  /** The field, as zod writes paths: `cases[2].expect.decision`. */
  path: string;
  message: string;
  /** The case's index in `cases` and its name, for a problem inside a case. */
  case?: number;
  caseName?: string;
  line?: number;
  column?: number;
}

/** A test file that cannot be run as written. The message names the file, each case and field. */
export class PolicyTestError extends WardenError {
  static override readonly marker = errorMarker('PolicyTestError');
  override name = 'PolicyTestError';
  constructor(
    message: string,
    readonly source: string,
    readonly problems: readonly PolicyTestProblem[] = [],
  ) {
    super(message);
  }
}

/** `file:line:col: cases[2] ("name"): expect.decision: message`. */
export function formatPolicyTestProblem(source: string, p: PolicyTestProblem): string {
  const where = p.line === undefined ? source : `${source}:${p.line}:${p.column ?? 1}`;
  const inCase = p.case === undefined ? '' : p.caseName ? ` (case "${p.caseName}")` : '';
  return `${where}: ${p.path}${inCase}: ${p.message}`;
}

function fail(source: string, problems: PolicyTestProblem[]): never {
  throw new PolicyTestError(`${source}: invalid policy test file\n  ${problems.map((p) => formatPolicyTestProblem(source, p)).join('\n  ')}`, source, problems);
}

/**
 * Parses a policy test file (YAML or JSON text) and validates it. Throws `PolicyTestError` naming
 * the file and, for each problem, the line, the case and the field.
 */
export function parsePolicyTestText(text: string, source: string): PolicyTestFile {
  const map = new PolicySourceMap(text);
  const [yamlError] = map.doc.errors;
  if (yamlError) {
    const start = yamlError.linePos?.[0];
    const first = yamlError.message.split('\n')[0] ?? '';
    fail(source, [{ path: '(top level)', message: `not valid YAML: ${first.replace(/ at line \d+, column \d+:?$/, '')}`, ...(start ? { line: start.line, column: start.col } : {}) }]);
  }
  const doc: unknown = map.doc.toJS();
  const result = policyTestFileSchema.safeParse(doc);
  if (result.success) return result.data;
  const cases = (doc as { cases?: unknown } | null)?.cases;
  const problems = result.error.issues.flatMap((issue): PolicyTestProblem[] => {
    const paths = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
    return paths.map((path) => {
      const message = issue.code === 'unrecognized_keys' ? `unknown field "${String(path[path.length - 1])}"` : issue.message;
      const problem: PolicyTestProblem = { path: formatPolicyPath(path), message };
      if (path[0] === 'cases' && typeof path[1] === 'number') {
        problem.case = path[1];
        const name = Array.isArray(cases) ? (cases[path[1]] as { name?: unknown } | undefined)?.name : undefined;
        if (typeof name === 'string' && name.length > 0) problem.caseName = name;
      }
      const position = map.positionOf(path, issue.code === 'unrecognized_keys' ? 'key' : 'value');
      if (position) Object.assign(problem, { line: position.line, column: position.column });
      return problem;
    });
  });
  return fail(source, problems);
}

/** What a case's call is judged on: the run facts and the governance state, derived as the workflow derives them. */
export function caseFacts(policyAgent: string, c: PolicyTestCase): { run: RunFacts; state: GovernState; elapsedMs: number } {
  const { elapsed, ...counts } = c.usage;
  const usage: BudgetUsage = { ...emptyUsage(), ...counts, toolCallsByTool: { ...counts.toolCallsByTool } };
  const state: GovernState = { usage, loop: emptyLoopState(), stoppedTools: [] };
  if (c.delegation?.delegatesUsed) state.delegated = c.delegation.delegatesUsed;
  // As the workflow's runFacts: the run's own step; tool calls, cost and tokens with its delegates'.
  const spent = spentOf(state);
  const run: RunFacts = {
    id: c.run.id ?? `warden/${policyAgent}/policy-test`,
    requester: c.run.requester,
    requesterVerified: c.run.requesterVerified,
    step: usage.steps,
    toolCalls: spent.toolCalls,
    costUsd: spent.costUsd,
    inputTokens: spent.inputTokens,
    outputTokens: spent.outputTokens,
    ...(c.run.tenant !== undefined ? { tenant: c.run.tenant } : {}),
  };
  return { run, state, elapsedMs: elapsed === undefined ? 0 : durationMs(elapsed) };
}

/** What the agent's tool makes of the case's arguments (its zod schema), or why it refuses them. */
export type PrepareArgs = (tool: string, args: Record<string, unknown>) => { args: Record<string, unknown> } | { refused: string };

export interface PolicyTestOptions {
  /** Where a path of the test file is, for problems found only once the policy is known (a quota it lacks). */
  locate?: (path: readonly (string | number)[]) => { line: number; column: number } | undefined;
  /**
   * The agent's tools, when known (the agents module): a tool not among them is unknown to the
   * agent, and each tool's risk is its own unless a case says otherwise. Absent, every tool a case
   * names is taken to exist, with risk `low` unless the case says otherwise.
   */
  tools?: ReadonlyMap<string, GovernedTool>;
  /** Runs the case's arguments through the tool's own schema, as the model activity does. */
  prepareArgs?: PrepareArgs;
}

export interface PolicyTestResult {
  name: string;
  index: number;
  tool: string;
  passed: boolean;
  expected: { decision: string; rule: string; reason?: string };
  got: Verdict;
  /** Why the case failed, in words. */
  failure?: string;
}

/** How a call the agent's schema refused is reported: no policy judged it. */
export const INVALID_ARGUMENTS_RULE = 'schema:invalid-arguments';

/** Decides one case with `governCall`, on the facts it gives. */
export function decideCase(policy: CompiledPolicy, c: PolicyTestCase, options: PolicyTestOptions = {}): Verdict {
  const agent = policy.policy.agent;
  const { run, state, elapsedMs } = caseFacts(agent, c);
  const known = options.tools ? options.tools.get(c.tool) : { name: c.tool, inputSchema: {}, risk: 'low' as const };
  const tool = known && c.risk ? { ...known, risk: c.risk } : known;
  const prepared = tool && options.prepareArgs ? options.prepareArgs(c.tool, c.args) : { args: c.args };
  const call = 'refused' in prepared ? { id: 'policy-test', name: c.tool, args: c.args, refused: prepared.refused } : { id: 'policy-test', name: c.tool, args: prepared.args };
  const ctx = { policy, agent, tool, run, elapsedMs, loopSeesRejected: true, ...(c.delegation?.ceiling ? { inherited: c.delegation.ceiling } : {}) };
  const result = governCall(state, call, ctx);
  const verdict = verdictOf(result);
  if (!verdict) return { decision: 'deny', ruleId: 'refused' in prepared ? INVALID_ARGUMENTS_RULE : 'refused', reason: result.plan.kind === 'refuse' ? result.plan.message : '' };
  return verdict.decision === 'deny' ? verdict : (quotaVerdict(policy, c, call.args, verdict) ?? verdict);
}

/**
 * What the policy's quotas make of a call its rules let run, as the workflow books it after the
 * policy (and any approval the rules asked for): a hard limit refuses it, a soft one asks people
 * first (a call the rules already send for approval keeps that rule's approval, asked first).
 * Each quota holds what the case says (`quotas`), nothing otherwise. The fleet file's quotas are
 * not the policy's and are not applied.
 */
function quotaVerdict(policy: CompiledPolicy, c: PolicyTestCase, args: Record<string, unknown>, ruled: Verdict): Verdict | null {
  const set = quotaSetFor(policy.policy.agent, policy.policy);
  for (const q of rulesForCall(set, c.tool).quotas) {
    const amount = callAmount(q, args);
    if ('error' in amount) return { decision: 'deny', ruleId: `quota:${q.name}`, reason: `denied by quota ${q.name}: ${amount.error}` };
    const used = c.quotas?.[q.id] ?? 0;
    const judged = judgeQuota(q.thresholds, used, amount.amount);
    if (judged.kind === 'allow') continue;
    const message = quotaMessage({ quota: q.name, action: judged.kind, above: judged.threshold.above, reason: judged.threshold.reason, used, amount: amount.amount });
    if (judged.kind === 'deny') return { decision: 'deny', ruleId: `quota:${q.name}`, reason: message };
    if (ruled.decision === 'allow') return { decision: 'require_approval', ruleId: `quota:${q.name}`, reason: message, ...(judged.threshold.approval ? { approvers: [...judged.threshold.approval.approvers] } : {}) };
  }
  return null;
}

/** Quotas a case names that the policy does not define: the case cannot mean what it says. */
function unknownQuotas(policy: CompiledPolicy, file: PolicyTestFile, options: PolicyTestOptions): PolicyTestProblem[] {
  const ids = new Set((policy.policy.quotas ?? []).map((q) => q.id));
  return file.cases.flatMap((c, i) =>
    Object.keys(c.quotas ?? {})
      .filter((id) => !ids.has(id))
      .map((id): PolicyTestProblem => {
        const at = options.locate?.(['cases', i, 'quotas', id]);
        const known = [...ids];
        return { path: formatPolicyPath(['cases', i, 'quotas', id]), message: `the policy has no quota "${id}" (${known.length > 0 ? `its quotas: ${known.join(', ')}` : 'it defines none'})`, case: i, caseName: c.name, ...(at ?? {}) };
      }),
  );
}

function judge(c: PolicyTestCase, got: Verdict): string | undefined {
  const e = c.expect;
  if (got.decision !== e.decision || got.ruleId !== e.rule) return `expected ${e.decision} (rule ${e.rule}), got ${got.decision} (rule ${got.ruleId}): ${got.reason}`;
  if (e.reason !== undefined && !got.reason.includes(e.reason)) return `expected a reason containing "${e.reason}", got "${got.reason}"`;
  return undefined;
}

export interface PolicyTestRun {
  agent: string;
  policyVersion: string;
  results: PolicyTestResult[];
  passed: number;
  failed: number;
  /** Rules of the policy no case was decided by. */
  uncoveredRules: string[];
  /** The policy's quotas (by id) that stopped no case or sent none for approval. */
  uncoveredQuotas: string[];
}

/**
 * Runs every case of a test file against a policy. Pure: reading the files is the caller's.
 * Throws `PolicyTestError` when a case names a quota the policy does not define.
 */
export function runPolicyTests(policy: CompiledPolicy, file: PolicyTestFile, options: PolicyTestOptions = {}, source = 'policy tests'): PolicyTestRun {
  const unknown = unknownQuotas(policy, file, options);
  if (unknown.length > 0) fail(source, unknown);
  const results = file.cases.map((c, index): PolicyTestResult => {
    const got = decideCase(policy, c, options);
    const failure = judge(c, got);
    const expected = { decision: c.expect.decision, rule: c.expect.rule, ...(c.expect.reason === undefined ? {} : { reason: c.expect.reason }) };
    return { name: c.name, index, tool: c.tool, passed: failure === undefined, expected, got, ...(failure === undefined ? {} : { failure }) };
  });
  const reached = new Set(results.map((r) => r.got.ruleId));
  const failed = results.filter((r) => !r.passed).length;
  return {
    agent: policy.policy.agent,
    policyVersion: policy.version,
    results,
    passed: results.length - failed,
    failed,
    uncoveredRules: policy.policy.rules.map((r) => r.id).filter((id) => !reached.has(id)),
    uncoveredQuotas: (policy.policy.quotas ?? []).map((q) => q.id).filter((id) => !reached.has(`quota:${policy.policy.agent}/${id}`)),
  };
}
