import { patched, setCurrentDetails, upsertSearchAttributes, workflowInfo, type CancellationScope, type ChildWorkflowHandle } from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { CallModelResult, GrantRef, ModelSpendInput, SealedSpend } from '../../activities/activity-types';
import {
  argsSchemaOf,
  digestOf,
  emptyLoopState,
  emptyUsage,
  redactBySchema,
  spentOf,
  type ApprovalRequirement,
  type AuditEventType,
  type Budgets,
  type CallProposal,
  type CompiledPolicy,
  type GovernEvent,
  type GovernState,
  type Policy,
} from '../../governance/workflow-safe';
import type { MessageRow } from '../../store/run-store';
import { RunTelemetry } from '../../telemetry/workflow-events';
import { ApprovalDesk } from '../approval-desk';
import { APPROVALS_MEMO_PATCH } from '../approvals-memo';
import { AuditLog } from '../audit-log';
import type { OperatorInput } from '../messages';
import { compiledPolicy } from '../policy-cache';
import { ShadowDecider } from '../shadow-decider';
import { statusSearchAttribute } from '../search-attributes';
import { text } from '../message-values';
import type { AgentRunInput, CallRef, CompensationStep, DelegatedBy, DelegationView, PendingApproval, PreparedRun, RunOutcome, RunPhase, RunStatusView, ScriptTurn, ToolSpec } from '../run-types';
import { verifier } from './activities';
import { preparedDigest } from './patches';
import { RunQuotas } from './quotas';
import type { RunEnd } from './run-end';
import type { agentRun } from '../agent-run';

/** One proposed call of the current turn and where it stands (shown in status and the UI's details). */
export interface CallInFlight {
  call: CallProposal;
  /** Its place in the model's answer. */
  index: number;
  seq: number;
  spec: ToolSpec | undefined;
  line: string;
  /** The approval the call waits for, and the requirement that asked for it. */
  approvalId?: string;
  requirement?: ApprovalRequirement;
  /** A delegation that may still start this turn: its share of the budgets is kept for it. */
  delegationWaiting?: boolean;
}

function errorRow(seq: number, call: CallProposal, message: string): MessageRow {
  return {
    seq,
    message: { role: 'tool', content: [{ type: 'tool-result', toolCallId: call.id, toolName: call.name, output: { type: 'error-text', value: message } }] },
  };
}

/** A delegate's run this run started and waits for. */
export interface RunningDelegate {
  handle: ChildWorkflowHandle<typeof agentRun>;
  ceiling: Budgets;
}

/** The token and cost limits of a set of budgets (what the model activity checks the sealed spend against); undefined when it sets none. */
function spendLimits(budgets: Budgets | undefined): Budgets | undefined {
  if (!budgets) return undefined;
  const { maxInputTokens, maxOutputTokens, maxCostUsd } = budgets;
  const limits: Budgets = { ...(maxInputTokens !== undefined ? { maxInputTokens } : {}), ...(maxOutputTokens !== undefined ? { maxOutputTokens } : {}), ...(maxCostUsd !== undefined ? { maxCostUsd } : {}) };
  return Object.keys(limits).length > 0 ? limits : undefined;
}

/**
 * What one execution of a run knows: its governance state, its audit log and the views people
 * read (status, details, search attributes). The run's roles (lifecycle, tool calls, delegation,
 * operator controls, compensation) share it and change it; it records every event through one
 * `record`, so the audit log and the run's telemetry never disagree.
 */
export class RunState {
  readonly runId = workflowInfo().workflowId;
  /** Whether this execution emits fewer commands (FEWER_COMMANDS); set as it starts. */
  fewerCommands = false;
  /** Agent and requester search attributes not upserted yet (FEWER_COMMANDS): they go with the next status. */
  identityPending: SearchAttributeUpdatePair[] = [];
  prepared!: PreparedRun;
  /** Whether this execution hands its grant to effectful activities (GRANTS); set as it starts. */
  grants = false;
  /** Whether this execution anchors its audit head every N turns rather than every turn (TURNS_V2); set as it starts. */
  sparseAnchors = false;
  /** Whether each model call is handed the run's sealed model spend (TURNS_V2, and carried state that has it); set as it starts. */
  sealsSpend = false;
  /** The run's own model spend as the model activity sealed it with its last answer. */
  spent: SealedSpend = { step: 0, inputTokens: 0, outputTokens: 0, costUsd: 0, seal: '' };
  /** `preparedDigest` of the preparation as the worker handed it: what its grant covers. */
  private preparedDigest = '';
  policy!: CompiledPolicy;
  shadow = ShadowDecider.none();
  readonly tools = new Map<string, ToolSpec>();

  gov: GovernState = { usage: emptyUsage(), loop: emptyLoopState(), stoppedTools: [] };
  audit = new AuditLog();
  /** Governance facts for traces and metrics; reports nothing unless the worker traces. */
  readonly telemetry: RunTelemetry;
  messageCount = 0;
  pendingRows: MessageRow[] = [];
  startedAtMs = Date.now();
  stepsThisExecution = 0;
  executedCalls: CompensationStep[] = [];
  notUndoable: CallRef[] = [];
  /** The runs this one delegated to (status shows them), and those still running (pause, resume and rollback reach them). */
  delegations: DelegationView[] = [];
  readonly running = new Map<string, RunningDelegate>();
  lastDecision: RunStatusView['lastDecision'] = null;

  phase: RunPhase = 'starting';
  paused = false;
  /** The policy paused the run (the loop breaker): only a verified operator may let it go on. */
  pausedByPolicy = false;
  /** Digests of the signed operator commands counted so far (each counts once). */
  usedCommands: string[] = [];
  rollbackRequest: OperatorInput | null = null;
  /** The scopes of the tool calls running now: a rollback cancels them (CANCEL_TOOLS). */
  readonly toolScopes = new Set<CancellationScope>();
  ending: RunEnd | null = null;
  outcome: RunOutcome | null = null;
  inFlight: CallInFlight[] = [];
  /** The first model call's answer, when the run's preparation made it. */
  firstAnswer: CallModelResult | null = null;
  private details = 'starting';
  private reportedStatus = '';

  readonly desk: ApprovalDesk;
  /** The run's part in fleet quotas and rate limits. */
  readonly quotas = new RunQuotas(this);

  /** A local activity, after which this activation's events carry the time it was called at (`AuditLog.pin`). */
  async local<T>(call: () => Promise<T>): Promise<T> {
    const at = Date.now();
    try {
      return await call();
    } finally {
      this.audit.pin(at);
    }
  }

  /** Takes up a preparation as the worker handed it (with its grant, under GRANTS). */
  setPrepared(prepared: PreparedRun): void {
    this.prepared = prepared;
    if (this.grants) this.preparedDigest = preparedDigest(prepared);
  }

  /** The run's grant as effectful activities check it; none for an execution started before grants. */
  grantRef(): GrantRef | undefined {
    return this.grants ? { digest: this.preparedDigest, seal: this.prepared.grant ?? null } : undefined;
  }

  /** The fields an effectful activity's input gets for a call: the run's grant and the call's seal (under GRANTS). */
  grantFor(callSeal: string | undefined): { grant?: GrantRef; proposal?: string | null } {
    const grant = this.grantRef();
    return grant ? { grant, proposal: callSeal ?? null } : {};
  }

  constructor(readonly input: AgentRunInput) {
    this.telemetry = new RunTelemetry(input.agent);
    this.desk = new ApprovalDesk({
      runId: this.runId,
      record: (type, data) => this.record(type, data),
      rollingBack: () => this.rollbackRequest !== null,
      verify: (decision) => this.local(() => verifier.verifyDecision(decision)),
      pending: () => this.pendingApprovals(),
      writeMemo: (fields) => this.audit.write(fields),
      memoPatched: () => this.fewerCommands || patched(APPROVALS_MEMO_PATCH),
    });
  }

  /** Appends one event to the run's audit chain and tells the run's telemetry. */
  record(type: AuditEventType, data: Record<string, unknown>): void {
    this.audit.record(type, data);
    this.telemetry.observe(type, data);
  }

  recordAll(events: readonly GovernEvent[]): void {
    for (const e of events) this.record(e.type, e.data);
  }

  /** The conversation rows not stored yet, in order; the next activity appends them. */
  takePending(): MessageRow[] {
    const rows = this.pendingRows.sort((a, b) => a.seq - b.seq);
    this.pendingRows = [];
    return rows;
  }

  /** A call's arguments as people may see them: sensitive fields hidden by the tool's schema. */
  redact(tool: string, args: Record<string, unknown>): Record<string, unknown> {
    const redacted = redactBySchema(args, argsSchemaOf(this.tools.get(tool)));
    return typeof redacted === 'object' && redacted !== null && !Array.isArray(redacted) ? (redacted as Record<string, unknown>) : { arguments: redacted };
  }

  elapsed(): number {
    return Date.now() - this.startedAtMs;
  }

  /** The policy, knowing which tools the agent really has: a listed tool the agent lacks is denied. */
  compile(policy: Policy): CompiledPolicy {
    return compiledPolicy(policy, this.prepared.agent.tools.map((t) => t.name));
  }

  runFacts() {
    // The run's own step; tool calls, cost and tokens with its delegates' (what its budgets count).
    const usage = { ...spentOf(this.gov), steps: this.gov.usage.steps };
    return {
      id: this.runId,
      requester: this.prepared.requester.id,
      requesterVerified: this.prepared.requester.verified,
      tenant: this.prepared.tenant ?? '',
      step: usage.steps,
      toolCalls: usage.toolCalls,
      costUsd: usage.costUsd,
      inputTokens: usage.inputTokens,
      outputTokens: usage.outputTokens,
    };
  }

  statusName(): string {
    if (this.outcome) return this.outcome.status;
    if (this.paused) return 'paused';
    if (this.desk.hasPending()) return 'awaiting_approval';
    return 'running';
  }

  setLine(f: CallInFlight, line: string): void {
    f.line = line;
    const calls = this.inFlight.map((c) => `${c.call.name} ${c.line}`).join('; ');
    this.report(this.statusName(), `step ${this.gov.usage.steps}: ${calls}`);
  }

  /** Keeps the WardenStatus search attribute (and a pending agent and requester, in the same upsert) and the UI's current-details line up to date. */
  report(status: string, details?: string): void {
    if (details) this.details = details;
    setCurrentDetails(this.details);
    if (status !== this.reportedStatus || this.identityPending.length > 0) {
      this.reportedStatus = status;
      upsertSearchAttributes([...this.identityPending, { key: statusSearchAttribute, value: status }]);
      this.identityPending = [];
    }
  }

  get currentDetails(): string {
    return this.details;
  }

  /** Pauses or resumes the run: audited, reported, and shown on its pending approvals. */
  setPaused(paused: boolean, input?: OperatorInput, verified?: boolean): void {
    if (this.paused === paused) return;
    this.paused = paused;
    const by = text(input?.by) ?? 'an operator';
    this.record(paused ? 'paused' : 'resumed', { by, reason: text(input?.reason), ...(verified !== undefined ? { verified } : {}) });
    this.report(this.statusName(), paused ? `paused by ${by}` : `resumed by ${by}`);
    // Pending approvals show whether the run is paused.
    this.desk.publish();
  }

  pendingApprovals(): PendingApproval[] {
    const delegatedBy = this.delegatedBy();
    const tenant = this.prepared?.tenant;
    const pending = this.desk.view(this.paused);
    return delegatedBy || tenant !== undefined ? pending.map((a) => ({ ...a, ...(delegatedBy ? { delegatedBy } : {}), ...(tenant !== undefined ? { tenant } : {}) })) : pending;
  }

  delegatedBy(): DelegatedBy | undefined {
    const d = this.input.delegation;
    return d && { runId: d.runId, agent: d.agent, callId: d.callId };
  }

  /** The delegating runs of this run, nearest first. */
  lineage(): string[] {
    const d = this.input.delegation;
    return d ? (d.lineage ?? [d.runId]) : [];
  }

  /** A call that does not run: the model is told why (an error result at its seq), the status line says so. */
  settle(f: CallInFlight, line: string, message: string): void {
    f.delegationWaiting = false;
    this.pendingRows.push(errorRow(f.seq, f.call, message));
    this.setLine(f, line);
  }

  /** What a model call is handed of the run's spend (TURNS_V2): the sealed spend so far, the price it counts this call at, the budgets it must stay under. */
  spendInput(): { spend?: ModelSpendInput } {
    if (!this.sealsSpend) return {};
    const price = this.prepared.policy.pricing[this.prepared.agent.modelId];
    const budgets = spendLimits(this.prepared.policy.budgets);
    const ceiling = spendLimits(this.input.delegation?.ceiling);
    // Only what the check needs travels (most runs: the sealed spend alone).
    return { spend: { spent: this.spent, ...(price ? { price } : {}), ...(budgets ? { budgets } : {}), ...(ceiling ? { ceiling } : {}) } };
  }

  /** Takes up the spend a model answer was sealed with; an answer without one (not the worker's) leaves the next call nothing it accepts. */
  noteSpent(answer: CallModelResult): void {
    if (this.sealsSpend) this.spent = answer.spent ?? { ...this.spent, step: -1 };
  }

  /** Bound to the call's position and arguments: two calls sharing a model call id never share a key. */
  idempotencyKey(callId: string, seq: number, args: unknown): string {
    return 'idk_' + digestOf({ run: this.runId, first: workflowInfo().firstExecutionRunId, callId, seq, args }).slice(0, 32);
  }

  /** The run's own script turn for the current model call: turn i answers the i-th call. */
  scriptTurn(): ScriptTurn | null | undefined {
    const script = this.input.script;
    return script ? (script[this.gov.usage.steps - 1] ?? null) : undefined;
  }
}
