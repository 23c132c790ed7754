import { isCelError, parse, plan, celEnv, type CelInput } from '@bufbuild/cel';
import type { z } from 'zod';
import { digestOf } from './digest';
import { PolicySourceMap } from './policy-location';
import { formatPolicyPath, formatPolicyProblem, type PolicyProblem } from './policy-problem';
import { MOVED_TO_WORKER, policySchema, type ApprovalRequirement, type Policy, type Rule } from './policy-schema';

/**
 * A policy that failed validation. The message names the source; `issues` are the problems
 * printed one per line (`file:line:col: path: message`), `problems` the same as data.
 */
export class PolicyError extends Error {
  override name = 'PolicyError';
  constructor(
    message: string,
    readonly source: string,
    readonly issues: readonly string[] = [],
    readonly problems: readonly PolicyProblem[] = [],
  ) {
    super(message);
  }
}

/** Throws the `PolicyError` for a list of problems found in `source`. */
export function throwPolicyProblems(source: string, problems: readonly PolicyProblem[]): never {
  const issues = problems.map((p) => formatPolicyProblem(source, p));
  throw new PolicyError(`${source}: invalid policy\n  ${issues.join('\n  ')}`, source, issues, problems);
}

export type DecisionKind = 'allow' | 'deny' | 'require_approval';

/** What the policy said about one call. Recorded with every call, with the policy version. */
export interface Decision {
  decision: DecisionKind;
  /** The rule that matched, or `default:unknown-tool` / `default:unverified-requester` / `default:no-match` / `default:tool-stopped`. */
  ruleId: string;
  reason: string;
  policyVersion: string;
  approval?: ApprovalRequirement;
}

/** Facts about the run that conditions may read as `run.*`. */
export interface RunFacts {
  id: string;
  requester: string;
  /** Whether a trusted channel signed the run's start for `requester`; otherwise anyone could have typed the name. */
  requesterVerified: boolean;
  step: number;
  toolCalls: number;
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
}

export interface CallFacts {
  tool: string;
  args: Record<string, unknown>;
  risk?: string;
}

export interface ParsePolicyOptions {
  /**
   * Drop `allowUnsignedDecisions` and `trustedKeys` instead of refusing them. Only for policies
   * recorded before those moved to the worker (run inputs and snapshots of runs in flight, stored
   * applied policies): they carry the old defaults, and the worker's settings now decide.
   */
  dropMovedFields?: boolean;
}

type Locate = PolicySourceMap | undefined;

function problemsOf(error: z.ZodError, map: Locate): PolicyProblem[] {
  return error.issues.flatMap((issue): PolicyProblem[] => {
    const path = issue.path;
    // One issue names every unknown key of an object; each key is its own mistake, at its own line.
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => {
        const keyPath = [...path, key];
        return { path: formatPolicyPath(keyPath), message: `unknown field "${key}"`, ...where(map, keyPath, 'key') };
      });
    }
    // A field that is not allowed at all is pointed at by its key, not its value.
    const at = issue.code === 'invalid_type' && issue.expected === 'never' ? 'key' : 'value';
    const rule = path[0] === 'rules' && typeof path[1] === 'number' ? { rule: path[1] } : {};
    return [{ path: formatPolicyPath(path), message: issue.message, ...rule, ...where(map, path, at) }];
  });
}

function where(map: Locate, path: readonly PropertyKey[], at: 'key' | 'value'): { line?: number; column?: number } {
  const position = map?.positionOf(path, at);
  return position ? { line: position.line, column: position.column } : {};
}

function validate(doc: unknown, source: string, map: Locate, options: ParsePolicyOptions): Policy {
  if (options.dropMovedFields && typeof doc === 'object' && doc !== null && !Array.isArray(doc)) {
    const copy: Record<string, unknown> = { ...(doc as Record<string, unknown>) };
    for (const field of MOVED_TO_WORKER) delete copy[field];
    doc = copy;
  }
  const result = policySchema.safeParse(doc);
  if (!result.success) throwPolicyProblems(source, problemsOf(result.error, map));
  const problems: PolicyProblem[] = [];
  result.data.rules.forEach((rule, i) => {
    if (rule.when === undefined) return;
    try {
      parse(rule.when);
    } catch (err) {
      const path = ['rules', i, 'when'];
      const offset = (err as { location?: { start?: { offset?: number } } }).location?.start?.offset ?? 0;
      const detail = (err as { rawMessage?: string }).rawMessage ?? (err instanceof Error ? err.message : String(err));
      const position = map?.positionInString(path, offset);
      problems.push({ path: formatPolicyPath(path), rule: i, message: `CEL syntax error in "${rule.when}": ${detail}`, ...(position ? { line: position.line, column: position.column } : {}) });
    }
  });
  if (problems.length > 0) throwPolicyProblems(source, problems);
  return result.data;
}

/**
 * Validates a policy document (already parsed from YAML or JSON) and checks that every CEL
 * condition parses. Throws `PolicyError` naming `source` and each bad path.
 * Use it wherever a policy enters the system: at load, on `policy apply`, on `applyPolicy`.
 * It does not check conditions against tools' schemas: `checkPolicy` does, where the tools are known.
 */
export function parsePolicy(doc: unknown, source: string, options: ParsePolicyOptions = {}): Policy {
  return validate(doc, source, undefined, options);
}

/**
 * Parses policy YAML (or JSON) text, then validates it like `parsePolicy`; every problem carries
 * the line and column of the node it is about.
 */
export function parsePolicyText(text: string, source: string, options: ParsePolicyOptions = {}): Policy {
  const map = new PolicySourceMap(text);
  const [yamlError] = map.doc.errors;
  if (yamlError) {
    const start = yamlError.linePos?.[0];
    const where = start ? `${source}:${start.line}:${start.col}` : source;
    // The library's own message ends its first line with "at line L, column C:" before a code frame; the prefix says that already.
    const [first = '', ...frame] = yamlError.message.split('\n');
    const detail = start ? first.replace(/ at line \d+, column \d+:?$/, '') : first;
    throw new PolicyError([`${where}: not valid YAML: ${detail}`, ...frame].join('\n'), source, [`${where}: ${detail}`]);
  }
  return validate(map.doc.toJS(), source, map, options);
}

/** The version of a policy: a digest of its canonical content, recorded with every decision. */
export function policyVersion(policy: Policy): string {
  return 'pv_' + digestOf(policy).slice(0, 16);
}

type Condition = (bindings: Record<string, CelInput>) => unknown;

interface CompiledRule {
  rule: Rule;
  condition: Condition | null;
}

export interface CompiledPolicyOptions {
  /**
   * The tools the agent really has. A tool the policy lists but the agent lacks is then denied
   * as unknown, like a tool the policy does not list: a policy written for another version of
   * the agent must not make the runtime look for a tool that is not there. Absent, only the
   * policy's list counts (`warden policy check` without `--agents`).
   */
  knownTools?: ReadonlySet<string>;
}

/**
 * A policy ready to decide. Pure and deterministic: the workflow, `warden policy check` and the
 * tests all decide through this class, so a decision means the same everywhere.
 */
export class CompiledPolicy {
  readonly version: string;
  private readonly rules: CompiledRule[];
  private readonly knownTools: ReadonlySet<string> | undefined;

  constructor(
    readonly policy: Policy,
    options: CompiledPolicyOptions = {},
  ) {
    this.version = policyVersion(policy);
    this.knownTools = options.knownTools;
    const env = celEnv();
    this.rules = policy.rules.map((rule) => ({
      rule,
      condition: rule.when === undefined ? null : (plan(env, parse(rule.when)) as Condition),
    }));
  }

  /** Whether the policy lists this tool at all (and the agent has it, when `knownTools` was given). */
  allowsTool(tool: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.policy.tools, tool) && (this.knownTools?.has(tool) ?? true);
  }

  /**
   * Decides one call. First matching rule wins; an unknown tool or no match is a denial; a
   * condition that errors (a missing field, a type mismatch) denies too: policy fails closed.
   * A tool with `requireVerifiedRequester` is denied before any rule when the requester is unverified.
   */
  decide(call: CallFacts, agent: string, run: RunFacts): Decision {
    const base = { policyVersion: this.version };
    if (!this.allowsTool(call.tool)) {
      const reason = Object.prototype.hasOwnProperty.call(this.policy.tools, call.tool)
        ? `tool "${call.tool}" is listed by the policy but agent ${agent} does not have it`
        : `tool "${call.tool}" is not allowed for agent ${agent}`;
      return { ...base, decision: 'deny', ruleId: 'default:unknown-tool', reason };
    }
    if (this.policy.tools[call.tool]?.requireVerifiedRequester && !run.requesterVerified) {
      return {
        ...base,
        decision: 'deny',
        ruleId: 'default:unverified-requester',
        reason: `tool "${call.tool}" requires a verified requester, and ${run.requester} was not verified by a signed start`,
      };
    }
    const bindings = {
      args: call.args,
      agent,
      run: { ...run },
      tool: { name: call.tool, risk: call.risk ?? 'low' },
    } as unknown as Record<string, CelInput>;
    for (const { rule, condition } of this.rules) {
      if (rule.tools && !rule.tools.includes(call.tool)) continue;
      if (condition) {
        let value: unknown;
        try {
          value = condition(bindings);
        } catch (err) {
          value = err;
        }
        if (isCelError(value) || value instanceof Error) {
          const message = value instanceof Error ? value.message : String(value);
          return { ...base, decision: 'deny', ruleId: rule.id, reason: `condition of rule ${rule.id} failed to evaluate (${message}); denied` };
        }
        if (value !== true) continue;
      }
      const decision: Decision = { ...base, decision: rule.decision, ruleId: rule.id, reason: rule.reason ?? `rule ${rule.id}` };
      if (rule.approval) decision.approval = rule.approval;
      return decision;
    }
    return { ...base, decision: 'deny', ruleId: 'default:no-match', reason: `no rule allows ${call.tool} with these arguments` };
  }
}
