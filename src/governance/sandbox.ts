/**
 * The governance the workflow runs: the same pure functions as `./index`, without what only the
 * worker and the CLI need (policy parsing with zod and YAML, keyrings, signature checks).
 *
 * Workflow code imports from here, never from `./index`: what is here goes into the workflow
 * bundle, which each worker thread loads (zod alone, when it was here, cost more per run than the
 * run itself, before the bundle's modules were shared). `test/workflow-bundle.test.ts` holds the line.
 */
export { emptyAuditHead, nextAuditEvent } from './audit';
export type { AuditEvent, AuditEventType, AuditHead } from './audit';
export { approvalIdFor, digestOf } from './digest';
export { durationMs } from './duration';
export { checkBeforeModelCall, costOf, emptyUsage } from './budget';
export type { BudgetExceeded, BudgetUsage } from './budget';
export { emptyLoopState } from './loop-detector';
export { addDelegateUsage, budgetsLeft, chargeDelegate, checkModelCallBudgets, delegationCeiling, emptyCeiling } from './delegation';
export type { DelegateUsage } from './delegation';
export type { Budgets } from './policy-schema';
export { CompiledPolicy } from './policy-compiled';
export type { Decision } from './policy-compiled';
export type { ApprovalRequirement, Policy, RetrySettings } from './policy-schema';
export { argsSchemaOf, redactBySchema } from './redact';
export { admitApproved, denialMessage, governCall, spentOf } from './govern-call';
export type { CallProposal, GovernContext, GovernEvent, GovernResult, GovernState } from './govern-call';
export { escalateApproval, judgeDecision, precheckDecision, sameRequirement } from './approval';
export type { ApprovalState, ApprovalVote, DecisionInput } from './approval';
export { shadowDiffOf } from './shadow';
export type { ShadowDiff } from './shadow';
export type { OperatorAction, SignedDecision } from './signed-decision';
