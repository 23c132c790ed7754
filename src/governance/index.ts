/**
 * Governance: what an agent may do and how much. Pure and sandbox-safe: the workflow, the CLI
 * and the tests import these same functions, and nothing here does I/O.
 */
export { canonicalJson } from './canonical';
export { sha256Hex, digestOf, approvalIdFor } from './digest';
export { durationMs, DURATION_PATTERN } from './duration';
export { nextAuditEvent, verifyAuditChain, emptyAuditHead, GENESIS_HASH } from './audit';
export type { AuditEvent, AuditEventType, AuditHead, ChainVerification } from './audit';
export { policySchema } from './policy-schema';
export type { Policy, PolicyInput, Rule, ApprovalRequirement, RetrySettings, ToolPolicy, Budgets, LoopSettings, Price } from './policy-schema';
export { PolicyError, parsePolicy, parsePolicyText, policyVersion, CompiledPolicy } from './policy';
export type { Decision, DecisionKind, RunFacts, CallFacts } from './policy';
export { emptyUsage, checkBeforeModelCall, checkBeforeToolCall, costOf } from './budget';
export type { BudgetUsage, BudgetExceeded, BudgetLimit } from './budget';
export { addDelegateUsage, budgetsLeft, chargeDelegate, checkModelCallBudgets, checkToolCallBudgets, delegationCeiling, emptyCeiling } from './delegation';
export type { DelegateUsage } from './delegation';
export { emptyLoopState, observeCall } from './loop-detector';
export type { LoopState, LoopObservation } from './loop-detector';
export { sensitivePaths, redactArgs, REDACTED } from './redact';
export { signDecision, verifySignedDecision, generateSigningKey, publicKeyOf, DECISION_MAX_AGE_MS } from './signed-decision';
export type { DecisionClaims, SignedDecision, TrustedKeys, DecisionVerification } from './signed-decision';
export { identityKey, isEligible, lookalikeApprover, normalizeIdentity, sameIdentity, spellOut } from './identity';
export { parseKeyring, authorizeDecision, authorizeStart, authorizeOperator, goalDigest, keyGrantSchema, KeyringError, ROLE_FOR_ACTION } from './keyring';
export type { OperatorRole } from './keyring';
export type { Keyring, KeyGrant, VerifiedIdentity, Authorization } from './keyring';
export { verifySignedClaims } from './signed-decision';
export type { StartClaims, OperatorClaims, OperatorAction, ClaimsVerification } from './signed-decision';
export { OPERATOR_ACTIONS } from './signed-decision';
export type { CallPosition } from './digest';
export { governCall, admitApproved, denialMessage, spentOf } from './govern-call';
export type { GovernState, CallProposal, GovernedTool, GovernContext, CallPlan, GovernEvent, GovernResult } from './govern-call';
export { precheckDecision, judgeDecision, escalateApproval, sameRequirement } from './approval';
export type { ApprovalState, ApprovalStateName, ApprovalVote, DecisionInput, DecisionAuthority, Judgement } from './approval';
export { argsSchemaOf, redactBySchema } from './redact';
export { checkPolicy } from './policy-check';
export type { ToolSchemaInfo } from './policy-check';
export { formatPolicyProblem } from './policy-problem';
export type { PolicyProblem } from './policy-problem';
export { throwPolicyProblems } from './policy';
export type { ParsePolicyOptions, CompiledPolicyOptions } from './policy';
export { MOVED_TO_WORKER } from './policy-schema';
export { verdictOf, diffKindOf, recordedRun, whatIf, groupDiffs, DIFF_KINDS } from './what-if';
export type { Verdict, DiffKind, RecordedCall, RecordedRun, CallDiff, RuleCount, WhatIfReport, WhatIfOptions } from './what-if';
export { shadowDiffOf, shadowDiffsOf } from './shadow';
export type { ShadowDiff, ShadowSide } from './shadow';
