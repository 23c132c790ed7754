/**
 * Budgets across delegation, as pure functions. A delegate runs under its own policy and inside
 * what its delegating run has left: the parent hands the child a ceiling (`Budgets` measured from
 * the child's own start), the child enforces both, and the parent is charged what the child used.
 */
import { checkBeforeModelCall, checkBeforeToolCall, type BudgetExceeded, type BudgetUsage } from './budget';
import { durationMs } from '../policy/duration';
import type { Budgets } from '../policy/policy-schema';
import type { AuditEvent } from '../signing/audit-chain';

type CountLimit = 'maxSteps' | 'maxToolCalls' | 'maxInputTokens' | 'maxOutputTokens';

const COUNTS: readonly [CountLimit, keyof BudgetUsage][] = [
  ['maxSteps', 'steps'],
  ['maxToolCalls', 'toolCalls'],
  ['maxInputTokens', 'inputTokens'],
  ['maxOutputTokens', 'outputTokens'],
];

/** What a delegate used, as its outcome reports it: charged to its delegating run. */
export interface DelegateUsage {
  steps: number;
  toolCalls: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

function tighter(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

/**
 * What a run has left of its budgets: its policy's, and (for a delegate) the ceiling its parent
 * gave it, whichever is tighter, less what it used. Wall time is left as milliseconds (`…ms`).
 */
export function budgetsLeft(own: Budgets, inherited: Budgets | undefined, usage: BudgetUsage, elapsedMs: number): Budgets {
  const left: Budgets = {};
  for (const [limit, used] of COUNTS) {
    const max = tighter(own[limit], inherited?.[limit]);
    if (max !== undefined) left[limit] = Math.max(0, max - (usage[used] as number));
  }
  const cost = tighter(own.maxCostUsd, inherited?.maxCostUsd);
  if (cost !== undefined) left.maxCostUsd = Math.max(0, cost - usage.costUsd);
  const wall = tighter(own.maxWallTime === undefined ? undefined : durationMs(own.maxWallTime), inherited?.maxWallTime === undefined ? undefined : durationMs(inherited.maxWallTime));
  if (wall !== undefined) left.maxWallTime = `${Math.max(0, wall - elapsedMs)}ms`;
  return left;
}

/**
 * The ceiling for a delegate about to start: what the run has left, less what delegates still
 * running hold, split evenly with the `share - 1` other delegations of the same turn that have not
 * started yet (so side-by-side delegates cannot together spend more than the run has). Wall time
 * is not split: it passes for all of them at once.
 */
export function delegationCeiling(left: Budgets, held: readonly Budgets[], share = 1): Budgets {
  const parts = Math.max(1, Math.floor(share));
  const ceiling: Budgets = {};
  for (const [limit] of COUNTS) {
    const max = left[limit];
    if (max === undefined) continue;
    const free = max - held.reduce((sum, h) => sum + (h[limit] ?? 0), 0);
    ceiling[limit] = Math.max(0, Math.floor(free / parts));
  }
  if (left.maxCostUsd !== undefined) ceiling.maxCostUsd = Math.max(0, (left.maxCostUsd - held.reduce((sum, h) => sum + (h.maxCostUsd ?? 0), 0)) / parts);
  if (left.maxWallTime !== undefined) ceiling.maxWallTime = left.maxWallTime;
  return ceiling;
}

/** Why a delegate cannot start at all: a ceiling with nothing left of a limit it needs (no step, no tool call, no time, no money). */
export function emptyCeiling(ceiling: Budgets): string | null {
  if (ceiling.maxSteps !== undefined && ceiling.maxSteps < 1) return 'no model call is left of the budget';
  if (ceiling.maxInputTokens !== undefined && ceiling.maxInputTokens < 1) return 'no input token is left of the budget';
  if (ceiling.maxOutputTokens !== undefined && ceiling.maxOutputTokens < 1) return 'no output token is left of the budget';
  if (ceiling.maxCostUsd !== undefined && ceiling.maxCostUsd <= 0) return 'no money is left of the cost budget';
  if (ceiling.maxWallTime !== undefined && durationMs(ceiling.maxWallTime) <= 0) return 'no time is left of the wall time budget';
  return null;
}

/** What delegates used so far, with one more delegate's use added. */
export function addDelegateUsage(sum: DelegateUsage | undefined, child: DelegateUsage): DelegateUsage {
  return {
    steps: (sum?.steps ?? 0) + child.steps,
    toolCalls: (sum?.toolCalls ?? 0) + child.toolCalls,
    inputTokens: (sum?.inputTokens ?? 0) + child.inputTokens,
    outputTokens: (sum?.outputTokens ?? 0) + child.outputTokens,
    costUsd: (sum?.costUsd ?? 0) + child.costUsd,
  };
}

/** The delegating run's usage once a delegate's is added (totals only: per-tool counts stay each run's own). */
export function chargeDelegate(usage: BudgetUsage, child: DelegateUsage): BudgetUsage {
  return {
    ...usage,
    steps: usage.steps + child.steps,
    toolCalls: usage.toolCalls + child.toolCalls,
    inputTokens: usage.inputTokens + child.inputTokens,
    outputTokens: usage.outputTokens + child.outputTokens,
    costUsd: usage.costUsd + child.costUsd,
  };
}

function fromParent(exceeded: BudgetExceeded | null): BudgetExceeded | null {
  return exceeded && { ...exceeded, inherited: true, message: `the delegating run's budget: ${exceeded.message}` };
}

/** `checkBeforeModelCall` against the policy's budgets, then the ceiling the delegating run gave (marked `inherited`). */
export function checkModelCallBudgets(own: Budgets, inherited: Budgets | undefined, usage: BudgetUsage, elapsedMs: number): BudgetExceeded | null {
  return checkBeforeModelCall(own, usage, elapsedMs) ?? (inherited ? fromParent(checkBeforeModelCall(inherited, usage, elapsedMs)) : null);
}

/** `checkBeforeToolCall` against the policy's budgets, then the ceiling the delegating run gave (marked `inherited`). */
export function checkToolCallBudgets(own: Budgets, maxCallsOfTool: number | undefined, inherited: Budgets | undefined, usage: BudgetUsage, tool: string, elapsedMs: number): BudgetExceeded | null {
  return checkBeforeToolCall(own, maxCallsOfTool, usage, tool, elapsedMs) ?? (inherited ? fromParent(checkBeforeToolCall(inherited, undefined, usage, tool, elapsedMs)) : null);
}

const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0);

/**
 * What a delegate used, as its audit trail tells: the totals of its `run_finished` event (a
 * cancelled run writes one too, though its workflow returns no outcome), or, for a run that ended
 * without one (terminated), its model turns and started tool calls added up.
 */
export function delegateUsageOf(trail: readonly Pick<AuditEvent, 'type' | 'data'>[]): DelegateUsage {
  const finished = trail.find((e) => e.type === 'run_finished');
  if (finished) {
    const usage = (finished.data.usage ?? {}) as Record<string, unknown>;
    return { steps: num(finished.data.steps), toolCalls: num(finished.data.toolCalls), inputTokens: num(usage.inputTokens), outputTokens: num(usage.outputTokens), costUsd: num(usage.costUsd) };
  }
  const used: DelegateUsage = { steps: 0, toolCalls: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };
  for (const e of trail) {
    if (e.type === 'model_turn') {
      used.steps += 1;
      used.inputTokens += num(e.data.inputTokens);
      used.outputTokens += num(e.data.outputTokens);
      used.costUsd += num(e.data.costUsd);
    } else if (e.type === 'tool_started') {
      used.toolCalls += 1;
    }
  }
  return used;
}
