import type { SealedSpend } from '../activities/activity-types';
import type { ApprovalState, ApprovalVote, AuditEvent, AuditHead, BudgetExceeded, BudgetUsage, Budgets, DelegateUsage, Decision, GovernState, Policy, QuotaSet, RetrySettings, SignedDecision } from '../governance/workflow-safe';

/** A script turn for the `scripted` model: turn i answers the run's i-th model call. */
export interface ScriptTurn {
  /** `script` on a delegation (`agent__<name>`): the turns of the delegate's run. */
  toolCalls?: { name: string; args?: Record<string, unknown>; id?: string; script?: ScriptTurn[] }[];
  text?: string;
  usage?: { inputTokens?: number; outputTokens?: number };
}

/** What a client sends to start a run. Plain JSON. */
export interface StartRunInput {
  agent: string;
  goal: string;
  requester: string;
  /** Turns for an agent whose model is `scripted` with no script of its own (offline runs, tests). */
  script?: ScriptTurn[];
  /**
   * A policy to use instead of the worker's. Refused unless the worker was started with
   * `acceptRunInputPolicy` (tests only): anyone who can start a workflow could otherwise bring a
   * policy of their own.
   */
  policy?: Policy;
  /** A trusted channel's signed run start (`StartClaims`): makes the requester verified. */
  requesterProof?: SignedDecision;
  /**
   * The tenant the run works for: counted only when `requesterProof` signs the same tenant;
   * otherwise the run gets the worker's default tenant, or none.
   */
  tenant?: string;
  /** Continue-as-new after this many steps even if Temporal has not suggested it yet. */
  continueAsNewAfterSteps?: number;
}

/** A tool as the workflow sees it: everything needed to govern and schedule a call, no code. */
export interface ToolSpec {
  name: string;
  description: string;
  /** JSON Schema of the arguments (from the tool's zod schema). */
  inputSchema: Record<string, unknown>;
  /**
   * JSON Schema of the arguments as the tool's schema makes them (its output side), when a pipe or
   * transform reshapes them: what redaction walks (`argsSchemaOf`). Absent: `inputSchema` serves.
   */
  argsSchema?: Record<string, unknown>;
  risk: 'low' | 'medium' | 'high';
  retry?: RetrySettings;
  timeout?: string;
  heartbeatTimeout?: string;
  compensable: boolean;
  /** Runs as a local activity (`defineTool({ local: true })`). */
  local?: boolean;
  /** The name the model calls it by, when it differs (an MCP tool `mcp:github/create_issue` is offered as `mcp__github__create_issue`). */
  modelName?: string;
  /** Digest of the input schema as the run's worker listed it (MCP tools): pinned for the run. */
  schemaDigest?: string;
  /** A delegation (`agent:<name>`): the agent whose child run a call starts. */
  delegate?: string;
}

export interface AgentSpec {
  name: string;
  /** The id prices are looked up by (`openai:gpt-4o-mini`, `scripted`). */
  modelId: string;
  tools: ToolSpec[];
}

/** Who asked for a run: verified when a trusted channel signed the start, otherwise as the start input says. */
export interface Requester {
  /** Normalised identity. */
  id: string;
  verified: boolean;
  /** The channel that vouched for the requester, when verified. */
  channel?: string;
  /** Why a signed start did not verify the requester, when one was given. */
  unverified?: string;
}

/**
 * The shadow policy the enforced one names (`shadow: {file}`), as the worker loaded it, or why it
 * could not: a broken shadow never stops a run, the audit says why it is missing.
 */
export type ShadowSource = { policy: Policy; source: string } | { error: string; source: string };

/** What a run's shadow policy has done so far (the `status` query's `shadow`). */
export interface ShadowStatus {
  source: string;
  /** Absent when the shadow could not be loaded (`error` says why). */
  version?: string;
  error?: string;
  /** Calls both policies judged, and how many of them they judged differently. */
  calls: number;
  diffs: number;
}

/** What the worker's configuration says about a new run: its agent, its policy and its requester. */
export interface PreparedRun {
  agent: AgentSpec;
  policy: Policy;
  policySource: string;
  /** Only ever set by the worker, from the policy it loaded; never from a start input or a signal. */
  shadow?: ShadowSource;
  requester: Requester;
  /** Channels this worker can notify approvers on. */
  notifications: { slack: boolean };
  /** The tenant the run works for: from a signed start, or the worker's default (never from an unsigned start input). */
  tenant?: string;
  /** Why a tenant the start input named was not taken (it was not signed). */
  tenantRefused?: string;
  /** The quotas and rate limits that govern the run (its policy's and the fleet file's); absent when there are none. */
  quotas?: QuotaSet;
  /** A quota on runs started refused this run: it ends at once, with this message. */
  quotaStop?: string;
  /**
   * The worker's grant over the rest of this preparation (`preparedDigest`), for this run: what
   * effectful activities check, so a preparation completed into the run by anyone else runs nothing.
   */
  grant?: string;
}

export type RunPhase = 'starting' | 'thinking' | 'governing' | 'awaiting_approval' | 'running_tools' | 'paused' | 'rolling_back' | 'finished';
export type RunStatus = 'completed' | 'failed' | 'budget_exhausted' | 'cancelled' | 'rolled_back';
/** A run's status as clients report it: an outcome, or `terminated` when Temporal ended it without one. */
export type ReportedStatus = RunStatus | 'terminated';

/** How a run ended. */
export interface RunOutcome {
  status: RunStatus;
  reason: string;
  text: string;
  steps: number;
  toolCalls: number;
  usage: { inputTokens: number; outputTokens: number; costUsd: number };
  policyVersion: string;
  budget?: BudgetExceeded;
  rollback?: RollbackReport;
  /** The head of the run's audit chain when it ended: an anchor the run store cannot rewrite. */
  audit: AuditHead;
  /** The part of `steps`, `toolCalls` and `usage` its delegates used (those figures count them). */
  delegated?: DelegateUsage;
  /**
   * A delegate's run only: what it did that its delegating run may still undo (its own calls and
   * its delegates', oldest first), and what it did that cannot be undone.
   */
  undoable?: CompensationStep[];
  notUndoable?: CallRef[];
}

/** Who handed a delegate its task: the delegating run, its agent and the call. */
export interface DelegatedBy {
  runId: string;
  agent: string;
  callId: string;
}

/**
 * What a delegating run gives the delegate's run, which accepts it only as a child workflow of
 * that very run (Temporal sets the parent; a start input cannot).
 */
export interface DelegationInput extends DelegatedBy {
  /** The delegating run's requester as its worker established it (verified or not). */
  requester: Requester;
  /** What the delegate may use of the delegating run's budgets, counted from the delegate's start. */
  ceiling: Budgets;
  /** 1 for a delegate of a run nobody delegated. */
  depth: number;
  /**
   * The delegating runs, nearest first: a signed operator command for any of them reaches this
   * run too (a rollback of the delegating run rolls back its running delegates).
   */
  lineage?: string[];
}

/** A delegation as the delegating run's `status` shows it. */
export interface DelegationView {
  callId: string;
  agent: string;
  runId: string;
  status: 'running' | RunStatus | 'not_started';
  reason?: string;
}

export interface ProposedCall {
  id: string;
  name: string;
  args: Record<string, unknown>;
}

/**
 * A call waiting for people, as the `pendingApprovals` query shows it: the run's approval state
 * (arguments redacted) with its votes so far, and whether the run is paused (a decision still
 * counts; the call runs after resume).
 */
export type PendingApproval = Omit<ApprovalState, 'votes' | 'state' | 'decidedBy' | 'note' | 'policyVersion'> & {
  approvals: ApprovalVote[];
  paused: boolean;
  /** The call is a delegate's: the run that delegated the task (approvers see whose work it is). */
  delegatedBy?: DelegatedBy;
  /** The tenant the run works for, when it has one. */
  tenant?: string;
};

export interface CompensationStep {
  callId: string;
  tool: string;
  resultSeq: number;
  /** The arguments the call ran with (the `rollbackPlan` query shows them redacted). */
  args: Record<string, unknown>;
  at: string;
  /** A delegate's call: the delegate's run and agent, and the arguments as that run redacted them. */
  runId?: string;
  agent?: string;
  shownArgs?: Record<string, unknown>;
  /** The call's quota reservations (`call:<seq>`): its compensation gives them back. */
  quotaRef?: string;
  /** The model activity's seal over the call (`CallProposal.seal`): a compensation is made only of a call the worker parsed. */
  seal?: string;
}

/** A call by id and tool; `runId` when it was a delegate's call. */
export interface CallRef {
  callId: string;
  tool: string;
  runId?: string;
}

export interface RollbackReport {
  undone: CallRef[];
  failed: (CallRef & { error: string })[];
  notUndoable: CallRef[];
}

/** The `status` query's answer. */
export interface RunStatusView {
  runId: string;
  agent: string;
  requester: string;
  requesterVerified: boolean;
  /** The tenant the run works for, when it has one (docs/quotas.md). */
  tenant?: string;
  phase: RunPhase;
  paused: boolean;
  step: number;
  currentDetails: string;
  budget: { used: BudgetUsage; limits: Policy['budgets']; left: Record<string, number>; inherited?: Budgets };
  pendingApprovals: number;
  lastDecision: (Decision & { tool: string; callId: string }) | null;
  policyVersion: string;
  outcome: RunOutcome | null;
  /** The shadow policy and its disagreements, when the run's policy names one. */
  shadow?: ShadowStatus | null;
  /** A delegate's run: who handed it its task. */
  delegatedBy?: DelegatedBy;
  /** The runs this one delegated to, in order. */
  delegations?: DelegationView[];
}

/** What survives continue-as-new: governance state only, the conversation lives in the run store. */
export interface CarriedState {
  prepared: PreparedRun;
  govern: GovernState;
  auditHead: AuditHead;
  /** Rows the store does not have yet are flushed before continuing, so this is only a count. */
  messageCount: number;
  startedAtMs: number;
  executions: number;
  executedCalls: CompensationStep[];
  notUndoable: CallRef[];
  lastDecision: RunStatusView['lastDecision'];
  paused: boolean;
  delegations?: DelegationView[];
  /** Paused by the policy (the loop breaker): resuming then takes a signed operator. */
  pausedByPolicy?: boolean;
  /** Signed operator commands this run has counted (signature digests): each counts once. */
  usedCommands?: string[];
  /** The shadow policy and its counters. */
  shadow?: { source: ShadowSource; calls: number; diffs: number };
  /** Set by an execution that ran without grants (started before them): the next one does too. */
  ungranted?: boolean;
  /** The run's own model spend as the model activity sealed it (TURNS_V2): the next execution's first model call is made on it. */
  spent?: SealedSpend;
}

/**
 * Input of a run's workflow: the start input, plus carried state after continue-as-new (refused
 * in any execution Temporal did not create by continue-as-new).
 */
export interface AgentRunInput extends StartRunInput {
  carried?: CarriedState;
  /** Set by a delegating run on its delegate's run (a child workflow); refused on any other run. */
  delegation?: DelegationInput;
  /**
   * The worker's seal over the rest of this input (`sealState`): made by the execution that
   * continued as new into this one (with `carried`), or by the delegating run (with `delegation`).
   */
  seal?: string;
}

export type { AuditEvent, ApprovalVote };
