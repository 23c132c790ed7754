import type { AuditEventType } from '../signing/audit-chain';
import type { BudgetExceeded, BudgetUsage } from '../accounting/budget';
import { chargeDelegate, checkToolCallBudgets, type DelegateUsage } from '../accounting/delegation-budgets';
import { digestOf } from '../signing/digest';
import { observeCall, type LoopState } from '../accounting/loop-detector';
import type { CompiledPolicy, Decision, RunFacts } from '../policy/parse-policy';
import type { ApprovalRequirement, Budgets } from '../policy/policy-schema';
import { argsSchemaOf, redactBySchema } from './redaction';

/** The governance part of a run's state: what budgets and the loop breaker remember. Plain JSON. */
export interface GovernState {
  /** What the run itself used (its own model calls and tool calls). */
  usage: BudgetUsage;
  loop: LoopState;
  /** Tools the loop breaker stopped for the rest of the run. */
  stoppedTools: string[];
  /** What the runs it delegated to used: charged to its budgets too (`spentOf`). */
  delegated?: DelegateUsage;
}

/** What counts against a run's budgets: its own usage and its delegates'. */
export function spentOf(state: GovernState): BudgetUsage {
  return state.delegated ? chargeDelegate(state.usage, state.delegated) : state.usage;
}

/**
 * A call as the model activity hands it over: `args` are what the tool's own zod schema made of
 * the model's arguments (the very value the policy judges and the tool receives), or `refused`
 * says why there are none (schema issues, over the size limit).
 */
export interface CallProposal {
  id: string;
  name: string;
  args: Record<string, unknown>;
  refused?: string;
  /** The worker's seal over the call as its model activity parsed it (run, call id, tool, arguments): what the tool activity checks. */
  seal?: string;
}

/** What governance needs to know of a tool: its name, JSON Schemas (for redaction: `argsSchemaOf`) and risk. */
export interface GovernedTool {
  name: string;
  inputSchema: Record<string, unknown>;
  argsSchema?: Record<string, unknown>;
  risk: 'low' | 'medium' | 'high';
}

export interface GovernContext {
  policy: CompiledPolicy;
  agent: string;
  /** The agent's tool of this name; undefined when the agent has none (denied, whatever the policy lists). */
  tool: GovernedTool | undefined;
  run: RunFacts;
  elapsedMs: number;
  /** Why the run is ending, when an earlier call of this turn ended it: every later call is refused. */
  ending?: string;
  /** For a delegate: the ceiling its delegating run gave it, enforced besides the policy's budgets. */
  inherited?: Budgets;
  /**
   * The loop breaker counts calls refused for their arguments too: a model repeating one invalid
   * call is a loop like any other. Runs recorded before this (their replay must decide alike) leave it off.
   */
  loopSeesRejected?: boolean;
}

export type CallPlan =
  /** Nothing runs; the model is told `message`. */
  | { kind: 'refuse'; message: string }
  /** The tool runs now (the call is counted). */
  | { kind: 'run' }
  /** People must decide first; the call is counted once approved (`admitApproved`). */
  | { kind: 'approve'; requirement: ApprovalRequirement };

export interface GovernEvent {
  type: AuditEventType;
  data: Record<string, unknown>;
}

export interface GovernResult {
  plan: CallPlan;
  state: GovernState;
  /** The audit events of this step, in order. */
  events: GovernEvent[];
  /** The policy's decision, when it got that far. */
  decision?: Decision;
  /** Set when this call ends the run (a budget, the loop breaker's fail_run). */
  end?: { status: 'budget_exhausted'; reason: string; budget?: BudgetExceeded };
  /** Set when the loop breaker pauses the run for a person. */
  pause?: string;
}

/** The message the model gets for a denial. */
export function denialMessage(decision: Decision): string {
  return `denied by policy (rule ${decision.ruleId}), nothing ran: ${decision.reason}`;
}

function counted(state: GovernState, tool: string): GovernState {
  const usage = { ...state.usage, toolCalls: state.usage.toolCalls + 1, toolCallsByTool: { ...state.usage.toolCallsByTool, [tool]: (state.usage.toolCallsByTool[tool] ?? 0) + 1 } };
  return { ...state, usage };
}

function decisionEvent(call: CallProposal, decision: Decision): GovernEvent {
  const { approval: _approval, ...recorded } = decision;
  return { type: 'policy_decision', data: { callId: call.id, tool: call.name, ...recorded } };
}

/**
 * The loop breaker's view of a call (when the policy has one): the state with the call observed,
 * and, when the call trips it, the refusal that ends the run or stops the tool (`result`) or the
 * pause it asks for. Its event is added to `events`.
 */
function observeLoop(state: GovernState, call: CallProposal, ctx: GovernContext, events: GovernEvent[]): { next: GovernState; result?: GovernResult; pause?: string } | null {
  const settings = ctx.policy.policy.loop;
  if (!settings) return null;
  const seen = observeCall(state.loop, settings, call.name, digestOf(call.args));
  const next = { ...state, loop: seen.state };
  if (!seen.tripped) return { next };
  const message = `loop detected: ${call.name} called with the same arguments ${seen.repeats} times in the last ${settings.window} calls`;
  events.push({ type: 'loop_detected', data: { callId: call.id, tool: call.name, repeats: seen.repeats, window: settings.window, action: settings.action } });
  if (settings.action === 'fail_run') return { next, result: { plan: { kind: 'refuse', message: `not run: ${message}` }, state: next, events, end: { status: 'budget_exhausted', reason: message } } };
  if (settings.action === 'stop_tool') {
    return { next, result: { plan: { kind: 'refuse', message: `not run: ${message}; the tool is stopped for the rest of this run` }, state: { ...next, stoppedTools: [...next.stoppedTools, call.name] }, events } };
  }
  return { next, pause: message };
}

/**
 * Steps 1–3 of one proposed call, as a pure function: size and schema (already applied by the
 * model activity, reported in `refused`), tool known to the agent, loop breaker's stopped tools,
 * budgets, loop detection, then the policy. Returns the plan, the new state and the audit events,
 * so the workflow, `warden policy check` and unit tests decide exactly alike.
 */
export function governCall(state: GovernState, call: CallProposal, ctx: GovernContext): GovernResult {
  const events: GovernEvent[] = [{ type: 'call_proposed', data: { callId: call.id, tool: call.name, args: redactBySchema(call.args, argsSchemaOf(ctx.tool)) } }];
  const refuse = (message: string, extra: Partial<GovernResult> = {}): GovernResult => ({ plan: { kind: 'refuse', message }, state, events, ...extra });
  const version = ctx.policy.version;

  if (ctx.ending) return refuse(`not run: ${ctx.ending}`);
  if (!ctx.tool) {
    const decision: Decision = { decision: 'deny', ruleId: 'default:unknown-tool', reason: `agent ${ctx.agent} has no tool "${call.name}"`, policyVersion: version };
    events.push(decisionEvent(call, decision));
    return refuse(denialMessage(decision), { decision });
  }
  if (call.refused !== undefined) {
    events.push({ type: 'schema_rejected', data: { callId: call.id, tool: call.name, issues: [call.refused] } });
    const invalid = `invalid arguments for ${call.name}, nothing ran: ${call.refused}`;
    const loop = ctx.loopSeesRejected ? observeLoop(state, call, ctx, events) : null;
    if (!loop) return refuse(invalid);
    if (loop.result) return { ...loop.result, plan: { kind: 'refuse', message: `${invalid}; ${loop.result.plan.kind === 'refuse' ? loop.result.plan.message : ''}` } };
    return { plan: { kind: 'refuse', message: invalid }, state: loop.next, events, ...(loop.pause !== undefined ? { pause: loop.pause } : {}) };
  }
  if (state.stoppedTools.includes(call.name)) {
    const decision: Decision = { decision: 'deny', ruleId: 'default:tool-stopped', reason: `tool ${call.name} was stopped by the loop breaker`, policyVersion: version };
    events.push(decisionEvent(call, decision));
    return refuse(denialMessage(decision), { decision });
  }
  const budgets = ctx.policy.policy.budgets;
  const exceeded = checkToolCallBudgets(budgets, ctx.policy.toolPolicy(call.name)?.maxCalls, ctx.inherited, spentOf(state), call.name, ctx.elapsedMs);
  if (exceeded) {
    events.push({ type: 'budget_exhausted', data: { callId: call.id, ...exceeded } });
    return refuse(`not run: ${exceeded.message}`, { end: { status: 'budget_exhausted', reason: exceeded.message, budget: exceeded } });
  }

  const loop = observeLoop(state, call, ctx, events);
  if (loop?.result) return loop.result;
  const next = loop?.next ?? state;
  const pause = loop?.pause;

  const decision = ctx.policy.decide({ tool: call.name, args: call.args, risk: ctx.tool.risk }, ctx.agent, ctx.run);
  events.push(decisionEvent(call, decision));
  const extra = pause === undefined ? {} : { pause };
  if (decision.decision === 'deny') return { plan: { kind: 'refuse', message: denialMessage(decision) }, state: next, events, decision, ...extra };
  if (decision.decision === 'allow') return { plan: { kind: 'run' }, state: counted(next, call.name), events, decision, ...extra };
  if (!decision.approval) {
    // The schema requires an approval block with require_approval; a policy object built around it fails closed.
    const denied: Decision = { ...decision, decision: 'deny', reason: `rule ${decision.ruleId} requires approval but names no approvers` };
    return { plan: { kind: 'refuse', message: denialMessage(denied) }, state: next, events, decision: denied, ...extra };
  }
  return { plan: { kind: 'approve', requirement: decision.approval }, state: next, events, decision, ...extra };
}

/**
 * An approved call, just before it runs: budgets are checked again (other calls may have used
 * them while people decided) and the call is counted.
 */
export function admitApproved(
  state: GovernState,
  call: CallProposal,
  policy: CompiledPolicy,
  elapsedMs: number,
  inherited?: Budgets,
): { ok: true; state: GovernState } | { ok: false; exceeded: BudgetExceeded; event: GovernEvent } {
  const exceeded = checkToolCallBudgets(policy.policy.budgets, policy.toolPolicy(call.name)?.maxCalls, inherited, spentOf(state), call.name, elapsedMs);
  if (exceeded) return { ok: false, exceeded, event: { type: 'budget_exhausted', data: { callId: call.id, ...exceeded } } };
  return { ok: true, state: counted(state, call.name) };
}
