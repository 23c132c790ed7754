/**
 * Governance: what an agent may do and how much. Pure and sandbox-safe: the workflow, the CLI
 * and the tests import these same functions, and nothing here does I/O.
 */
export { canonicalJson } from './signing/canonical';
export { sha256Hex, digestOf, approvalIdFor } from './signing/digest';
export { durationMs, DURATION_PATTERN } from './policy/duration';
export { nextAuditEvent, verifyAuditChain, emptyAuditHead, GENESIS_HASH } from './signing/audit-chain';
export type { AuditEvent, AuditEventType, AuditHead, ChainVerification } from './signing/audit-chain';
export { policySchema } from './policy/policy-schema';
export type { Policy, PolicyInput, Rule, ApprovalRequirement, RetrySettings, ToolPolicy, Budgets, LoopSettings, Price } from './policy/policy-schema';
export { PolicyError, parsePolicy, parsePolicyText, policyVersion, CompiledPolicy } from './policy/parse-policy';
export type { Decision, DecisionKind, RunFacts, CallFacts } from './policy/parse-policy';
export { emptyUsage, checkBeforeModelCall, checkBeforeToolCall, costOf } from './accounting/budget';
export type { BudgetUsage, BudgetExceeded, BudgetLimit } from './accounting/budget';
export { addDelegateUsage, budgetsLeft, chargeDelegate, checkModelCallBudgets, checkToolCallBudgets, delegateUsageOf, delegationCeiling, emptyCeiling } from './accounting/delegation-budgets';
export type { DelegateUsage } from './accounting/delegation-budgets';
export { emptyLoopState, observeCall } from './accounting/loop-detector';
export type { LoopState, LoopObservation } from './accounting/loop-detector';
export { sensitivePaths, redactArgs, REDACTED } from './calls/redaction';
export { signDecision, verifySignedDecision, generateSigningKey, publicKeyOf, DECISION_MAX_AGE_MS } from './signing/signed-decision';
export type { DecisionClaims, SignedDecision, TrustedKeys, DecisionVerification } from './signing/signed-decision';
export { identityKey, isEligible, lookalikeApprover, normalizeIdentity, sameIdentity, spellOut } from './signing/identity-folding';
export { parseKeyring, authorizeDecision, authorizeStart, authorizeOperator, goalDigest, keyGrantSchema, KeyringError, ROLE_FOR_ACTION } from './signing/keyring';
export type { OperatorRole } from './signing/keyring';
export type { Keyring, KeyGrant, VerifiedIdentity, Authorization } from './signing/keyring';
export { verifySignedClaims } from './signing/signed-decision';
export type { StartClaims, OperatorClaims, OperatorAction, ClaimsVerification } from './signing/signed-decision';
export { OPERATOR_ACTIONS } from './signing/signed-decision';
export type { CallPosition } from './signing/digest';
export { governCall, admitApproved, denialMessage, spentOf } from './calls/govern-call';
export type { GovernState, CallProposal, GovernedTool, GovernContext, CallPlan, GovernEvent, GovernResult } from './calls/govern-call';
export { precheckDecision, judgeDecision, escalateApproval, sameRequirement } from './calls/approval-rules';
export type { ApprovalState, ApprovalStateName, ApprovalVote, DecisionInput, DecisionAuthority, Judgement } from './calls/approval-rules';
export { argsSchemaOf, redactBySchema } from './calls/redaction';
export { checkPolicy } from './policy/policy-check';
export type { ToolSchemaInfo } from './policy/policy-check';
export { formatPolicyProblem } from './policy/policy-problem';
export type { PolicyProblem } from './policy/policy-problem';
export { throwPolicyProblems } from './policy/parse-policy';
export type { ParsePolicyOptions, CompiledPolicyOptions } from './policy/parse-policy';
export { MOVED_TO_WORKER } from './policy/policy-schema';
export { verdictOf, diffKindOf, recordedRun, whatIf, groupDiffs, DIFF_KINDS } from './change-safety/what-if';
export type { Verdict, DiffKind, RecordedCall, RecordedRun, CallDiff, RuleCount, WhatIfReport, WhatIfOptions } from './change-safety/what-if';
export { shadowDiffOf, shadowDiffsOf } from './change-safety/shadow-diff';
export type { ShadowDiff, ShadowSide } from './change-safety/shadow-diff';
