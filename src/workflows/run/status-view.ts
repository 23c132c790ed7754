import { budgetsLeft, durationMs, spentOf } from '../../governance/workflow-safe';
import type { CompensationStep, RunStatusView } from '../run-types';
import type { RunState } from './run-state';

// What the run's queries answer. Queries must not change state: these only read it.

/** The `status` query: phase, step, budgets used and left, pending approvals, last decision, outcome. */
export function statusView(run: RunState): RunStatusView {
  const budgets = run.prepared?.policy.budgets ?? {};
  const usage = spentOf(run.gov);
  const inherited = run.input.delegation?.ceiling;
  // Whichever is tighter: the policy's budgets or, for a delegate, its delegating run's ceiling.
  const remaining = budgetsLeft(budgets, inherited, usage, run.elapsed());
  const left: Record<string, number> = {};
  if (remaining.maxSteps !== undefined) left.steps = remaining.maxSteps;
  if (remaining.maxToolCalls !== undefined) left.toolCalls = remaining.maxToolCalls;
  if (remaining.maxInputTokens !== undefined) left.inputTokens = remaining.maxInputTokens;
  if (remaining.maxOutputTokens !== undefined) left.outputTokens = remaining.maxOutputTokens;
  if (remaining.maxCostUsd !== undefined) left.costUsd = remaining.maxCostUsd;
  if (remaining.maxWallTime !== undefined) left.wallTimeMs = durationMs(remaining.maxWallTime);
  return {
    runId: run.runId,
    agent: run.input.agent,
    requester: run.prepared?.requester.id ?? run.input.requester,
    requesterVerified: run.prepared?.requester.verified ?? false,
    ...(run.prepared?.tenant !== undefined ? { tenant: run.prepared.tenant } : {}),
    phase: run.phase,
    paused: run.paused,
    step: run.gov.usage.steps,
    currentDetails: run.currentDetails,
    budget: { used: usage, limits: budgets, left, ...(inherited ? { inherited } : {}) },
    pendingApprovals: run.pendingApprovals().length,
    lastDecision: run.lastDecision,
    policyVersion: run.policy?.version ?? '',
    outcome: run.outcome,
    shadow: run.shadow.view(),
    ...(run.input.delegation ? { delegatedBy: run.delegatedBy() } : {}),
    ...(run.delegations.length > 0 ? { delegations: run.delegations.map((d) => ({ ...d })) } : {}),
  };
}

/** The `rollbackPlan` query: the compensations a rollback would run, newest first. */
export function rollbackPlan(run: RunState): CompensationStep[] {
  // Queries are answered to anyone who can reach Temporal: arguments leave redacted.
  return [...run.executedCalls].reverse().map(({ shownArgs, ...s }) => ({ ...s, args: shownArgs ?? run.redact(s.tool, s.args) }));
}
