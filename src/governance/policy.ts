import { isCelError, parse, plan, celEnv, type CelInput } from '@bufbuild/cel';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { digestOf } from './digest';
import { policySchema, type ApprovalRequirement, type Policy, type Rule } from './policy-schema';

/** A policy that failed validation. The message names the source and the path inside it. */
export class PolicyError extends Error {
  override name = 'PolicyError';
  constructor(
    message: string,
    readonly source: string,
    readonly issues: readonly string[] = [],
  ) {
    super(message);
  }
}

export type DecisionKind = 'allow' | 'deny' | 'require_approval';

/** What the policy said about one call. Recorded with every call, with the policy version. */
export interface Decision {
  decision: DecisionKind;
  /** The rule that matched, or `default:unknown-tool` / `default:no-match` / `default:tool-stopped`. */
  ruleId: string;
  reason: string;
  policyVersion: string;
  approval?: ApprovalRequirement;
}

/** Facts about the run that conditions may read as `run.*`. */
export interface RunFacts {
  id: string;
  requester: string;
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

function formatPath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
}

function issuesOf(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
}

/**
 * Validates a policy document (already parsed from YAML or JSON) and checks that every CEL
 * condition parses. Throws `PolicyError` naming `source` and each bad path.
 * Use it wherever a policy enters the system: at load, on `policy apply`, on `applyPolicy`.
 */
export function parsePolicy(doc: unknown, source: string): Policy {
  const result = policySchema.safeParse(doc);
  if (!result.success) {
    const issues = issuesOf(result.error);
    throw new PolicyError(`${source}: invalid policy\n  ${issues.join('\n  ')}`, source, issues);
  }
  const issues: string[] = [];
  result.data.rules.forEach((rule, i) => {
    if (rule.when === undefined) return;
    try {
      parse(rule.when);
    } catch (err) {
      issues.push(`rules[${i}].when: CEL syntax error in "${rule.when}": ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  if (issues.length > 0) throw new PolicyError(`${source}: invalid policy\n  ${issues.join('\n  ')}`, source, issues);
  return result.data;
}

/** Parses policy YAML (or JSON) text, then validates it like `parsePolicy`. */
export function parsePolicyText(text: string, source: string): Policy {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    const detail = err instanceof YAMLParseError ? err.message : String(err);
    throw new PolicyError(`${source}: not valid YAML: ${detail}`, source, [detail]);
  }
  return parsePolicy(doc, source);
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

/**
 * A policy ready to decide. Pure and deterministic: the workflow, `warden policy check` and the
 * tests all decide through this class, so a decision means the same everywhere.
 */
export class CompiledPolicy {
  readonly version: string;
  private readonly rules: CompiledRule[];

  constructor(readonly policy: Policy) {
    this.version = policyVersion(policy);
    const env = celEnv();
    this.rules = policy.rules.map((rule) => ({
      rule,
      condition: rule.when === undefined ? null : (plan(env, parse(rule.when)) as Condition),
    }));
  }

  /** Whether the policy lists this tool at all. */
  allowsTool(tool: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.policy.tools, tool);
  }

  /**
   * Decides one call. First matching rule wins; an unknown tool or no match is a denial; a
   * condition that errors (a missing field, a type mismatch) denies too: policy fails closed.
   */
  decide(call: CallFacts, agent: string, run: RunFacts): Decision {
    const base = { policyVersion: this.version };
    if (!this.allowsTool(call.tool)) {
      return { ...base, decision: 'deny', ruleId: 'default:unknown-tool', reason: `tool "${call.tool}" is not allowed for agent ${agent}` };
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
