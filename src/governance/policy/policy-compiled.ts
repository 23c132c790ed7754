import { isCelError, parse, plan, celEnv, type CelInput } from '@bufbuild/cel';
import { digestOf } from '../signing/digest';
import type { ApprovalRequirement, Policy, Rule, ToolPolicy } from './policy-schema';
import { toolEntryFor, toolMatches } from './policy-tools';

// What deciding needs and nothing more: the workflow imports this module, and every module it
// imports is evaluated again for each run a worker starts or replays (no zod, no YAML here).

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
  /** The tenant the run works for, when a signed start named one (or the worker's default); '' for none. */
  tenant?: string;
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

  /** Whether the policy lists this tool at all, by name or prefix (and the agent has it, when `knownTools` was given). */
  allowsTool(tool: string): boolean {
    return this.toolPolicy(tool) !== undefined && (this.knownTools?.has(tool) ?? true);
  }

  /** The settings of a tool: its own entry under `tools`, else the longest prefix entry that matches it. */
  toolPolicy(tool: string): ToolPolicy | undefined {
    return toolEntryFor(this.policy.tools, tool)?.value;
  }

  /**
   * Decides one call. First matching rule wins; an unknown tool or no match is a denial; a
   * condition that errors (a missing field, a type mismatch) denies too: policy fails closed.
   * A tool with `requireVerifiedRequester` is denied before any rule when the requester is unverified.
   */
  decide(call: CallFacts, agent: string, run: RunFacts): Decision {
    const base = { policyVersion: this.version };
    if (!this.allowsTool(call.tool)) {
      const reason = this.toolPolicy(call.tool) !== undefined
        ? `tool "${call.tool}" is listed by the policy but agent ${agent} does not have it`
        : `tool "${call.tool}" is not allowed for agent ${agent}`;
      return { ...base, decision: 'deny', ruleId: 'default:unknown-tool', reason };
    }
    if (this.toolPolicy(call.tool)?.requireVerifiedRequester && !run.requesterVerified) {
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
      run: { tenant: '', ...run },
      tool: { name: call.tool, risk: call.risk ?? 'low' },
    } as unknown as Record<string, CelInput>;
    for (const { rule, condition } of this.rules) {
      if (rule.tools && !rule.tools.some((entry) => toolMatches(entry, call.tool))) continue;
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
