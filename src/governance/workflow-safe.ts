/**
 * The governance the workflow runs: the same pure functions as `./index`, without what only the
 * worker and the CLI need (policy parsing with zod and YAML, keyrings, signature checks).
 *
 * Workflow code imports from here, never from `./index`: what is here goes into the workflow
 * bundle, which each worker thread loads (zod alone, when it was here, cost more per run than the
 * run itself, before the bundle's modules were shared). `test/workflow-bundle.test.ts` holds the line.
 */
export { emptyAuditHead, nextAuditEvent, packAudit } from './signing/audit-chain';
export type { AuditEvent, AuditEventType, AuditHead, AuditInput } from './signing/audit-chain';
export { approvalIdFor, digestOf } from './signing/digest';
export { durationMs } from './policy/duration';
export { checkBeforeModelCall, costOf, emptyUsage } from './accounting/budget';
export type { BudgetExceeded, BudgetUsage } from './accounting/budget';
export { emptyLoopState } from './accounting/loop-detector';
export { addDelegateUsage, budgetsLeft, chargeDelegate, checkModelCallBudgets, delegationCeiling, emptyCeiling } from './accounting/delegation-budgets';
export type { DelegateUsage } from './accounting/delegation-budgets';
export type { Budgets } from './policy/policy-schema';
export { CompiledPolicy } from './policy/policy-compiled';
export type { Decision } from './policy/policy-compiled';
export type { ApprovalRequirement, Policy, RetrySettings } from './policy/policy-schema';
export { argsSchemaOf, redactBySchema } from './calls/redaction';
export { admitApproved, denialMessage, governCall, spentOf } from './calls/govern-call';
export type { CallProposal, GovernContext, GovernEvent, GovernResult, GovernState } from './calls/govern-call';
export { escalateApproval, judgeDecision, precheckDecision, sameRequirement } from './calls/approval-rules';
export type { ApprovalState, ApprovalVote, DecisionInput } from './calls/approval-rules';
export { shadowDiffOf } from './change-safety/shadow-diff';
export type { ShadowDiff } from './change-safety/shadow-diff';
export type { OperatorAction, SignedDecision } from './signing/signed-decision';
export { hasQuotas, modelQuotas, rulesForCall } from './quota/quota-rules';
export type { QuotaHit, QuotaRule, QuotaSet, RateRule } from './quota/quota-rules';
