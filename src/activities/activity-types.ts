import type { AuditInput, Budgets, CallProposal, DecisionAuthority, DelegateUsage, OperatorAction, Policy, Price, QuotaHit, QuotaRule, RateRule } from '../governance';
import type { CallGovernance } from '../telemetry/conventions';
import type { MessageRow } from '../store/run-store';
import type { PendingApproval, PreparedRun, Requester, ScriptTurn, ShadowSource } from '../workflows/run-types';

// Activity inputs and results are small: references, digests and the audit events since the
// last activity (they ride along and are appended first, so no activity exists just to audit).

/** What a new run tells its worker. Everything here came through Temporal: the worker trusts none of it. */
export interface PrepareRunInput {
  runId: string;
  agent: string;
  requester: string;
  goal: string;
  /** The workflow's start time (server-set): the reference time of a signed start. */
  startedAtMs: number;
  /** A policy from the start input: refused unless the worker accepts run-input policies (tests). */
  policy?: unknown;
  /** A signed run start (`StartClaims`) making the requester verified. */
  requesterProof?: unknown;
  /** The tenant the start input names: taken only when `requesterProof` signs it. */
  tenant?: unknown;
  /**
   * A delegate's run: the delegating run's seal over this run's start input (`sealState`), the
   * digest of that input as this run received it, and the delegating execution as Temporal names
   * it. A delegation is accepted only with a seal the worker verifies.
   */
  delegation?: { parent: ExecutionRef; digest: string; seal: unknown; requester?: Requester };
}

/**
 * A run's grant as the workflow hands it to an effectful activity: the digest the workflow made of
 * the preparation it works under (`preparedDigest`) and the worker's grant that came with it
 * (null when none came: the activity refuses).
 */
export interface GrantRef {
  digest: string;
  seal: string | null;
}

/** One execution of a workflow. */
export interface ExecutionRef {
  workflowId: string;
  runId: string;
}

/**
 * What an execution hands another one: its run state at continue-as-new (`carry`, to the same
 * workflow id), or a delegate's start input (`delegation`, to the delegate's run). `digest` is the
 * digest of the input the next execution receives.
 */
export interface SealStateInput {
  kind: 'carry' | 'delegation';
  to: string;
  digest: string;
  /** A delegation by a run under grants: its grant, checked first (a delegate inherits the run's requester). */
  grant?: GrantRef;
}

/** A continued execution's check of the seal its input came with. */
export interface VerifySealInput {
  kind: 'carry';
  /** The execution the input says it came from (Temporal's `continuedFromExecutionRunId`). */
  from: ExecutionRef;
  digest: string;
  seal: unknown;
}

export type VerifySealResult = { ok: true } | { refused: string };

/** A decision as it reached the run; the worker verifies it against its current keyring. */
export interface VerifyDecisionInput {
  runId: string;
  /** The workflow's clock when the decision arrived. */
  nowMs: number;
  approver: unknown;
  groups?: unknown;
  channel?: unknown;
  signature?: unknown;
}

export type VerifyDecisionResult = DecisionAuthority | { refused: string };

/** An operator command to a run; the worker verifies who sent it and that their key may assert the role it needs. */
export interface VerifyOperatorInput {
  runId: string;
  nowMs: number;
  action: OperatorAction;
  by: unknown;
  signature?: unknown;
  /** The run's agent: a resume is refused while its kill switch is engaged. Absent from inputs recorded before. */
  agent?: string;
  /**
   * The run the command is signed for, when it is one of this run's delegating runs (its sealed
   * lineage) rather than `runId`: a command signed for a delegating run reaches its delegates.
   */
  signedFor?: string;
}

export type VerifyOperatorResult = { operator: string; signed: boolean } | { refused: string };

/** The policy in force for an agent on this worker: applied in the run store, else the policy file. */
export interface CurrentPolicy {
  policy: Policy;
  source: string;
  /** The shadow the policy names, loaded by the worker. */
  shadow?: ShadowSource;
  /** With `CurrentPolicyInput.prepared`: the grant over the run's preparation with this policy taken up. */
  grant?: string;
}

/**
 * Which agent's policy to read; a run under grants also sends its preparation and grant, checked
 * first, so the worker grants the preparation with the new policy (never one it did not grant).
 */
export interface CurrentPolicyInput {
  agent: string;
  runId?: string;
  prepared?: PreparedRun;
  grant?: GrantRef;
}

export interface CallModelInput {
  runId: string;
  agent: string;
  step: number;
  /** The model reads messages `[0, upTo)`; its answer is stored at `upTo`. */
  upTo: number;
  append: MessageRow[];
  /** Events the run store lacks so far: written before the activity does anything else. */
  audit: AuditInput;
  /**
   * For a run that brings its own script: the turn that answers this call (null once the script
   * has ended). Only this turn travels, so a long scripted run's history stays flat.
   */
  scriptTurn?: ScriptTurn | null;
  /** The run's price of its model, sent only when the worker traces: the `chat` span's cost. */
  price?: Price | null;
  /** The run's quotas on model spend, sent only when it has some: checked before the call, charged after it. */
  quota?: ModelQuotaInput;
  /** Runs under TURNS_V2: the run's own model spend so far as the model activity sealed it, and what it must stay under. */
  spend?: ModelSpendInput;
}

/** A run's own model spend up to and including model call `step`, sealed by the worker's model activity (`seal` is empty before the first call). */
export interface SealedSpend {
  step: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  seal: string;
}

/** What the model activity checks a call against before it makes it, and seals the spend after it with. */
export interface ModelSpendInput {
  spent: SealedSpend;
  /** The run's price of its model as it counts this call's cost (null: unpriced). */
  price?: Price | null;
  /** The policy's budgets and a delegate's ceiling: a spend over a token or cost limit makes no call. */
  budgets?: Budgets;
  ceiling?: Budgets;
}

/** Who a run's model spend is counted for, and which quotas count it. */
export interface ModelQuotaInput {
  tenant: string | null;
  requester: string;
  quotas: QuotaRule[];
  /** The run's price of its model (USD per million tokens); null: unpriced, cost quotas count nothing. */
  price: Price | null;
}

/** A new run's preparation and its first model call, in one activity (one round trip fewer for every run). */
export interface PrepareAndCallModelInput {
  prepare: PrepareRunInput;
  /** The first model call; `price` is filled in from the run's policy when `withPrice` is set (the worker traces). */
  model: Omit<CallModelInput, 'price'>;
  withPrice?: boolean;
  /** A delegate's budget ceiling: with the policy's budgets, whether the first call may be made at all. */
  ceiling?: Budgets;
}

export interface PrepareAndCallModelResult {
  prepared: PreparedRun;
  /**
   * The first answer; null when the run must not make it (a budget already spent, a cost budget
   * without a price for the model): the workflow's own checks then end the run, as before.
   */
  answer: CallModelResult | null;
}

export interface CallModelResult {
  /** Each call with the arguments its tool's zod schema made of the model's (or why there are none). */
  calls: CallProposal[];
  /** The answer's text, cut at the worker's limit; the whole text is in the run store. */
  text: string;
  usage: { inputTokens: number; outputTokens: number };
  /** Set when the agent's context policy left older turns out of this call: recorded on its `model_turn` event. */
  context?: { omittedMessages: number; keptMessages: number; size: number; limit: number; unit: 'bytes' | 'tokens' };
  /** Set when a quota on model spend stopped the run before this call (no model call was made) or warned as it charged it. */
  quota?: { stop?: QuotaHit & { message: string }; warnings?: QuotaHit[] };
  /** Runs under TURNS_V2: the run's own model spend with this call, sealed; the next call is made only on it. */
  spent?: SealedSpend;
}

export interface ToolActivityInput {
  runId: string;
  agent: string;
  requester: string;
  callId: string;
  args: Record<string, unknown>;
  idempotencyKey: string;
  /** Where the result is stored in the conversation. */
  resultSeq: number;
  /** The schema digest the run pinned for this tool (`ToolSpec.schemaDigest`): the call is refused if the worker's differs. */
  schemaDigest?: string;
  /** Events the run store lacks so far: written before the activity does anything else. */
  audit: AuditInput;
  /** How the call was governed, sent only when the worker traces: the `execute_tool` span's attributes. */
  governance?: CallGovernance;
  /** The call's quota reservations (`call:<seq>`): committed when the tool succeeds, refunded when its compensation runs. */
  quotaRef?: string;
  /** Inputs made before `booking`: the rate limits that pace the call (a booking carries its own). */
  pace?: RatePace[];
  /**
   * A counted or paced call: what the run booked before it (`reserveQuota`), booked again by the
   * tool activity itself before the tool runs (a no-op for a booking the ledger holds), so no
   * verdict completed into the run by anyone else lets a call past a quota or a rate limit.
   */
  booking?: ToolBooking;
  /** Runs started under the grants patch: the run's grant, checked before the tool runs. */
  grant?: GrantRef;
  /** With `grant`: the model activity's seal over this call (null when none came). */
  proposal?: string | null;
}

/** A rate limit as a tool activity keeps it at the moment the tool starts. */
export interface RatePace {
  /** The limit's counter (its name and scope). */
  limit: string;
  intervalMs: number;
  burst: number;
}

/** A call a quota counts or a rate limit paces, before its tool activity: what to book. */
export interface ReserveQuotaInput {
  runId: string;
  /** `call:<seq>`: with the run and each quota, the reservation's id. */
  ref: string;
  agent: string;
  tenant: string | null;
  requester: string;
  tool: string;
  args: Record<string, unknown>;
  /** People approved the call past a `require_approval` threshold. */
  approved: boolean;
  quotas: QuotaRule[];
  rateLimits: RateRule[];
}

/** What a tool activity books again as it starts (the rest of `ReserveQuotaInput` is in its own input). */
export type ToolBooking = Pick<ReserveQuotaInput, 'ref' | 'tenant' | 'approved' | 'quotas' | 'rateLimits'>;

/**
 * A quota's verdict on a call: booked (with warnings crossed, and how long the call must wait for
 * its rate-limit slot), or refused (`deny`), or to be approved first (`require_approval`).
 */
export type ReserveQuotaResult =
  | { kind: 'booked'; warnings: QuotaHit[]; waitMs: number; rateLimit?: string; pace?: RatePace[] }
  | { kind: 'deny' | 'require_approval'; hit: QuotaHit; message: string };

/** Moves a run's reservations on (one call's with `ref`, else all the run's in state `from`). */
export interface SettleQuotaInput {
  runId: string;
  ref?: string;
  from: 'held' | 'committed';
  to: 'committed' | 'released' | 'refunded';
}

export interface ToolActivityResult {
  /** At most a couple of hundred characters: the full result is in the run store. */
  summary: string;
  attempt: number;
}

export interface CompensateInput extends ToolActivityInput {
  tool: string;
  /**
   * A delegate's call, undone by the run it reported to: the delegate's run (where the call's
   * result is stored, and the run the tool sees) and agent. `runId` stays the run whose audit
   * trail records the undo.
   */
  callRunId?: string;
  callAgent?: string;
}

export interface RecordRunInput {
  runId: string;
  append: MessageRow[];
  /** Events the run store lacks so far: written before the activity does anything else. */
  audit: AuditInput;
}

/** A request to tell people in Slack that an approval waits (redacted arguments only). */
export interface NotifyApprovalInput {
  channel: string;
  agent: string;
  approval: Pick<PendingApproval, 'approvalId' | 'runId' | 'tool' | 'args' | 'ruleId' | 'reason' | 'requester' | 'approvers' | 'quorum' | 'expiresAt' | 'delegatedBy'>;
}

/** The worker's own activities. Tools are activities too, registered under their own names. */
export interface CoreActivities {
  /** Registered only on workers configured for Slack (`PreparedRun.notifications.slack`). */
  notifyApproval(input: NotifyApprovalInput): Promise<{ channel: string; ts: string }>;
  prepareRun(input: PrepareRunInput): Promise<PreparedRun>;
  /** Verifies who decided: signature, revocation and what the key may assert, with the worker's current keyring. */
  verifyDecision(input: VerifyDecisionInput): Promise<VerifyDecisionResult>;
  currentPolicy(input: CurrentPolicyInput): Promise<CurrentPolicy>;
  /** Verifies an operator command (a signed operator claim, with the current keyring and its roles). */
  verifyOperator(input: VerifyOperatorInput): Promise<VerifyOperatorResult>;
  /** Seals state for another execution (local activity only): a MAC with the store's seal key, bound to this execution. */
  sealState(input: SealStateInput): Promise<string>;
  /** Verifies the seal of a continued execution's carried state (local activity only). */
  verifySeal(input: VerifySealInput): Promise<VerifySealResult>;
  callModel(input: CallModelInput): Promise<CallModelResult>;
  prepareAndCallModel(input: PrepareAndCallModelInput): Promise<PrepareAndCallModelResult>;
  compensateCall(input: CompensateInput): Promise<ToolActivityResult>;
  recordRun(input: RecordRunInput): Promise<void>;
  /** Books a call against the run's quotas and rate limits in the run store, after policy and approval allowed it and before its tool runs. */
  reserveQuota(input: ReserveQuotaInput): Promise<ReserveQuotaResult>;
  /** Releases a failed call's reservations, or all a run's held ones as it ends. */
  settleQuota(input: SettleQuotaInput): Promise<number>;
  /** What a delegate of this run used, read from its trail in the run store: a cancelled delegate returns no outcome. */
  delegateSpending(input: DelegateSpendingInput): Promise<DelegateSpendingResult>;
}

export interface DelegateSpendingInput {
  /** The delegating run (the one that asks). */
  runId: string;
  /** The delegate's run id. */
  delegate: string;
}

export type DelegateSpendingResult = { used: DelegateUsage } | { refused: string };

export type ToolActivity = (input: ToolActivityInput) => Promise<ToolActivityResult>;

/** Error types the workflow never retries. */
export const NON_RETRYABLE_ERRORS = ['SlackNotifyError', 'ToolError', 'ToolInputError', 'ModelConfigError', 'DefinitionError', 'PolicyError', 'ModelCallError', 'RunInputError', 'ActivityRefused'] as const;
