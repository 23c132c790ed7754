import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ContinueAsNew,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { CallModelResult, CoreActivities, NON_RETRYABLE_ERRORS, ToolActivity, ToolActivityInput, VerifyOperatorResult } from '../activities/types';
import {
  type CompiledPolicy,
  admitApproved,
  addDelegateUsage,
  budgetsLeft,
  checkModelCallBudgets,
  costOf,
  delegationCeiling,
  emptyCeiling,
  spentOf,
  denialMessage,
  digestOf,
  durationMs,
  emptyLoopState,
  emptyUsage,
  argsSchemaOf,
  governCall,
  redactBySchema,
  sameRequirement,
  type ApprovalRequirement,
  type AuditEventType,
  type BudgetExceeded,
  type Budgets,
  type CallProposal,
  type Decision,
  type GovernEvent,
  type GovernState,
  type OperatorAction,
  type Policy,
  type RetrySettings,
} from '../governance/sandbox';
import type { MessageRow } from '../store/types';
import { ApprovalDesk, type ApprovalOutcome } from './approval-desk';
import { APPROVALS_MEMO_PATCH } from './approvals-memo';
import { AuditLog } from './audit-log';
import { ShadowDecider } from './shadow';
import { compiledPolicy } from './shared';
import { failureMessage, text } from './values';
import { RunTelemetry } from '../telemetry/workflow-events';
import {
  applyPolicySignal,
  approveSignal,
  approveUpdate,
  auditTrailQuery,
  pauseSignal,
  pendingApprovalsQuery,
  rejectSignal,
  rejectUpdate,
  resumeSignal,
  rollbackPlanQuery,
  rollbackSignal,
  statusQuery,
  type ApplyPolicyInput,
  type ApproveInput,
  type OperatorInput,
  type RejectInput,
} from './messages';
import { agentSearchAttribute, requesterSearchAttribute, statusSearchAttribute } from './search-attributes';
import type {
  AgentRunInput,
  CarriedState,
  CallRef,
  CompensationStep,
  DelegationInput,
  DelegationView,
  PendingApproval,
  PreparedRun,
  RollbackReport,
  RunOutcome,
  RunPhase,
  RunStatus,
  RunStatusView,
  ScriptTurn,
  ToolSpec,
} from './types';
import { delegateRunId } from './delegation';
import { openSignal, refusePlaintextStart, sealedSignal, sealedValidator } from './plaintext';

const nonRetryableErrorTypes: (typeof NON_RETRYABLE_ERRORS)[number][] = [
  'SlackNotifyError',
  'ToolError',
  'ToolInputError',
  'ModelConfigError',
  'DefinitionError',
  'PolicyError',
  'ModelCallError',
  'RunInputError',
];

const core = proxyActivities<CoreActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', maximumAttempts: 10, nonRetryableErrorTypes },
});

/** Decisions are verified on the worker (its current keyring), close by: a local activity. */
const verifier = proxyLocalActivities<CoreActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200ms', maximumAttempts: 3, nonRetryableErrorTypes },
});

/**
 * The run's last write to the run store (as it ends or continues as new), under FEWER_COMMANDS: a
 * local activity, with no task round trip of its own. The write is idempotent (rows are keyed by
 * seq), so a workflow task retried after it ran does no harm.
 */
const recorder = proxyLocalActivities<CoreActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1s', maximumAttempts: 10, nonRetryableErrorTypes },
});

const notifier = proxyActivities<CoreActivities>({
  startToCloseTimeout: '30 seconds',
  // A retried post may show a second message; its buttons act on the same approval.
  retry: { initialInterval: '2s', maximumAttempts: 3, nonRetryableErrorTypes },
});

const model = proxyActivities<CoreActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 6, nonRetryableErrorTypes },
});

/** How a run ends. Thrown inside the run, caught once, at the top: the one way out. */
class RunEnd extends Error {
  override name = 'RunEnd';
  constructor(
    readonly status: RunStatus,
    readonly reason: string,
    readonly text = '',
    readonly budget?: BudgetExceeded,
  ) {
    super(reason);
  }
}

/** One proposed call of the current turn and where it stands (shown in status and the UI's details). */
interface CallInFlight {
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

/** A delegate's run this run started and waits for. */
interface RunningDelegate {
  handle: ChildWorkflowHandle<typeof agentRun>;
  ceiling: Budgets;
}

/** What becomes of a call: it runs, or it does not and the model is told why. */
type ApprovalVerdict = { kind: 'run' } | { kind: 'refuse'; message: string };

/** Governance's answer for a call of the current turn. */
type Verdict = ApprovalVerdict | { kind: 'approve' };


const MAX_TEXT_IN_AUDIT = 500;

/** Runs started under this patch prepare and make their first model call in one activity (`prepareAndCallModel`). */
const PREPARE_WITH_FIRST_MODEL_CALL = 'prepare-with-first-model-call';

/**
 * Executions started under this patch emit fewer commands: the patches before it are implied (no
 * marker and change-version upsert of their own), the agent and requester go in the upsert of the
 * run's first status (which the first answer may already make awaiting_approval), and the last
 * write to the run store is a local activity. Asked once, as the execution starts, so an
 * execution recorded before it keeps its commands throughout.
 */
const FEWER_COMMANDS = 'warden-fewer-commands';

/**
 * Executions under this patch seal the state they hand to another execution (continue-as-new,
 * a delegate's start) and accept carried state only with a seal the worker verifies.
 */
const SEALED_STATE = 'warden-sealed-state';

/**
 * Executions under this patch count resume, rollback and applyPolicy only as signed operator
 * commands the worker verifies (a pause stays open to anyone: it asks for a safer state).
 */
const OPERATOR_AUTHORITY = 'warden-operator-authority';

/** How many signed operator commands a run remembers, so none counts twice. */
const MAX_USED_COMMANDS = 200;

/** The input as the next execution receives it (JSON), without its seal: what a seal covers. */
function sealedDigest(input: AgentRunInput): string {
  const { seal: _seal, ...rest } = JSON.parse(JSON.stringify(input)) as AgentRunInput;
  return digestOf(rest);
}

function errorRow(seq: number, call: CallProposal, message: string): MessageRow {
  return {
    seq,
    message: { role: 'tool', content: [{ type: 'tool-result', toolCallId: call.id, toolName: call.name, output: { type: 'error-text', value: message } }] },
  };
}

function retryPolicy(...layers: (RetrySettings | undefined)[]): ActivityOptions['retry'] {
  const merged: RetrySettings = { maximumAttempts: 3, initialInterval: '1s' };
  for (const layer of layers) Object.assign(merged, layer);
  return {
    maximumAttempts: merged.maximumAttempts,
    initialInterval: merged.initialInterval === undefined ? undefined : durationMs(merged.initialInterval),
    backoffCoefficient: merged.backoffCoefficient,
    maximumInterval: merged.maximumInterval === undefined ? undefined : durationMs(merged.maximumInterval),
    nonRetryableErrorTypes: [...nonRetryableErrorTypes, ...(merged.nonRetryableErrorTypes ?? [])],
  };
}

/** One governed agent run: the loop, its state, and the handlers people use to steer it. */
class AgentRun {
  private readonly runId = workflowInfo().workflowId;
  /** Whether this execution emits fewer commands (FEWER_COMMANDS); set as it starts. */
  private fewerCommands = false;
  /** Agent and requester search attributes not upserted yet (FEWER_COMMANDS): they go with the next status. */
  private identityPending: SearchAttributeUpdatePair[] = [];
  private prepared!: PreparedRun;
  private policy!: CompiledPolicy;
  private shadow = ShadowDecider.none();
  private readonly tools = new Map<string, ToolSpec>();

  private gov: GovernState = { usage: emptyUsage(), loop: emptyLoopState(), stoppedTools: [] };
  private audit = new AuditLog();
  /** Governance facts for traces and metrics; reports nothing unless the worker traces. */
  private readonly telemetry: RunTelemetry;
  private messageCount = 0;
  private pendingRows: MessageRow[] = [];
  private startedAtMs = Date.now();
  private stepsThisExecution = 0;
  private executedCalls: CompensationStep[] = [];
  private notUndoable: CallRef[] = [];
  /** The runs this one delegated to (status shows them), and those still running (pause, resume and rollback reach them). */
  private delegations: DelegationView[] = [];
  private readonly running = new Map<string, RunningDelegate>();
  private lastDecision: RunStatusView['lastDecision'] = null;

  private phase: RunPhase = 'starting';
  private paused = false;
  /** The policy paused the run (the loop breaker): only a verified operator may let it go on. */
  private pausedByPolicy = false;
  /** Digests of the signed operator commands counted so far (each counts once). */
  private usedCommands: string[] = [];
  private rollbackRequest: OperatorInput | null = null;
  private ending: RunEnd | null = null;
  private outcome: RunOutcome | null = null;
  private readonly desk = new ApprovalDesk({
    runId: this.runId,
    record: (type, data) => this.record(type, data),
    rollingBack: () => this.rollbackRequest !== null,
    verify: (input) => verifier.verifyDecision(input),
    pending: () => this.pendingApprovals(),
    writeMemo: (fields) => this.audit.write(fields),
    memoPatched: () => this.fewerCommands || patched(APPROVALS_MEMO_PATCH),
  });
  private inFlight: CallInFlight[] = [];
  /** The first model call's answer, when the run's preparation made it. */
  private firstAnswer: CallModelResult | null = null;
  private details = 'starting';
  private reportedStatus = '';

  constructor(private readonly input: AgentRunInput) {
    this.telemetry = new RunTelemetry(input.agent);
    // Handlers are registered before the first await so the Temporal UI lists them from the start
    // and no early message is dropped.
    setHandler(statusQuery, () => this.statusView(), { description: 'Phase, step, budgets used and left, pending approvals, last decision, outcome.' });
    setHandler(pendingApprovalsQuery, () => this.pendingApprovals(), { description: 'Calls waiting for a human decision: id, tool, redacted args, rule, approvers, expiry.' });
    setHandler(auditTrailQuery, () => this.audit.view(), { description: 'The hash-chained audit events of this run (earlier executions are in the run store).' });
    setHandler(rollbackPlanQuery, () => this.rollbackPlan(), { description: 'The compensations a rollback would run, newest first (arguments redacted).' });
    // Messages that act need encrypted input where the worker holds a payload key; a pause does not (./plaintext.ts).
    const record = (type: AuditEventType, data: Record<string, unknown>) => this.record(type, data);
    setHandler(approveSignal, sealedSignal('approve', record, (decision: ApproveInput) => this.desk.decide('approve', decision).then(() => undefined)), {
      description: 'Approve a pending call: {"approvalId": "apr_…", "approver": "alice", "comment": "ok"} (counts only when signed, unless the worker accepts unsigned decisions)',
    });
    setHandler(rejectSignal, sealedSignal('reject', record, (decision: RejectInput) => this.desk.decide('reject', decision).then(() => undefined)), {
      description: 'Reject a pending call: {"approvalId": "apr_…", "approver": "alice", "reason": "too much"}',
    });
    setHandler(approveUpdate, (decision) => this.desk.decide('approve', decision), {
      validator: sealedValidator('approve', (decision: ApproveInput) => this.desk.validate('approve', decision)),
      description: 'Approve a pending call and learn at once whether it counted: {"approvalId", "approver", "comment", "signature"}',
    });
    setHandler(rejectUpdate, (decision) => this.desk.decide('reject', decision), {
      validator: sealedValidator('reject', (decision: RejectInput) => this.desk.validate('reject', decision)),
      description: 'Reject a pending call and learn at once whether it counted: {"approvalId", "approver", "reason", "signature"}',
    });
    setHandler(pauseSignal, openSignal('pause', record, (by?: OperatorInput) => this.onPause(by)), { description: 'Pause before the next model or tool call: {"by": "you", "reason": "…"}' });
    setHandler(resumeSignal, sealedSignal('resume', record, (by?: OperatorInput) => this.onResume(by)), { description: 'Resume a paused run: {"by": "you"}' });
    setHandler(rollbackSignal, sealedSignal('rollback', record, (by?: OperatorInput) => this.onRollback(by)), { description: 'Undo what the run did (compensations, newest first) and end it: {"by": "you", "reason": "…"}' });
    setHandler(applyPolicySignal, sealedSignal('applyPolicy', record, (input?: ApplyPolicyInput) => this.onApplyPolicy(input)), {
      description: "Take up the agent's current policy from the worker (policy directory or `warden policy apply`): {\"by\": \"you\"}",
    });
  }

  async execute(): Promise<RunOutcome> {
    try {
      await this.start();
      for (;;) {
        await this.turn();
        if (this.shouldContinueAsNew()) await this.continueAsNew();
      }
    } catch (err) {
      if (err instanceof ContinueAsNew) throw err;
      if (err instanceof RunEnd) return this.finish(err);
      if (isCancellation(err)) {
        await CancellationScope.nonCancellable(() => this.finish(new RunEnd('cancelled', 'the run was cancelled')));
        throw err;
      }
      return this.finish(new RunEnd('failed', failureMessage(err)));
    }
  }

  // ---------------------------------------------------------------- lifecycle

  private async start(): Promise<void> {
    this.fewerCommands = patched(FEWER_COMMANDS);
    const carried = this.input.carried;
    if (carried) {
      // Only Temporal sets continuedFromExecutionRunId: a start input cannot pass itself off as a continuation.
      const from = workflowInfo().continuedFromExecutionRunId;
      if (!from) {
        throw ApplicationFailure.nonRetryable('refused: the start input carries run state, which is accepted only from a continue-as-new of the same run', 'RunInputError');
      }
      // Cron and retry runs are continued too, with the first input again: only a seal of the
      // execution before this one, made by its worker as it continued as new, proves where the state came from.
      if (patched(SEALED_STATE)) {
        const verdict = await verifier.verifySeal({ kind: 'carry', from: { workflowId: this.runId, runId: from }, digest: sealedDigest(this.input), seal: this.input.seal });
        if ('refused' in verdict) throw ApplicationFailure.nonRetryable(`refused: ${verdict.refused}`, 'RunInputError');
      }
      this.restore(carried);
      this.record('run_continued', { execution: carried.executions + 1, messageCount: carried.messageCount });
    } else {
      const delegation = this.input.delegation;
      if (delegation !== undefined) {
        // Only Temporal sets the parent: a start input cannot pass itself off as a delegating run's child (and its requester).
        if (workflowInfo().parent?.workflowId !== delegation.runId) {
          throw ApplicationFailure.nonRetryable('refused: the start input says the run was delegated, which is accepted only from the delegating run itself (as its child workflow)', 'RunInputError');
        }
      }
      const prepare = {
        runId: this.runId,
        agent: this.input.agent,
        requester: this.input.requester,
        goal: this.input.goal,
        startedAtMs: workflowInfo().startTime.getTime(),
        ...(this.input.policy !== undefined ? { policy: this.input.policy } : {}),
        ...(this.input.requesterProof !== undefined ? { requesterProof: this.input.requesterProof } : {}),
        // A delegate's start input is checked by the worker against the delegating run's seal.
        ...(delegation !== undefined ? { delegation: { parent: { workflowId: workflowInfo().parent?.workflowId ?? '', runId: workflowInfo().parent?.runId ?? '' }, digest: sealedDigest(this.input), seal: this.input.seal } } : {}),
      };
      const goalRow: MessageRow = { seq: 0, message: { role: 'user', content: this.input.goal } };
      // One activity prepares the run and makes its first model call: a round trip fewer for every
      // run. Not when an operator has already paused or rolled it back: then nothing is asked first.
      if (!this.paused && !this.rollbackRequest && (this.fewerCommands || patched(PREPARE_WITH_FIRST_MODEL_CALL))) {
        const script = this.input.script;
        const first = await model.prepareAndCallModel.executeWithOptions({ summary: 'prepare the run, model turn 1' }, [
          {
            prepare,
            model: { runId: this.runId, agent: this.input.agent, step: 1, upTo: 1, append: [goalRow], audit: [], ...(script ? { scriptTurn: script[0] ?? null } : {}) },
            ...(this.telemetry.enabled ? { withPrice: true } : {}),
            ...(delegation ? { ceiling: delegation.ceiling } : {}),
          },
        ]);
        this.prepared = first.prepared;
        this.firstAnswer = first.answer;
      } else {
        this.prepared = await core.prepareRun(prepare);
      }
      // A delegate works for its delegating run's requester, as that run's worker established them.
      if (delegation) this.prepared = { ...this.prepared, requester: delegation.requester };
      this.policy = this.compile(this.prepared.policy);
      this.shadow = ShadowDecider.from(this.prepared.shadow, this.prepared.agent.tools.map((t) => t.name));
      this.record('run_started', {
        agent: this.input.agent,
        requester: this.prepared.requester.id,
        requesterVerified: this.prepared.requester.verified,
        requesterChannel: this.prepared.requester.channel ?? null,
        ...(this.prepared.requester.unverified ? { requesterUnverified: this.prepared.requester.unverified } : {}),
        goal: this.input.goal.slice(0, MAX_TEXT_IN_AUDIT),
        policyVersion: this.policy.version,
        policySource: this.prepared.policySource,
        model: this.prepared.agent.modelId,
        ...this.shadow.startFields(),
        ...(delegation ? { delegatedBy: this.delegatedBy(), ceiling: delegation.ceiling, depth: delegation.depth } : {}),
      });
      // With the first model call made, the goal is in the store already, and the answer is the first step's.
      this.messageCount = 1;
      if (this.firstAnswer) {
        this.beginStep();
        this.account(this.firstAnswer);
      } else {
        this.pendingRows.push(goalRow);
      }
    }
    for (const spec of this.prepared.agent.tools) this.tools.set(spec.name, spec);
    const budgets = this.prepared.policy.budgets;
    if (budgets.maxCostUsd !== undefined && !this.prepared.policy.pricing[this.prepared.agent.modelId]) {
      throw new RunEnd('failed', `the policy sets budgets.maxCostUsd but pricing has no entry for model "${this.prepared.agent.modelId}"`);
    }
    if (this.input.delegation?.ceiling.maxCostUsd !== undefined && !this.prepared.policy.pricing[this.prepared.agent.modelId]) {
      // Unpriced, its spend would be $0 to the delegating run's cost budget.
      throw new RunEnd('failed', `the delegating run has a cost budget, but this agent's policy has no pricing entry for model "${this.prepared.agent.modelId}"`);
    }
    const identity: SearchAttributeUpdatePair[] = [
      { key: agentSearchAttribute, value: this.input.agent },
      { key: requesterSearchAttribute, value: this.prepared.requester.id },
    ];
    if (this.fewerCommands) {
      // With the run's first status report: the first answer's calls may change the status at once
      // (to awaiting_approval), and every path reports before the run waits on anything.
      this.identityPending = identity;
    } else {
      upsertSearchAttributes(identity);
      this.report('running');
    }
  }

  private restore(c: CarriedState): void {
    this.prepared = c.prepared;
    this.policy = this.compile(c.prepared.policy);
    this.gov = c.govern;
    this.audit = new AuditLog(c.auditHead);
    this.messageCount = c.messageCount;
    this.startedAtMs = c.startedAtMs;
    this.executedCalls = c.executedCalls;
    this.notUndoable = c.notUndoable;
    this.delegations = c.delegations ?? [];
    this.lastDecision = c.lastDecision;
    this.paused = c.paused;
    this.pausedByPolicy = c.pausedByPolicy ?? false;
    this.usedCommands = c.usedCommands ?? [];
    this.shadow = ShadowDecider.from(c.shadow?.source, c.prepared.agent.tools.map((t) => t.name), c.shadow);
  }

  /** The policy, knowing which tools the agent really has: a listed tool the agent lacks is denied. */
  private compile(policy: Policy): CompiledPolicy {
    return compiledPolicy(policy, this.prepared.agent.tools.map((t) => t.name));
  }

  private shouldContinueAsNew(): boolean {
    const every = this.input.continueAsNewAfterSteps;
    return workflowInfo().continueAsNewSuggested || (every !== undefined && this.stepsThisExecution >= every);
  }

  private async continueAsNew(): Promise<never> {
    await this.flush();
    // Messages being handled must finish first, or their effect would be lost.
    await condition(allHandlersFinished);
    const carried: CarriedState = {
      prepared: { ...this.prepared, policy: this.policy.policy },
      govern: this.gov,
      auditHead: this.audit.current,
      messageCount: this.messageCount,
      startedAtMs: this.startedAtMs,
      executions: (this.input.carried?.executions ?? 1) + 1,
      executedCalls: this.executedCalls,
      notUndoable: this.notUndoable,
      lastDecision: this.lastDecision,
      paused: this.paused,
      ...(this.delegations.length > 0 ? { delegations: this.delegations } : {}),
      pausedByPolicy: this.pausedByPolicy,
      ...(this.usedCommands.length > 0 ? { usedCommands: this.usedCommands } : {}),
      ...(this.shadow.carry() ? { shadow: this.shadow.carry() } : {}),
    };
    const { seal: _previous, ...start } = this.input;
    const next: AgentRunInput = { ...start, carried };
    if (patched(SEALED_STATE)) next.seal = await verifier.sealState({ kind: 'carry', to: this.runId, digest: sealedDigest(next) });
    return continueAsNew<typeof agentRun>(next);
  }

  private async finish(end: RunEnd): Promise<RunOutcome> {
    let report: RollbackReport | undefined;
    if (end.status === 'failed' && this.prepared?.policy.onRunFailure === 'rollback' && this.executedCalls.length > 0) {
      end = new RunEnd('rolled_back', `run failed (${end.reason}); rolled back as the policy says`);
    }
    if (end.status === 'rolled_back') report = await this.rollback();
    this.desk.cancelPending();
    // Everything the run caused, its delegates' runs included (`delegated` says how much of it was theirs).
    const spent = spentOf(this.gov);
    const usage = { inputTokens: spent.inputTokens, outputTokens: spent.outputTokens, costUsd: spent.costUsd };
    const delegated = this.gov.delegated;
    this.record('run_finished', { status: end.status, reason: end.reason, steps: spent.steps, toolCalls: spent.toolCalls, usage, ...(delegated ? { delegated } : {}) });
    const outcome: RunOutcome = {
      status: end.status,
      reason: end.reason,
      text: end.text,
      steps: spent.steps,
      toolCalls: spent.toolCalls,
      usage,
      policyVersion: this.policy?.version ?? '',
      audit: this.audit.current,
    };
    if (end.budget) outcome.budget = end.budget;
    if (report) outcome.rollback = report;
    if (delegated) outcome.delegated = delegated;
    if (this.input.delegation) {
      // What the delegating run may still undo: rollback there reaches what this run did.
      outcome.undoable = this.executedCalls.map((step) => (step.runId ? step : { ...step, runId: this.runId, agent: this.input.agent, shownArgs: this.redact(step.tool, step.args) }));
      outcome.notUndoable = this.notUndoable.map((n) => (n.runId ? n : { ...n, runId: this.runId }));
    }
    this.outcome = outcome;
    this.phase = 'finished';
    this.inFlight = [];
    this.report(outcome.status, `${outcome.status}: ${outcome.reason}`);
    if (this.prepared) await this.flush();
    await condition(allHandlersFinished);
    return outcome;
  }

  private async flush(): Promise<void> {
    const audit = this.audit.unflushed();
    const append = this.takePending();
    if (audit.length > 0 || append.length > 0) {
      await (this.fewerCommands ? recorder : core).recordRun({ runId: this.runId, audit, append });
      this.audit.markFlushed(audit);
    }
    this.audit.anchor(this.desk.memoChange());
  }

  // ---------------------------------------------------------------- the loop

  private async turn(): Promise<void> {
    this.audit.anchor(this.desk.memoChange());
    await this.checkpoint('before the next model call');
    // The first answer may have come with the run's preparation (it is accounted for already).
    const answer = this.firstAnswer ?? (await this.askModel());
    this.firstAnswer = null;

    if (answer.calls.length === 0) throw new RunEnd('completed', 'the agent finished', answer.text);

    const firstSeq = this.messageCount;
    this.messageCount += answer.calls.length;
    this.phase = 'governing';
    // Every call is decided before any runs, in the order proposed: budgets and the loop detector
    // see the same sequence on replay, and one refusal never blocks an allowed sibling.
    this.inFlight = answer.calls.map((call, i) => ({ call, index: i, seq: firstSeq + i, spec: this.tools.get(call.name), line: 'deciding' }));
    const plans = this.inFlight.map((f) => this.govern(f));
    await Promise.all(this.inFlight.map((f, i) => this.carryOut(f, plans[i])));
    if (this.ending) throw this.ending;
  }

  /** One model call, within the budgets: the next answer, accounted for. */
  private async askModel(): Promise<CallModelResult> {
    const exceeded = checkModelCallBudgets(this.prepared.policy.budgets, this.input.delegation?.ceiling, spentOf(this.gov), this.elapsed());
    if (exceeded) {
      this.record('budget_exhausted', { ...exceeded });
      throw new RunEnd('budget_exhausted', exceeded.message, '', exceeded);
    }
    const step = this.beginStep();
    this.report('running', `step ${step}: asking the model`);
    const audit = this.audit.unflushed();
    const answer = await model.callModel.executeWithOptions({ summary: `model turn ${step}` }, [
      {
        runId: this.runId,
        agent: this.input.agent,
        step,
        upTo: this.messageCount,
        append: this.takePending(),
        audit,
        scriptTurn: this.scriptTurn(),
        ...(this.telemetry.enabled ? { price: this.prepared.policy.pricing[this.prepared.agent.modelId] ?? null } : {}),
      },
    ]);
    this.audit.markFlushed(audit);
    this.account(answer);
    return answer;
  }

  private beginStep(): number {
    this.gov.usage.steps += 1;
    this.stepsThisExecution += 1;
    this.phase = 'thinking';
    this.inFlight = [];
    return this.gov.usage.steps;
  }

  /** The answer of the current step: stored at the next message seq, its tokens and cost counted, audited. */
  private account(answer: CallModelResult): void {
    const usage = this.gov.usage;
    this.messageCount += 1;
    const cost = costOf(this.prepared.policy.pricing[this.prepared.agent.modelId], answer.usage.inputTokens, answer.usage.outputTokens);
    usage.inputTokens += answer.usage.inputTokens;
    usage.outputTokens += answer.usage.outputTokens;
    usage.costUsd += cost;
    this.record('model_turn', {
      step: usage.steps,
      inputTokens: answer.usage.inputTokens,
      outputTokens: answer.usage.outputTokens,
      costUsd: cost,
      calls: answer.calls.map((c) => c.name),
      text: answer.text.slice(0, MAX_TEXT_IN_AUDIT),
    });
  }

  /** Steps 1–3 of a call through `governCall`: run it, ask people, or refuse it with a message for the model. */
  private govern(f: CallInFlight): Verdict {
    const ctx = {
      policy: this.policy,
      agent: this.input.agent,
      tool: f.spec,
      run: this.runFacts(),
      elapsedMs: this.elapsed(),
      ...(this.ending ? { ending: this.ending.reason } : {}),
      ...(this.input.delegation ? { inherited: this.input.delegation.ceiling } : {}),
    };
    const result = governCall(this.gov, f.call, ctx);
    // Judged from the same state; only the comparison is kept (audited), never the shadow's plan or state.
    const shadowDiff = this.shadow.judge(this.gov, f.call, ctx, result);
    this.gov = result.state;
    this.recordAll(result.events);
    if (shadowDiff) this.record('policy_shadow_diff', { ...shadowDiff });
    if (result.decision) this.lastDecision = { ...result.decision, tool: f.call.name, callId: f.call.id };
    if (result.end) this.ending ??= new RunEnd(result.end.status, result.end.reason, '', result.end.budget);
    if (result.pause !== undefined) {
      this.pausedByPolicy = true;
      this.setPaused(true, { by: 'policy', reason: result.pause });
    }
    if (result.plan.kind === 'refuse') return { kind: 'refuse', message: result.plan.message };
    if (f.spec?.delegate !== undefined) f.delegationWaiting = true;
    if (result.plan.kind === 'approve' && result.decision) {
      f.requirement = result.plan.requirement;
      f.approvalId = this.requestApproval(f, result.decision, result.plan.requirement);
      return { kind: 'approve' };
    }
    return { kind: 'run' };
  }

  /** Steps 4–6: approval wait, the tool activity, the compensation plan. */
  private async carryOut(f: CallInFlight, plan: Verdict | undefined): Promise<void> {
    if (!plan || plan.kind === 'refuse') return this.settle(f, 'refused', plan?.message ?? 'not run');
    if (plan.kind === 'approve') {
      const verdict = await this.awaitApproval(f);
      if (verdict.kind === 'refuse') return this.settle(f, 'not run', verdict.message);
      const admitted = admitApproved(this.gov, f.call, this.policy, this.elapsed(), this.input.delegation?.ceiling);
      if (!admitted.ok) {
        this.recordAll([admitted.event]);
        this.ending ??= new RunEnd('budget_exhausted', admitted.exceeded.message, '', admitted.exceeded);
        return this.settle(f, 'not run', `not run: ${admitted.exceeded.message}`);
      }
      this.gov = admitted.state;
    }
    await this.checkpoint(`before ${f.call.name}`);
    if (this.ending) return this.settle(f, 'not run', `not run: ${this.ending.reason}`);
    if (!f.spec) return this.settle(f, 'refused', `not run: agent has no tool ${f.call.name}`);
    if (f.spec.delegate !== undefined) return this.delegate(f, f.spec.delegate);
    await this.runTool(f, f.spec);
  }

  private settle(f: CallInFlight, line: string, message: string): void {
    f.delegationWaiting = false;
    this.pendingRows.push(errorRow(f.seq, f.call, message));
    this.setLine(f, line);
  }

  // ---------------------------------------------------------------- delegation

  /**
   * Step 5 of a delegation: the delegate's run, as a child workflow, under its own policy and
   * inside a ceiling of this run's budgets; what it used is charged here, what it did joins the
   * rollback plan, and its answer (or why it stopped) is the call's result.
   */
  private async delegate(f: CallInFlight, agent: string): Promise<void> {
    const { call, seq } = f;
    this.phase = 'running_tools';
    const left = budgetsLeft(this.prepared.policy.budgets, this.input.delegation?.ceiling, spentOf(this.gov), this.elapsed());
    const others = this.inFlight.filter((o) => o !== f && o.delegationWaiting).length;
    const ceiling = delegationCeiling(left, [...this.running.values()].map((r) => r.ceiling), 1 + others);
    f.delegationWaiting = false;
    const runId = delegateRunId(this.runId, this.input.agent, agent, seq);
    const empty = emptyCeiling(ceiling);
    if (empty) {
      this.record('budget_exhausted', { callId: call.id, tool: call.name, delegation: runId, message: `the delegation could not start: ${empty}` });
      this.delegations.push({ callId: call.id, agent, runId, status: 'not_started', reason: empty });
      return this.settle(f, 'not run', `not run: the delegation to ${agent} could not start: ${empty}`);
    }
    const delegation: DelegationInput = {
      runId: this.runId,
      agent: this.input.agent,
      callId: call.id,
      requester: this.prepared.requester,
      ceiling,
      depth: (this.input.delegation?.depth ?? 0) + 1,
      lineage: this.lineage(),
    };
    const script = this.scriptTurn()?.toolCalls?.[f.index]?.script;
    const view: DelegationView = { callId: call.id, agent, runId, status: 'running' };
    this.delegations.push(view);
    this.record('delegation_started', { callId: call.id, tool: call.name, agent, runId, ceiling, depth: delegation.depth });
    this.setLine(f, `delegated to ${runId}`);
    let outcome: RunOutcome;
    try {
      const childInput: AgentRunInput = { agent, goal: typeof call.args.goal === 'string' ? call.args.goal : '', requester: this.prepared.requester.id, delegation, ...(script ? { script } : {}) };
      // The delegate's worker accepts the delegation only with this run's seal over its start input.
      if (patched(SEALED_STATE)) childInput.seal = await verifier.sealState({ kind: 'delegation', to: runId, digest: sealedDigest(childInput) });
      const handle = await startChild(agentRun, {
        workflowId: runId,
        args: [childInput],
        // A delegating run that ends any other way (terminated, timed out) asks its delegates to stop too.
        parentClosePolicy: 'REQUEST_CANCEL',
        staticSummary: `${agent}, delegated by ${this.runId} (${call.id})`,
      });
      this.running.set(runId, { handle, ceiling });
      if (this.paused) await this.tell(runId, pauseSignal, { by: 'the delegating run', reason: `${this.runId} is paused` });
      if (this.rollbackRequest) await this.tell(runId, rollbackSignal, { ...this.rollbackRequest, reason: `${this.runId} is rolling back` });
      outcome = await handle.result();
    } catch (err) {
      view.status = isCancellation(err) ? 'cancelled' : 'failed';
      view.reason = failureMessage(err);
      this.record('delegation_finished', { callId: call.id, agent, runId, status: view.status, error: view.reason });
      if (isCancellation(err)) throw err;
      this.settle(f, 'failed', `the delegation to ${agent} failed: ${view.reason}`);
      return;
    } finally {
      this.running.delete(runId);
    }
    const used = { steps: outcome.steps, toolCalls: outcome.toolCalls, ...outcome.usage };
    this.gov = { ...this.gov, delegated: addDelegateUsage(this.gov.delegated, used) };
    view.status = outcome.status;
    view.reason = outcome.reason;
    this.executedCalls.push(...(outcome.undoable ?? []));
    this.notUndoable.push(...(outcome.notUndoable ?? []));
    this.record('delegation_finished', {
      callId: call.id,
      agent,
      runId,
      status: outcome.status,
      reason: outcome.reason,
      used,
      ...(outcome.budget?.inherited ? { stoppedByCeiling: outcome.budget.limit } : {}),
      // The delegate's chain head: its trail, checked against this, cannot be rewritten unseen.
      audit: outcome.audit,
    });
    const answer = { status: outcome.status, ...(outcome.text ? { answer: outcome.text } : {}), ...(outcome.status === 'completed' ? {} : { reason: outcome.reason }), run: runId };
    this.pendingRows.push({
      seq,
      message: { role: 'tool', content: [{ type: 'tool-result', toolCallId: call.id, toolName: f.spec?.modelName ?? call.name, output: { type: 'json', value: answer } }] },
    });
    this.setLine(f, outcome.status === 'completed' ? 'done' : `${outcome.status}: ${outcome.reason}`);
  }

  /** Signals one running delegate (pause, resume, rollback); one that has just ended is no matter. */
  private async tell(runId: string, signal: typeof pauseSignal, input: OperatorInput): Promise<void> {
    const delegate = this.running.get(runId);
    if (!delegate) return;
    try {
      await delegate.handle.signal(signal, input);
    } catch (err) {
      if (isCancellation(err)) throw err;
      log.info('delegate not signalled', { delegate: runId, error: failureMessage(err) });
    }
  }

  private tellAll(signal: typeof pauseSignal, input: OperatorInput): Promise<void> {
    return Promise.all([...this.running.keys()].map((runId) => this.tell(runId, signal, input))).then(() => undefined);
  }

  private async runTool(f: CallInFlight, spec: ToolSpec): Promise<void> {
    const { call, seq } = f;
    this.phase = 'running_tools';
    this.setLine(f, 'running');
    this.record('tool_started', { callId: call.id, tool: call.name });
    const audit = this.audit.unflushed();
    const override = this.policy.toolPolicy(call.name);
    const options = { startToCloseTimeout: durationMs(override?.timeout ?? spec.timeout ?? '1m'), retry: retryPolicy(spec.retry, override?.retry), summary: `${call.name} (${call.id})` };
    const activity = (spec.local ? proxyLocalActivities<Record<string, ToolActivity>>(options) : proxyActivities<Record<string, ToolActivity>>(options))[call.name];
    if (!activity) throw ApplicationFailure.nonRetryable(`no activity for tool ${call.name}`);
    const input: ToolActivityInput = {
      runId: this.runId,
      agent: this.input.agent,
      requester: this.prepared.requester.id,
      callId: call.id,
      args: call.args,
      idempotencyKey: this.idempotencyKey(call.id, seq, call.args),
      governance: this.telemetry.governanceOf(call.id),
      resultSeq: seq,
      ...(spec.schemaDigest !== undefined ? { schemaDigest: spec.schemaDigest } : {}),
      audit,
    };
    try {
      const result = await activity(input);
      this.audit.markFlushed(audit);
      this.record('tool_succeeded', { callId: call.id, tool: call.name, attempts: result.attempt, summary: result.summary });
      this.setLine(f, 'done');
      const step = { callId: call.id, tool: call.name, resultSeq: seq, args: call.args, at: new Date().toISOString() };
      if (spec.compensable) this.executedCalls.push(step);
      else this.notUndoable.push({ callId: call.id, tool: call.name });
    } catch (err) {
      if (isCancellation(err)) throw err;
      const message = failureMessage(err);
      const retryState = err instanceof ActivityFailure ? err.retryState : undefined;
      this.record('tool_failed', { callId: call.id, tool: call.name, error: message, retryState: retryState ?? null });
      this.settle(f, 'failed', `${call.name} failed: ${message}`);
      if (this.policy.policy.onToolFailure === 'fail_run') this.ending ??= new RunEnd('failed', `tool ${call.name} failed: ${message}`);
    }
  }

  /** The run's own script turn for the current model call: turn i answers the i-th call. */
  private scriptTurn(): ScriptTurn | null | undefined {
    const script = this.input.script;
    return script ? (script[this.gov.usage.steps - 1] ?? null) : undefined;
  }

  /** Bound to the call's position and arguments: two calls sharing a model call id never share a key. */
  private idempotencyKey(callId: string, seq: number, args: unknown): string {
    return 'idk_' + digestOf({ run: this.runId, first: workflowInfo().firstExecutionRunId, callId, seq, args }).slice(0, 32);
  }

  /** Waits while paused; ends the run if a rollback was asked for. */
  private async checkpoint(where: string): Promise<void> {
    if (this.paused && !this.rollbackRequest) {
      const before = this.phase;
      this.phase = 'paused';
      this.report('paused', `paused ${where}`);
      await condition(() => !this.paused || this.rollbackRequest !== null);
      this.phase = before;
      this.report(this.statusName());
    }
    if (this.rollbackRequest) {
      const { by, reason } = this.rollbackRequest;
      throw new RunEnd('rolled_back', `rolled back by ${by ?? 'an operator'}${reason ? `: ${reason}` : ''}`);
    }
  }

  // ---------------------------------------------------------------- approvals

  private requestApproval(f: CallInFlight, decision: Decision, requirement: ApprovalRequirement): string {
    const call = { seq: f.seq, id: f.call.id, name: f.call.name, args: f.call.args, redactedArgs: this.redact(f.call.name, f.call.args) };
    const approval = this.desk.open(call, decision, requirement, this.prepared.requester.id);
    this.setLine(f, `awaits approval by ${approval.approvers.join(' or ')}`);
    return approval.approvalId;
  }

  /** Waits for people (and for policy changes that ask again) until the call may run or must not. */
  private async awaitApproval(f: CallInFlight): Promise<ApprovalVerdict> {
    for (;;) {
      const approvalId = f.approvalId;
      const requirement = f.requirement;
      if (!approvalId || !requirement) return { kind: 'refuse', message: 'not run: no approval was requested' };
      // People may take days: what the store has so far is anchored before the wait, with the
      // pending approvals in the same upsert (clients read them from the memo, not by a query).
      this.audit.anchor(this.desk.memoChange());
      const notified = this.notifySlack(approvalId, requirement.notify?.slack?.channel);
      let outcome: ApprovalOutcome;
      try {
        outcome = await this.desk.wait(approvalId, requirement, (waiting) => {
          this.phase = 'awaiting_approval';
          this.setLine(f, `awaits approval by ${waiting.approvers.join(' or ')} (${approvalId})`);
        });
      } finally {
        await notified;
      }
      if (outcome.kind === 'run') this.setLine(f, `approved by ${this.desk.get(approvalId)?.decidedBy ?? 'the policy'}`);
      if (outcome.kind !== 'ask') return outcome;
      f.approvalId = outcome.approvalId;
      f.requirement = this.policy.policy.rules.find((r) => r.id === this.desk.get(outcome.approvalId)?.ruleId)?.approval ?? requirement;
    }
  }

  /** Tells approvers in Slack, alongside the wait; a failed notification is audited, never fatal. */
  private async notifySlack(approvalId: string, channel: string | undefined): Promise<void> {
    const approval = this.desk.get(approvalId);
    if (!approval || !channel || !this.prepared.notifications.slack) return;
    const { runId, tool, args, ruleId, reason, requester, approvers, quorum, expiresAt } = approval;
    try {
      const delegatedBy = this.delegatedBy();
      const ref = await notifier.notifyApproval({
        channel,
        agent: this.input.agent,
        approval: { approvalId, runId, tool, args, ruleId, reason, requester, approvers, quorum, expiresAt, ...(delegatedBy ? { delegatedBy } : {}) },
      });
      this.record('approval_notified', { approvalId, channel: ref.channel, ts: ref.ts });
    } catch (err) {
      if (isCancellation(err)) return;
      this.record('approval_notified', { approvalId, channel, error: failureMessage(err) });
    }
  }

  // ---------------------------------------------------------------- operators

  /**
   * Who sent an operator command, as the worker verified it (a signed command whose key may assert
   * the role the action needs), or null when it does not count (audited). Commands signed for a
   * delegating run reach its delegates too. Each signed command counts once.
   */
  private async authorize(action: OperatorAction, input: OperatorInput | undefined): Promise<{ by: string; signed: boolean } | null> {
    const claimed = text(input?.by);
    const refuse = (reason: string): null => {
      this.record(action === 'resume' ? 'resume_refused' : 'operator_refused', { action, by: claimed, reason });
      return null;
    };
    const signature = input?.signature;
    const used = typeof signature?.signature === 'string' ? digestOf(signature.signature).slice(0, 32) : null;
    if (used && this.usedCommands.includes(used)) return refuse(`this signed ${action} was counted already (a signed command counts once)`);
    let verdict: VerifyOperatorResult | null = null;
    for (const runId of [this.runId, ...this.lineage()]) {
      try {
        verdict = await verifier.verifyOperator({ runId, nowMs: Date.now(), action, by: input?.by, signature });
      } catch (err) {
        return refuse(`the worker could not verify the ${action}: ${failureMessage(err)}`);
      }
      // Only a command signed for another run of the lineage is worth asking about again.
      if (!('refused' in verdict) || signature === undefined || !verdict.refused.includes('is for run')) break;
    }
    if (!verdict || 'refused' in verdict) return refuse(verdict?.refused ?? 'not verified');
    if (used) this.usedCommands = [...this.usedCommands, used].slice(-MAX_USED_COMMANDS);
    return { by: verdict.operator, signed: verdict.signed };
  }

  /** The delegating runs of this run, nearest first. */
  private lineage(): string[] {
    const d = this.input.delegation;
    return d ? (d.lineage ?? [d.runId]) : [];
  }

  /** Anyone may pause a run (a safer state); a signed pause is verified so the trail names who asked. */
  private async onPause(input?: OperatorInput): Promise<void> {
    if (this.outcome) return;
    let by = text(input?.by) ?? 'an operator';
    let verified: boolean | undefined;
    if (patched(OPERATOR_AUTHORITY)) {
      verified = false;
      if (input?.signature !== undefined) {
        const who = await this.authorize('pause', input);
        if (who) ({ by, signed: verified } = who);
      }
      if (this.outcome) return;
    }
    this.setPaused(true, { ...input, by }, verified);
    // A paused run's delegates pause too: nothing of the tree goes on while people look.
    await this.tellAll(pauseSignal, { by, reason: `the delegating run ${this.runId} was paused` });
  }

  /**
   * Resumes a paused run. Anyone may ask for a pause (a safer state); letting a run go on widens
   * what runs, so the worker must verify a signed operator first. A run its policy paused (the
   * loop breaker) is not let go by its own requester.
   */
  private async onResume(input?: OperatorInput): Promise<void> {
    if (this.outcome || !this.paused) return;
    let by = text(input?.by) ?? 'an operator';
    if (this.pausedByPolicy || patched(OPERATOR_AUTHORITY)) {
      const who = await this.authorize('resume', input);
      if (!who || this.outcome || !this.paused) return;
      if (this.pausedByPolicy && who.by === this.prepared?.requester.id && patched(OPERATOR_AUTHORITY)) {
        this.record('resume_refused', { action: 'resume', by: who.by, reason: `the run's own requester may not let a run its policy paused go on` });
        return;
      }
      by = who.by;
      this.pausedByPolicy = false;
    }
    // A person looked at the run and let it go on: the loop breaker starts counting afresh,
    // or the repeat that paused it would pause it again at once.
    this.gov = { ...this.gov, loop: emptyLoopState() };
    this.setPaused(false, { ...input, by });
    // A delegate its own policy paused still needs its own signed resume.
    await this.tellAll(resumeSignal, { by, reason: `the delegating run ${this.runId} was resumed`, ...(input?.signature ? { signature: input.signature } : {}) });
  }

  private setPaused(paused: boolean, input?: OperatorInput, verified?: boolean): void {
    if (this.paused === paused) return;
    this.paused = paused;
    const by = text(input?.by) ?? 'an operator';
    this.record(paused ? 'paused' : 'resumed', { by, reason: text(input?.reason), ...(verified !== undefined ? { verified } : {}) });
    this.report(this.statusName(), paused ? `paused by ${by}` : `resumed by ${by}`);
    // Pending approvals show whether the run is paused.
    this.desk.publish();
  }

  /** Rolling back runs compensations (effects): it takes a verified operator. */
  private async onRollback(input?: OperatorInput): Promise<void> {
    if (this.outcome || this.rollbackRequest) return;
    let by = text(input?.by) ?? 'an operator';
    if (patched(OPERATOR_AUTHORITY)) {
      const who = await this.authorize('rollback', input);
      if (!who || this.outcome || this.rollbackRequest) return;
      by = who.by;
    }
    const reason = text(input?.reason);
    this.rollbackRequest = { by, ...(reason ? { reason } : {}), ...(input?.signature ? { signature: input.signature } : {}) };
    this.record('rollback_requested', { by, reason: reason ?? null });
    // A running delegate undoes its own calls and ends; those of finished delegates are in this run's plan.
    await this.tellAll(rollbackSignal, { ...this.rollbackRequest, reason: `the delegating run ${this.runId} is rolling back` });
  }

  /**
   * Takes up the agent's current policy from the worker: the signal says only "look again", so
   * nobody can hand a run a policy through Temporal. Every pending approval is decided again
   * under the new policy.
   */
  private async onApplyPolicy(input?: ApplyPolicyInput): Promise<void> {
    let by = text(input?.by) ?? 'an operator';
    if (this.outcome) return;
    if (patched(OPERATOR_AUTHORITY)) {
      const who = await this.authorize('applyPolicy', input);
      if (!who || this.outcome) return;
      by = who.by;
    }
    let fresh;
    try {
      fresh = await core.currentPolicy({ agent: this.input.agent });
    } catch (err) {
      this.record('policy_applied', { refused: true, by, error: failureMessage(err) });
      return;
    }
    this.shadow = this.shadow.takeUp(fresh.shadow, this.prepared.agent.tools.map((t) => t.name));
    const from = this.policy.version;
    const next = this.compile(fresh.policy);
    const ignored = typeof input === 'object' && input !== null && 'policy' in input;
    if (next.version === from) {
      this.record('policy_applied', { from, to: from, by, unchanged: true, ...(ignored ? { ignored: 'a policy in the signal is never used' } : {}) });
      return;
    }
    this.policy = next;
    this.prepared = { ...this.prepared, policy: fresh.policy, policySource: fresh.source };
    this.record('policy_applied', { from, to: next.version, by, source: fresh.source, ...(ignored ? { ignored: 'a policy in the signal is never used' } : {}) });
    this.redecidePending();
  }

  /** A call waiting for approval under the old policy is decided again: denied, allowed, or asked anew. */
  private redecidePending(): void {
    for (const f of this.inFlight) {
      const approval = f.approvalId ? this.desk.get(f.approvalId) : undefined;
      if (!approval || approval.state !== 'pending') continue;
      const decision = this.policy.decide({ tool: f.call.name, args: f.call.args, risk: f.spec?.risk }, this.input.agent, this.runFacts());
      if (decision.decision === 'require_approval' && decision.ruleId === approval.ruleId && sameRequirement(decision.approval, f.requirement)) continue;
      const { approval: requirement, ...recorded } = decision;
      this.record('approval_withdrawn', { approvalId: approval.approvalId, callId: f.call.id, tool: f.call.name, ...recorded });
      this.lastDecision = { ...decision, tool: f.call.name, callId: f.call.id };
      const outcome: ApprovalOutcome =
        decision.decision === 'allow'
          ? { kind: 'run' }
          : decision.decision === 'require_approval' && requirement
            ? { kind: 'ask', approvalId: this.requestApproval(f, decision, requirement) }
            : { kind: 'refuse', message: `${denialMessage(decision)} (the policy changed while the call waited)` };
      this.desk.supersede(approval.approvalId, outcome);
    }
  }

  private async rollback(): Promise<RollbackReport> {
    this.phase = 'rolling_back';
    this.report('running', `rolling back ${this.executedCalls.length} call(s)`);
    const report: RollbackReport = { undone: [], failed: [], notUndoable: [...this.notUndoable] };
    for (const step of [...this.executedCalls].reverse()) {
      // A delegate's call: its tool is the delegate agent's, its result in the delegate's run; the undo is audited here.
      const spec = step.runId === undefined ? this.tools.get(step.tool) : undefined;
      const of = step.runId === undefined ? {} : { runId: step.runId };
      const audit = this.audit.unflushed();
      try {
        await proxyActivities<CoreActivities>({
          startToCloseTimeout: durationMs(this.policy.toolPolicy(step.tool)?.timeout ?? spec?.timeout ?? '1m'),
          retry: retryPolicy(spec?.retry, this.policy.toolPolicy(step.tool)?.retry),
          summary: `undo ${step.tool} (${step.callId})`,
        }).compensateCall({
          runId: this.runId,
          agent: this.input.agent,
          requester: this.prepared.requester.id,
          callId: step.callId,
          tool: step.tool,
          args: step.args,
          idempotencyKey: this.idempotencyKey(step.runId === undefined ? `undo:${step.callId}` : `undo:${step.runId}:${step.callId}`, step.resultSeq, step.args),
          resultSeq: step.resultSeq,
          audit,
          ...(step.runId !== undefined ? { callRunId: step.runId, callAgent: step.agent ?? this.input.agent } : {}),
        });
        this.audit.markFlushed(audit);
        report.undone.push({ callId: step.callId, tool: step.tool, ...of });
        this.record('compensation_run', { callId: step.callId, tool: step.tool, ...of });
      } catch (err) {
        if (isCancellation(err)) throw err;
        report.failed.push({ callId: step.callId, tool: step.tool, error: failureMessage(err), ...of });
        this.record('compensation_failed', { callId: step.callId, tool: step.tool, error: failureMessage(err), ...of });
      }
    }
    this.executedCalls = [];
    return report;
  }

  // ---------------------------------------------------------------- state and views

  private record(type: AuditEventType, data: Record<string, unknown>): void {
    this.audit.record(type, data);
    this.telemetry.observe(type, data);
  }

  private recordAll(events: readonly GovernEvent[]): void {
    for (const e of events) this.record(e.type, e.data);
  }

  private takePending(): MessageRow[] {
    const rows = this.pendingRows.sort((a, b) => a.seq - b.seq);
    this.pendingRows = [];
    return rows;
  }

  private redact(tool: string, args: Record<string, unknown>): Record<string, unknown> {
    const redacted = redactBySchema(args, argsSchemaOf(this.tools.get(tool)));
    return typeof redacted === 'object' && redacted !== null && !Array.isArray(redacted) ? (redacted as Record<string, unknown>) : { arguments: redacted };
  }

  private elapsed(): number {
    return Date.now() - this.startedAtMs;
  }

  private runFacts() {
    // The run's own step; tool calls, cost and tokens with its delegates' (what its budgets count).
    const usage = { ...spentOf(this.gov), steps: this.gov.usage.steps };
    return {
      id: this.runId,
      requester: this.prepared.requester.id,
      requesterVerified: this.prepared.requester.verified,
      step: usage.steps,
      toolCalls: usage.toolCalls,
      costUsd: usage.costUsd,
      inputTokens: usage.inputTokens,
      outputTokens: usage.outputTokens,
    };
  }

  private statusName(): string {
    if (this.outcome) return this.outcome.status;
    if (this.paused) return 'paused';
    if (this.desk.hasPending()) return 'awaiting_approval';
    return 'running';
  }

  private setLine(f: CallInFlight, line: string): void {
    f.line = line;
    const calls = this.inFlight.map((c) => `${c.call.name} ${c.line}`).join('; ');
    this.report(this.statusName(), `step ${this.gov.usage.steps}: ${calls}`);
  }

  /** Keeps the WardenStatus search attribute (and a pending agent and requester, in the same upsert) and the UI's current-details line up to date. */
  private report(status: string, details?: string): void {
    if (details) this.details = details;
    setCurrentDetails(this.details);
    if (status !== this.reportedStatus || this.identityPending.length > 0) {
      this.reportedStatus = status;
      upsertSearchAttributes([...this.identityPending, { key: statusSearchAttribute, value: status }]);
      this.identityPending = [];
    }
  }

  private pendingApprovals(): PendingApproval[] {
    const delegatedBy = this.delegatedBy();
    const pending = this.desk.view(this.paused);
    return delegatedBy ? pending.map((a) => ({ ...a, delegatedBy })) : pending;
  }

  private rollbackPlan(): CompensationStep[] {
    // Queries are answered to anyone who can reach Temporal: arguments leave redacted.
    return [...this.executedCalls].reverse().map(({ shownArgs, ...s }) => ({ ...s, args: shownArgs ?? this.redact(s.tool, s.args) }));
  }

  private statusView(): RunStatusView {
    const budgets = this.prepared?.policy.budgets ?? {};
    const usage = spentOf(this.gov);
    const inherited = this.input.delegation?.ceiling;
    // Whichever is tighter: the policy's budgets or, for a delegate, its delegating run's ceiling.
    const remaining = budgetsLeft(budgets, inherited, usage, this.elapsed());
    const left: Record<string, number> = {};
    if (remaining.maxSteps !== undefined) left.steps = remaining.maxSteps;
    if (remaining.maxToolCalls !== undefined) left.toolCalls = remaining.maxToolCalls;
    if (remaining.maxInputTokens !== undefined) left.inputTokens = remaining.maxInputTokens;
    if (remaining.maxOutputTokens !== undefined) left.outputTokens = remaining.maxOutputTokens;
    if (remaining.maxCostUsd !== undefined) left.costUsd = remaining.maxCostUsd;
    if (remaining.maxWallTime !== undefined) left.wallTimeMs = durationMs(remaining.maxWallTime);
    return {
      runId: this.runId,
      agent: this.input.agent,
      requester: this.prepared?.requester.id ?? this.input.requester,
      requesterVerified: this.prepared?.requester.verified ?? false,
      phase: this.phase,
      paused: this.paused,
      step: this.gov.usage.steps,
      currentDetails: this.details,
      budget: { used: usage, limits: budgets, left, ...(inherited ? { inherited } : {}) },
      pendingApprovals: this.pendingApprovals().length,
      lastDecision: this.lastDecision,
      policyVersion: this.policy?.version ?? '',
      outcome: this.outcome,
      shadow: this.shadow.view(),
      ...(this.input.delegation ? { delegatedBy: this.delegatedBy() } : {}),
      ...(this.delegations.length > 0 ? { delegations: this.delegations.map((d) => ({ ...d })) } : {}),
    };
  }

  private delegatedBy(): { runId: string; agent: string; callId: string } | undefined {
    const d = this.input.delegation;
    return d && { runId: d.runId, agent: d.agent, callId: d.callId };
  }
}

/**
 * The agent-run workflow: one governed run of one agent on one goal.
 * Start it through `WardenClient.startRun` or `warden run`; workflow id `warden/<agent>/<key>`.
 */
export async function agentRun(input: AgentRunInput): Promise<RunOutcome> {
  refusePlaintextStart(input, 'agentRun');
  log.info('agent run', { agent: input.agent, continued: input.carried !== undefined });
  return new AgentRun(input).execute();
}
