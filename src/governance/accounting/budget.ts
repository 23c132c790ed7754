import { durationMs } from '../policy/duration';
import type { Budgets, Price } from '../policy/policy-schema';

/** What a run has used so far. Plain JSON: it rides through continue-as-new. */
export interface BudgetUsage {
  steps: number;
  toolCalls: number;
  toolCallsByTool: Record<string, number>;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

export const emptyUsage = (): BudgetUsage => ({ steps: 0, toolCalls: 0, toolCallsByTool: {}, inputTokens: 0, outputTokens: 0, costUsd: 0 });

export type BudgetLimit = 'maxSteps' | 'maxToolCalls' | 'maxCallsPerTool' | 'maxInputTokens' | 'maxOutputTokens' | 'maxCostUsd' | 'maxWallTime';

/** A limit that was reached, with the figures. */
export interface BudgetExceeded {
  limit: BudgetLimit;
  used: number;
  max: number;
  tool?: string;
  message: string;
  /** The limit was the delegating run's (the ceiling it gave this delegate), not this run's own policy's. */
  inherited?: true;
}

function exceeded(limit: BudgetLimit, used: number, max: number, what: string, tool?: string): BudgetExceeded {
  const fmt = (n: number) => (limit === 'maxCostUsd' ? `$${n.toFixed(4)}` : limit === 'maxWallTime' ? `${Math.round(n / 1000)}s` : String(n));
  const out: BudgetExceeded = { limit, used, max, message: `${what}: used ${fmt(used)} of ${fmt(max)}` };
  if (tool !== undefined) out.tool = tool;
  return out;
}

/** Elapsed time check shared by both gates. */
function wallTime(budgets: Budgets, elapsedMs: number): BudgetExceeded | null {
  if (budgets.maxWallTime === undefined) return null;
  const max = durationMs(budgets.maxWallTime);
  return elapsedMs >= max ? exceeded('maxWallTime', elapsedMs, max, 'wall time budget exhausted') : null;
}

/**
 * Checks the limits that stop a run before its next model call: steps, tokens, cost, wall time.
 * Token and cost limits are reached once usage meets them (a model call cannot be half made).
 */
export function checkBeforeModelCall(budgets: Budgets, usage: BudgetUsage, elapsedMs: number): BudgetExceeded | null {
  if (budgets.maxSteps !== undefined && usage.steps >= budgets.maxSteps) return exceeded('maxSteps', usage.steps, budgets.maxSteps, 'step budget exhausted');
  if (budgets.maxInputTokens !== undefined && usage.inputTokens >= budgets.maxInputTokens) {
    return exceeded('maxInputTokens', usage.inputTokens, budgets.maxInputTokens, 'input token budget exhausted');
  }
  if (budgets.maxOutputTokens !== undefined && usage.outputTokens >= budgets.maxOutputTokens) {
    return exceeded('maxOutputTokens', usage.outputTokens, budgets.maxOutputTokens, 'output token budget exhausted');
  }
  if (budgets.maxCostUsd !== undefined && usage.costUsd >= budgets.maxCostUsd) return exceeded('maxCostUsd', usage.costUsd, budgets.maxCostUsd, 'cost budget exhausted');
  return wallTime(budgets, elapsedMs);
}

/** Checks the limits that stop a tool call before it runs: total calls, calls of this tool, wall time. */
export function checkBeforeToolCall(budgets: Budgets, maxCallsOfTool: number | undefined, usage: BudgetUsage, tool: string, elapsedMs: number): BudgetExceeded | null {
  if (budgets.maxToolCalls !== undefined && usage.toolCalls >= budgets.maxToolCalls) {
    return exceeded('maxToolCalls', usage.toolCalls, budgets.maxToolCalls, 'tool call budget exhausted');
  }
  const ofTool = usage.toolCallsByTool[tool] ?? 0;
  if (maxCallsOfTool !== undefined && ofTool >= maxCallsOfTool) return exceeded('maxCallsPerTool', ofTool, maxCallsOfTool, `call budget of tool ${tool} exhausted`, tool);
  return wallTime(budgets, elapsedMs);
}

/** The USD cost of some tokens at a model's price; 0 where the policy names no price. */
export function costOf(price: Price | undefined, inputTokens: number, outputTokens: number): number {
  if (!price) return 0;
  return (inputTokens * price.inputPerMTok + outputTokens * price.outputPerMTok) / 1_000_000;
}
