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
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { z } from 'zod';
import type { CoreActivities, NON_RETRYABLE_ERRORS, ToolActivity, ToolActivityInput } from '../activities/types';
import {
  CompiledPolicy,
  approvalIdFor,
  checkBeforeModelCall,
  checkBeforeToolCall,
  costOf,
  digestOf,
  durationMs,
  emptyAuditHead,
  emptyLoopState,
  emptyUsage,
  nextAuditEvent,
  observeCall,
  parsePolicy,
  redactArgs,
  verifySignedDecision,
  type AuditEvent,
  type AuditEventType,
  type BudgetExceeded,
  type Decision,
  type Policy,
  type RetrySettings,
} from '../governance';
import type { MessageRow } from '../store/types';
import {
  applyPolicySignal,
  approveSignal,
  auditTrailQuery,
  pauseSignal,
  pendingApprovalsQuery,
  rejectSignal,
  resumeSignal,
  rollbackPlanQuery,
  rollbackSignal,
  statusQuery,
  type ApproveInput,
  type OperatorInput,
  type RejectInput,
} from './messages';
import { agentSearchAttribute, requesterSearchAttribute, statusSearchAttribute } from './search-attributes';
import type {
  AgentRunInput,
  CarriedState,
  CompensationStep,
  PendingApproval,
  PreparedRun,
  ProposedCall,
  RollbackReport,
  RunOutcome,
  RunPhase,
  RunStatus,
  RunStatusView,
  ScriptTurn,
  ToolSpec,
} from './types';

const nonRetryableErrorTypes: (typeof NON_RETRYABLE_ERRORS)[number][] = [
  'SlackNotifyError',
  'ToolError',
  'ToolInputError',
  'ModelConfigError',
  'DefinitionError',
  'PolicyError',
  'ModelCallError',
];

const core = proxyActivities<CoreActivities>({
  startToCloseTimeout: '1 minute',
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

/** Thrown inside the run to end it with an outcome; caught once, at the top. */
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

type Plan =
  | { kind: 'result'; call: ProposedCall; seq: number; error: string }
  | { kind: 'execute'; call: ProposedCall; seq: number; spec: ToolSpec }
  | { kind: 'approval'; call: ProposedCall; seq: number; spec: ToolSpec; approval: PendingApprovalState };

interface PendingApprovalState extends PendingApproval {
  state: 'pending' | 'approved' | 'rejected' | 'expired' | 'cancelled';
  decidedBy?: string;
  note?: string;
}

const MAX_TEXT_IN_AUDIT = 500;

function errorRow(seq: number, call: ProposedCall, message: string): MessageRow {
  return {
    seq,
    message: { role: 'tool', content: [{ type: 'tool-result', toolCallId: call.id, toolName: call.name, output: { type: 'error-text', value: message } }] },
  };
}

function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
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
  private prepared!: PreparedRun;
  private policy!: CompiledPolicy;
  private readonly schemas = new Map<string, z.ZodType>();
  private readonly tools = new Map<string, ToolSpec>();

  private usage = emptyUsage();
  private loop = emptyLoopState();
  private readonly stoppedTools = new Set<string>();
  private auditHead = emptyAuditHead();
  private readonly auditEvents: AuditEvent[] = [];
  private flushedSeq = 0;
  private messageCount = 0;
  private pendingRows: MessageRow[] = [];
  private startedAtMs = Date.now();
  private stepsThisExecution = 0;
  private executedCalls: CompensationStep[] = [];
  private notUndoable: { callId: string; tool: string }[] = [];
  private lastDecision: RunStatusView['lastDecision'] = null;

  private phase: RunPhase = 'starting';
  private paused = false;
  private rollbackRequest: OperatorInput | null = null;
  private ending: RunEnd | null = null;
  private outcome: RunOutcome | null = null;
  private readonly approvals = new Map<string, PendingApprovalState>();
  private details = 'starting';
  private reportedStatus = '';

  constructor(private readonly input: AgentRunInput) {
    // Handlers are registered before the first await so the Temporal UI lists them from the start
    // and no early signal is dropped.
    setHandler(statusQuery, () => this.statusView(), { description: 'Phase, step, budgets used and left, pending approvals, last decision, outcome.' });
    setHandler(pendingApprovalsQuery, () => this.pendingApprovals(), { description: 'Calls waiting for a human decision: id, tool, redacted args, rule, approvers, expiry.' });
    setHandler(auditTrailQuery, () => ({ events: [...this.auditEvents], firstSeq: this.auditEvents[0]?.seq ?? this.auditHead.seq + 1, headSeq: this.auditHead.seq }), {
      description: 'The hash-chained audit events of this run (earlier executions are in the run store).',
    });
    setHandler(rollbackPlanQuery, () => [...this.executedCalls].reverse(), { description: 'The compensations a rollback would run, newest first.' });
    setHandler(approveSignal, (decision) => this.onDecision('approve', decision), {
      description: 'Approve a pending call: {"approvalId": "apr_…", "approver": "alice", "comment": "ok"}',
    });
    setHandler(rejectSignal, (decision) => this.onDecision('reject', decision), {
      description: 'Reject a pending call: {"approvalId": "apr_…", "approver": "alice", "reason": "too much"}',
    });
    setHandler(pauseSignal, (by) => this.onPause(by), { description: 'Pause before the next model or tool call: {"by": "you", "reason": "…"}' });
    setHandler(resumeSignal, (by) => this.onResume(by), { description: 'Resume a paused run: {"by": "you"}' });
    setHandler(rollbackSignal, (by) => this.onRollback(by), { description: 'Undo what the run did (compensations, newest first) and end it: {"by": "you", "reason": "…"}' });
    setHandler(applyPolicySignal, (input) => this.onApplyPolicy(input), { description: "Replace the run's policy from its next decision: {\"policy\": {…}, \"by\": \"you\"}" });
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
    const carried = this.input.carried;
    if (carried) {
      this.restore(carried);
      this.audit('run_continued', { execution: carried.executions + 1, messageCount: carried.messageCount });
    } else {
      const prepared = await core.prepareRun({ runId: this.runId, agent: this.input.agent, loadPolicy: !this.input.policy });
      const { agent, trustedKeys, notifications } = prepared;
      if (this.input.policy) this.prepared = { agent, trustedKeys, notifications, policy: parsePolicy(this.input.policy, 'run input'), policySource: 'run input' };
      else if (prepared.policy) this.prepared = { agent, trustedKeys, notifications, policy: prepared.policy, policySource: prepared.policySource ?? 'worker' };
      else throw new RunEnd('failed', `no policy for agent ${this.input.agent}`);
      this.compile(this.prepared.policy);
      this.audit('run_started', {
        agent: this.input.agent,
        requester: this.input.requester,
        goal: this.input.goal.slice(0, MAX_TEXT_IN_AUDIT),
        policyVersion: this.policy.version,
        policySource: this.prepared.policySource,
        model: this.prepared.agent.modelId,
      });
      this.pendingRows.push({ seq: 0, message: { role: 'user', content: this.input.goal } });
      this.messageCount = 1;
    }
    this.indexTools();
    const budgets = this.prepared.policy.budgets;
    if (budgets.maxCostUsd !== undefined && !this.prepared.policy.pricing[this.prepared.agent.modelId]) {
      throw new RunEnd('failed', `the policy sets budgets.maxCostUsd but pricing has no entry for model "${this.prepared.agent.modelId}"`);
    }
    upsertSearchAttributes([
      { key: agentSearchAttribute, value: this.input.agent },
      { key: requesterSearchAttribute, value: this.input.requester },
    ]);
    this.report('running');
  }

  private restore(c: CarriedState): void {
    this.prepared = c.prepared;
    this.compile(c.prepared.policy);
    this.usage = c.usage;
    this.loop = c.loop;
    c.stoppedTools.forEach((t) => this.stoppedTools.add(t));
    this.auditHead = c.auditHead;
    this.flushedSeq = c.auditHead.seq;
    this.messageCount = c.messageCount;
    this.startedAtMs = c.startedAtMs;
    this.executedCalls = c.executedCalls;
    this.notUndoable = c.notUndoable;
    this.lastDecision = c.lastDecision;
    this.paused = c.paused;
  }

  private compile(policy: Policy): void {
    this.policy = new CompiledPolicy(policy);
  }

  private indexTools(): void {
    for (const spec of this.prepared.agent.tools) {
      this.tools.set(spec.name, spec);
      this.schemas.set(spec.name, z.fromJSONSchema(spec.inputSchema));
    }
  }

  private shouldContinueAsNew(): boolean {
    const every = this.input.continueAsNewAfterSteps;
    return workflowInfo().continueAsNewSuggested || (every !== undefined && this.stepsThisExecution >= every);
  }

  private async continueAsNew(): Promise<never> {
    await this.flush();
    // Signals and queries being handled must finish first, or their effect would be lost.
    await condition(allHandlersFinished);
    const carried: CarriedState = {
      prepared: { ...this.prepared, policy: this.policy.policy },
      usage: this.usage,
      loop: this.loop,
      stoppedTools: [...this.stoppedTools],
      auditHead: this.auditHead,
      messageCount: this.messageCount,
      startedAtMs: this.startedAtMs,
      executions: (this.input.carried?.executions ?? 1) + 1,
      executedCalls: this.executedCalls,
      notUndoable: this.notUndoable,
      lastDecision: this.lastDecision,
      paused: this.paused,
    };
    return continueAsNew<typeof agentRun>({ ...this.input, carried });
  }

  private async finish(end: RunEnd): Promise<RunOutcome> {
    let report: RollbackReport | undefined;
    if (end.status === 'failed' && this.prepared?.policy.onRunFailure === 'rollback' && this.executedCalls.length > 0) {
      end = new RunEnd('rolled_back', `run failed (${end.reason}); rolled back as the policy says`);
    }
    if (end.status === 'rolled_back') report = await this.rollback();
    const outcome: RunOutcome = {
      status: end.status,
      reason: end.reason,
      text: end.text,
      steps: this.usage.steps,
      toolCalls: this.usage.toolCalls,
      usage: { inputTokens: this.usage.inputTokens, outputTokens: this.usage.outputTokens, costUsd: this.usage.costUsd },
      policyVersion: this.policy?.version ?? '',
    };
    if (end.budget) outcome.budget = end.budget;
    if (report) outcome.rollback = report;
    for (const approval of this.approvals.values()) if (approval.state === 'pending') approval.state = 'cancelled';
    this.audit('run_finished', { status: outcome.status, reason: outcome.reason, steps: outcome.steps, toolCalls: outcome.toolCalls, usage: outcome.usage });
    this.outcome = outcome;
    this.phase = 'finished';
    this.report(outcome.status, `${outcome.status}: ${outcome.reason}`);
    await this.flush();
    await condition(allHandlersFinished);
    return outcome;
  }

  private async flush(): Promise<void> {
    const audit = this.unflushed();
    const append = this.takePending();
    if (audit.length === 0 && append.length === 0) return;
    await core.recordRun({ runId: this.runId, audit, append });
    this.markFlushed(audit);
  }

  // ---------------------------------------------------------------- the loop

  private async turn(): Promise<void> {
    await this.checkpoint('before the next model call');
    const exceeded = checkBeforeModelCall(this.prepared.policy.budgets, this.usage, this.elapsed());
    if (exceeded) this.exhausted(exceeded);

    this.usage.steps += 1;
    this.stepsThisExecution += 1;
    this.phase = 'thinking';
    this.report('running', `step ${this.usage.steps}: asking the model`);
    const audit = this.unflushed();
    const upTo = this.messageCount;
    const answer = await model.callModel.executeWithOptions({ summary: `model turn ${this.usage.steps}` }, [
      { runId: this.runId, agent: this.input.agent, step: this.usage.steps, upTo, append: this.takePending(), audit, scriptTurn: this.scriptTurn() },
    ]);
    this.markFlushed(audit);
    this.messageCount = upTo + 1;
    const price = this.prepared.policy.pricing[this.prepared.agent.modelId];
    const cost = costOf(price, answer.usage.inputTokens, answer.usage.outputTokens);
    this.usage.inputTokens += answer.usage.inputTokens;
    this.usage.outputTokens += answer.usage.outputTokens;
    this.usage.costUsd += cost;
    this.audit('model_turn', {
      step: this.usage.steps,
      inputTokens: answer.usage.inputTokens,
      outputTokens: answer.usage.outputTokens,
      costUsd: cost,
      calls: answer.calls.map((c) => c.name),
      text: answer.text.slice(0, MAX_TEXT_IN_AUDIT),
    });

    if (answer.calls.length === 0) throw new RunEnd('completed', 'the agent finished', answer.text);

    const firstSeq = this.messageCount;
    this.messageCount += answer.calls.length;
    this.phase = 'governing';
    // Every call is decided before any runs, in the order proposed: budgets and the loop detector
    // see the same sequence on replay, and one refusal never blocks an allowed sibling.
    const plans = answer.calls.map((call, i) => this.govern(call, firstSeq + i));
    await Promise.all(plans.map((plan) => this.carryOut(plan)));
    if (this.ending) throw this.ending;
  }

  /** Steps 1–3 of a call: schema, budget and loop, policy. Synchronous and deterministic. */
  private govern(call: ProposedCall, seq: number): Plan {
    const spec = this.tools.get(call.name);
    const args = call.args ?? {};
    this.audit('call_proposed', { callId: call.id, tool: call.name, args: this.redact(call.name, args) });
    const refuse = (error: string): Plan => ({ kind: 'result', call, seq, error });

    if (this.ending) return refuse(`not run: ${this.ending.reason}`);
    if (spec) {
      const parsed = this.schemas.get(call.name)?.safeParse(args);
      if (parsed && !parsed.success) {
        const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(arguments)'}: ${i.message}`);
        this.audit('schema_rejected', { callId: call.id, tool: call.name, issues });
        return refuse(`invalid arguments for ${call.name}, nothing ran: ${issues.join('; ')}`);
      }
    }
    if (this.stoppedTools.has(call.name)) {
      return refuse(this.decided(call, { decision: 'deny', ruleId: 'default:tool-stopped', reason: `tool ${call.name} was stopped by the loop breaker`, policyVersion: this.policy.version }));
    }
    if (spec) {
      const exceeded = checkBeforeToolCall(this.prepared.policy.budgets, this.policy.policy.tools[call.name]?.maxCalls, this.usage, call.name, this.elapsed());
      if (exceeded) {
        this.audit('budget_exhausted', { callId: call.id, ...exceeded });
        this.ending = new RunEnd('budget_exhausted', exceeded.message, '', exceeded);
        return refuse(`not run: ${exceeded.message}`);
      }
      const loopSettings = this.policy.policy.loop;
      if (loopSettings) {
        const seen = observeCall(this.loop, loopSettings, call.name, digestOf(args));
        this.loop = seen.state;
        if (seen.tripped) {
          const message = `loop detected: ${call.name} called with the same arguments ${seen.repeats} times in the last ${loopSettings.window} calls`;
          this.audit('loop_detected', { callId: call.id, tool: call.name, repeats: seen.repeats, window: loopSettings.window, action: loopSettings.action });
          if (loopSettings.action === 'fail_run') {
            this.ending = new RunEnd('budget_exhausted', message);
            return refuse(`not run: ${message}`);
          }
          if (loopSettings.action === 'stop_tool') {
            this.stoppedTools.add(call.name);
            return refuse(`not run: ${message}; the tool is stopped for the rest of this run`);
          }
          this.setPaused(true, { by: 'policy', reason: message });
        }
      }
    }

    const decision = this.policy.decide({ tool: call.name, args, risk: spec?.risk }, this.input.agent, this.runFacts());
    if (decision.decision === 'deny' || !spec) return refuse(this.decided(call, decision));
    this.decided(call, decision);
    if (decision.decision === 'allow') {
      this.countCall(call.name);
      return { kind: 'execute', call, seq, spec };
    }
    return { kind: 'approval', call, seq, spec, approval: this.requestApproval(call, decision) };
  }

  private decided(call: ProposedCall, decision: Decision): string {
    this.lastDecision = { ...decision, tool: call.name, callId: call.id };
    const { approval: _approval, ...recorded } = decision;
    this.audit('policy_decision', { callId: call.id, tool: call.name, ...recorded });
    return `denied by policy (rule ${decision.ruleId}), nothing ran: ${decision.reason}`;
  }

  /** Steps 4–6: approval wait, the tool activity, the compensation plan. */
  private async carryOut(plan: Plan): Promise<void> {
    if (plan.kind === 'result') {
      this.pendingRows.push(errorRow(plan.seq, plan.call, plan.error));
      return;
    }
    if (plan.kind === 'approval') {
      const verdict = await this.awaitApproval(plan.approval);
      if (verdict) {
        this.pendingRows.push(errorRow(plan.seq, plan.call, verdict));
        return;
      }
      const exceeded = checkBeforeToolCall(this.prepared.policy.budgets, this.policy.policy.tools[plan.call.name]?.maxCalls, this.usage, plan.call.name, this.elapsed());
      if (exceeded) {
        this.audit('budget_exhausted', { callId: plan.call.id, ...exceeded });
        this.ending ??= new RunEnd('budget_exhausted', exceeded.message, '', exceeded);
        this.pendingRows.push(errorRow(plan.seq, plan.call, `not run: ${exceeded.message}`));
        return;
      }
      this.countCall(plan.call.name);
    }
    await this.checkpoint(`before ${plan.call.name}`);
    if (this.ending) {
      this.pendingRows.push(errorRow(plan.seq, plan.call, `not run: ${this.ending.reason}`));
      return;
    }
    await this.runTool(plan.call, plan.seq, plan.spec);
  }

  private async runTool(call: ProposedCall, seq: number, spec: ToolSpec): Promise<void> {
    this.phase = 'running_tools';
    this.report(this.statusName(), `step ${this.usage.steps}: running ${call.name}`);
    this.audit('tool_started', { callId: call.id, tool: call.name });
    const audit = this.unflushed();
    const override = this.policy.policy.tools[call.name];
    const timeout = override?.timeout ?? spec.timeout ?? '1m';
    const activity = proxyActivities<Record<string, ToolActivity>>({
      startToCloseTimeout: durationMs(timeout),
      retry: retryPolicy(spec.retry, override?.retry),
      summary: `${call.name} (${call.id})`,
    })[call.name];
    if (!activity) throw ApplicationFailure.nonRetryable(`no activity for tool ${call.name}`);
    const input: ToolActivityInput = {
      runId: this.runId,
      agent: this.input.agent,
      requester: this.input.requester,
      callId: call.id,
      args: call.args ?? {},
      idempotencyKey: this.idempotencyKey(call.id),
      resultSeq: seq,
      audit,
    };
    try {
      const result = await activity(input);
      this.markFlushed(audit);
      this.audit('tool_succeeded', { callId: call.id, tool: call.name, attempts: result.attempt, summary: result.summary });
      const step = { callId: call.id, tool: call.name, resultSeq: seq, args: call.args ?? {}, at: new Date().toISOString() };
      if (spec.compensable) this.executedCalls.push(step);
      else this.notUndoable.push({ callId: call.id, tool: call.name });
    } catch (err) {
      if (isCancellation(err)) throw err;
      const message = failureMessage(err);
      const retryState = err instanceof ActivityFailure ? err.retryState : undefined;
      this.audit('tool_failed', { callId: call.id, tool: call.name, error: message, retryState: retryState ?? null });
      this.pendingRows.push(errorRow(seq, call, `${call.name} failed: ${message}`));
      if (this.policy.policy.onToolFailure === 'fail_run') this.ending ??= new RunEnd('failed', `tool ${call.name} failed: ${message}`);
    }
  }

  /** The run's own script turn for the current model call: turn i answers the i-th call. */
  private scriptTurn(): ScriptTurn | null | undefined {
    const script = this.input.script;
    return script ? (script[this.usage.steps - 1] ?? null) : undefined;
  }

  private idempotencyKey(callId: string): string {
    return 'idk_' + digestOf({ run: this.runId, first: workflowInfo().firstExecutionRunId, callId }).slice(0, 32);
  }

  private countCall(tool: string): void {
    this.usage.toolCalls += 1;
    this.usage.toolCallsByTool[tool] = (this.usage.toolCallsByTool[tool] ?? 0) + 1;
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

  private exhausted(exceeded: BudgetExceeded): never {
    this.audit('budget_exhausted', { ...exceeded });
    throw new RunEnd('budget_exhausted', exceeded.message, '', exceeded);
  }

  // ---------------------------------------------------------------- approvals

  private requestApproval(call: ProposedCall, decision: Decision): PendingApprovalState {
    const requirement = decision.approval;
    if (!requirement) throw ApplicationFailure.nonRetryable(`rule ${decision.ruleId} requires approval but names no approvers`);
    const now = Date.now();
    const approval: PendingApprovalState = {
      approvalId: approvalIdFor(this.runId, call.id, call.name, call.args ?? {}),
      runId: this.runId,
      callId: call.id,
      tool: call.name,
      args: this.redact(call.name, call.args ?? {}),
      ruleId: decision.ruleId,
      reason: decision.reason,
      approvers: [...requirement.approvers],
      quorum: requirement.quorum,
      approvals: [],
      requester: this.input.requester,
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + durationMs(requirement.timeout)).toISOString(),
      escalated: false,
      state: 'pending',
    };
    this.approvals.set(approval.approvalId, approval);
    this.audit('approval_requested', {
      approvalId: approval.approvalId,
      callId: call.id,
      tool: call.name,
      ruleId: decision.ruleId,
      approvers: approval.approvers,
      quorum: approval.quorum,
      expiresAt: approval.expiresAt,
    });
    return approval;
  }

  /** Waits for a decision. Returns null when approved, or the message the model gets otherwise. */
  private async awaitApproval(approval: PendingApprovalState): Promise<string | null> {
    const requirement = this.requirementOf(approval);
    const notified = this.notifySlack(approval, requirement?.notify?.slack?.channel);
    try {
      return await this.waitForDecision(approval, requirement);
    } finally {
      await notified;
    }
  }

  /** Tells approvers in Slack, alongside the wait; a failed notification is audited, never fatal. */
  private async notifySlack(approval: PendingApprovalState, channel: string | undefined): Promise<void> {
    if (!channel || !this.prepared.notifications?.slack) return;
    const { approvalId, runId, tool, args, ruleId, reason, requester, approvers, quorum, expiresAt } = approval;
    try {
      const ref = await notifier.notifyApproval({ channel, agent: this.input.agent, approval: { approvalId, runId, tool, args, ruleId, reason, requester, approvers, quorum, expiresAt } });
      this.audit('approval_notified', { approvalId, channel: ref.channel, ts: ref.ts });
    } catch (err) {
      if (isCancellation(err)) return;
      this.audit('approval_notified', { approvalId, channel, error: failureMessage(err) });
    }
  }

  private async waitForDecision(approval: PendingApprovalState, requirement: ReturnType<AgentRun['requirementOf']>): Promise<string | null> {
    for (;;) {
      this.phase = 'awaiting_approval';
      this.report('awaiting_approval', `step ${this.usage.steps}: ${approval.tool} awaits approval by ${approval.approvers.join(' or ')} (${approval.approvalId})`);
      const left = Date.parse(approval.expiresAt) - Date.now();
      const decided = await condition(() => approval.state !== 'pending' || this.rollbackRequest !== null, Math.max(left, 1));
      if (approval.state === 'approved') break;
      if (approval.state === 'rejected') return `not run: approval ${approval.approvalId} was rejected by ${approval.decidedBy ?? '?'}${approval.note ? `: ${approval.note}` : ''}`;
      if (decided || this.rollbackRequest) {
        approval.state = 'cancelled';
        return 'not run: the run is being rolled back';
      }
      const escalation = requirement?.escalation;
      if (escalation && !approval.escalated) {
        approval.escalated = true;
        approval.approvers = [...escalation.approvers];
        approval.expiresAt = new Date(Date.now() + durationMs(escalation.timeout)).toISOString();
        this.audit('approval_escalated', { approvalId: approval.approvalId, approvers: approval.approvers, expiresAt: approval.expiresAt });
        continue;
      }
      approval.state = 'expired';
      this.audit('approval_expired', { approvalId: approval.approvalId, tool: approval.tool });
      this.report(this.statusName());
      return `not run: approval ${approval.approvalId} expired with no decision (fails closed)`;
    }
    this.report(this.statusName());
    return null;
  }

  private requirementOf(approval: PendingApprovalState) {
    return this.policy.policy.rules.find((r) => r.id === approval.ruleId)?.approval;
  }

  private onDecision(kind: 'approve' | 'reject', input: ApproveInput | RejectInput): void {
    // A signal handler must never throw: a bad signal is refused and audited, and the run goes on.
    const refuse = (reason: string) => {
      this.audit('approval_refused', {
        kind,
        approvalId: typeof input?.approvalId === 'string' ? input.approvalId : null,
        approver: typeof input?.approver === 'string' ? input.approver : null,
        channel: typeof input?.channel === 'string' ? input.channel : null,
        reason,
      });
    };
    if (typeof input !== 'object' || input === null || typeof input.approvalId !== 'string' || typeof input.approver !== 'string' || input.approver.trim() === '') {
      return refuse('malformed decision: expected {"approvalId": "...", "approver": "..."}');
    }
    const approval = this.approvals.get(input.approvalId);
    if (!approval) return refuse(`no approval ${input.approvalId} in this run (wrong run, call or arguments)`);
    if (approval.state !== 'pending') return refuse(`approval ${input.approvalId} is already ${approval.state}`);
    const identity = this.identify(kind, input);
    if ('refused' in identity) return refuse(identity.refused);
    const { approver, groups, channel } = identity;
    if (approver === this.input.requester) return refuse(`four-eyes: ${approver} requested this run and cannot decide its approvals`);
    const eligible = approval.approvers.some((p) => p === `user:${approver}` || (p.startsWith('group:') && groups.includes(p.slice(6))));
    if (!eligible) return refuse(`${approver} is not among the approvers (${approval.approvers.join(', ')})`);
    if (approval.approvals.some((v) => v.approver === approver)) return refuse(`${approver} has already approved ${input.approvalId}`);

    const note = kind === 'approve' ? (input as ApproveInput).comment : (input as RejectInput).reason;
    this.audit('approval_accepted', { kind, approvalId: approval.approvalId, approver, groups, channel, signed: input.signature !== undefined, note: note ?? null });
    if (kind === 'reject') {
      approval.state = 'rejected';
      approval.decidedBy = approver;
      approval.note = note;
    } else {
      approval.approvals.push({ approver, at: new Date().toISOString(), ...(note ? { comment: note } : {}), channel });
      if (approval.approvals.length < approval.quorum) return;
      approval.state = 'approved';
      approval.decidedBy = approval.approvals.map((v) => v.approver).join(', ');
    }
    this.audit('approval_decided', { approvalId: approval.approvalId, decision: approval.state, by: approval.decidedBy });
  }

  /**
   * Who decided, and in which groups. A signed decision is verified against the trusted keys and
   * must name this run, this approval and this kind of decision; its claims replace whatever the
   * signal says. An unsigned one counts only where the policy allows it (development).
   */
  private identify(kind: 'approve' | 'reject', input: ApproveInput | RejectInput): { approver: string; groups: string[]; channel: string } | { refused: string } {
    if (input.signature !== undefined) {
      const trusted = { ...this.prepared.trustedKeys, ...this.policy.policy.trustedKeys };
      const verified = verifySignedDecision(input.signature, trusted, Date.now());
      if (!verified.ok) return { refused: `signed decision refused: ${verified.reason}` };
      const claims = verified.claims;
      if (claims.runId !== this.runId) return { refused: `signed decision is for run ${claims.runId}, not this one` };
      if (claims.approvalId !== input.approvalId) return { refused: `signed decision is for approval ${claims.approvalId}, not ${input.approvalId}` };
      if (claims.decision !== kind) return { refused: `signed decision says ${claims.decision}, the signal says ${kind}` };
      if (claims.approver !== input.approver.trim()) return { refused: `signed decision is by ${claims.approver}, the signal names ${input.approver}` };
      return { approver: claims.approver, groups: claims.groups, channel: claims.channel };
    }
    if (!this.policy.policy.allowUnsignedDecisions) return { refused: 'unsigned decision refused: this policy accepts only decisions signed by a trusted channel (allowUnsignedDecisions is off)' };
    const groups = Array.isArray(input.groups) ? input.groups.filter((g): g is string => typeof g === 'string') : [];
    return { approver: input.approver.trim(), groups, channel: typeof input.channel === 'string' ? input.channel : 'signal' };
  }

  // ---------------------------------------------------------------- operators

  private onPause(input?: OperatorInput): void {
    if (this.outcome) return;
    this.setPaused(true, input);
  }

  private onResume(input?: OperatorInput): void {
    if (this.outcome || !this.paused) return;
    // A person looked at the run and let it go on: the loop breaker starts counting afresh,
    // or the repeat that paused it would pause it again at once.
    this.loop = emptyLoopState();
    this.setPaused(false, input);
  }

  private setPaused(paused: boolean, input?: OperatorInput): void {
    if (this.paused === paused) return;
    this.paused = paused;
    this.audit(paused ? 'paused' : 'resumed', { by: input?.by ?? 'an operator', reason: input?.reason ?? null });
    this.report(this.statusName(), paused ? `paused by ${input?.by ?? 'an operator'}` : `resumed by ${input?.by ?? 'an operator'}`);
  }

  private onRollback(input?: OperatorInput): void {
    if (this.outcome || this.rollbackRequest) return;
    this.rollbackRequest = { by: input?.by ?? 'an operator', reason: input?.reason };
    this.audit('rollback_requested', { by: this.rollbackRequest.by ?? null, reason: input?.reason ?? null });
  }

  private onApplyPolicy(input: { policy: unknown; by?: string }): void {
    try {
      const policy = parsePolicy(input?.policy, 'applyPolicy signal');
      if (policy.agent !== this.input.agent) throw new Error(`policy is for agent ${policy.agent}, this run is ${this.input.agent}`);
      const from = this.policy.version;
      this.compile(policy);
      this.prepared = { ...this.prepared, policy, policySource: 'applyPolicy signal' };
      this.audit('policy_applied', { from, to: this.policy.version, by: input.by ?? 'an operator' });
    } catch (err) {
      this.audit('policy_applied', { refused: true, by: input?.by ?? 'an operator', error: err instanceof Error ? err.message : String(err) });
    }
  }

  private async rollback(): Promise<RollbackReport> {
    this.phase = 'rolling_back';
    this.report('running', `rolling back ${this.executedCalls.length} call(s)`);
    const report: RollbackReport = { undone: [], failed: [], notUndoable: [...this.notUndoable] };
    const steps = [...this.executedCalls].reverse();
    for (const step of steps) {
      const spec = this.tools.get(step.tool);
      const audit = this.unflushed();
      try {
        await proxyActivities<CoreActivities>({
          startToCloseTimeout: durationMs(this.policy.policy.tools[step.tool]?.timeout ?? spec?.timeout ?? '1m'),
          retry: retryPolicy(spec?.retry, this.policy.policy.tools[step.tool]?.retry),
          summary: `undo ${step.tool} (${step.callId})`,
        }).compensateCall({
          runId: this.runId,
          agent: this.input.agent,
          requester: this.input.requester,
          callId: step.callId,
          tool: step.tool,
          args: step.args,
          idempotencyKey: this.idempotencyKey(`undo:${step.callId}`),
          resultSeq: step.resultSeq,
          audit,
        });
        this.markFlushed(audit);
        report.undone.push({ callId: step.callId, tool: step.tool });
        this.audit('compensation_run', { callId: step.callId, tool: step.tool });
      } catch (err) {
        if (isCancellation(err)) throw err;
        report.failed.push({ callId: step.callId, tool: step.tool, error: failureMessage(err) });
        this.audit('compensation_failed', { callId: step.callId, tool: step.tool, error: failureMessage(err) });
      }
    }
    this.executedCalls = [];
    return report;
  }

  // ---------------------------------------------------------------- state and views

  private audit(type: AuditEventType, data: Record<string, unknown>): void {
    const event = nextAuditEvent(this.auditHead, type, data, new Date().toISOString());
    this.auditHead = { seq: event.seq, hash: event.hash };
    this.auditEvents.push(event);
  }

  private unflushed(): AuditEvent[] {
    return this.auditEvents.filter((e) => e.seq > this.flushedSeq);
  }

  private markFlushed(sent: readonly AuditEvent[]): void {
    const last = sent[sent.length - 1];
    if (last && last.seq > this.flushedSeq) this.flushedSeq = last.seq;
  }

  private takePending(): MessageRow[] {
    const rows = this.pendingRows.sort((a, b) => a.seq - b.seq);
    this.pendingRows = [];
    return rows;
  }

  private redact(tool: string, args: Record<string, unknown>): Record<string, unknown> {
    return redactArgs(args, this.tools.get(tool)?.sensitive ?? []);
  }

  private elapsed(): number {
    return Date.now() - this.startedAtMs;
  }

  private runFacts() {
    return {
      id: this.runId,
      requester: this.input.requester,
      step: this.usage.steps,
      toolCalls: this.usage.toolCalls,
      costUsd: this.usage.costUsd,
      inputTokens: this.usage.inputTokens,
      outputTokens: this.usage.outputTokens,
    };
  }

  private statusName(): string {
    if (this.outcome) return this.outcome.status;
    if (this.paused) return 'paused';
    if ([...this.approvals.values()].some((a) => a.state === 'pending')) return 'awaiting_approval';
    return 'running';
  }

  /** Keeps the WardenStatus search attribute and the UI's current-details line up to date. */
  private report(status: string, details?: string): void {
    if (details) this.details = details;
    setCurrentDetails(this.details);
    if (status !== this.reportedStatus) {
      this.reportedStatus = status;
      upsertSearchAttributes([{ key: statusSearchAttribute, value: status }]);
    }
  }

  private pendingApprovals(): PendingApproval[] {
    return [...this.approvals.values()].filter((a) => a.state === 'pending').map(({ state: _s, decidedBy: _d, note: _n, ...view }) => view);
  }

  private statusView(): RunStatusView {
    const budgets = this.prepared?.policy.budgets ?? {};
    const left: Record<string, number> = {};
    if (budgets.maxSteps !== undefined) left.steps = budgets.maxSteps - this.usage.steps;
    if (budgets.maxToolCalls !== undefined) left.toolCalls = budgets.maxToolCalls - this.usage.toolCalls;
    if (budgets.maxInputTokens !== undefined) left.inputTokens = budgets.maxInputTokens - this.usage.inputTokens;
    if (budgets.maxOutputTokens !== undefined) left.outputTokens = budgets.maxOutputTokens - this.usage.outputTokens;
    if (budgets.maxCostUsd !== undefined) left.costUsd = budgets.maxCostUsd - this.usage.costUsd;
    if (budgets.maxWallTime !== undefined) left.wallTimeMs = durationMs(budgets.maxWallTime) - this.elapsed();
    return {
      runId: this.runId,
      agent: this.input.agent,
      requester: this.input.requester,
      phase: this.phase,
      paused: this.paused,
      step: this.usage.steps,
      currentDetails: this.details,
      budget: { used: this.usage, limits: budgets, left },
      pendingApprovals: this.pendingApprovals().length,
      lastDecision: this.lastDecision,
      policyVersion: this.policy?.version ?? '',
      outcome: this.outcome,
    };
  }
}

/**
 * The agent-run workflow: one governed run of one agent on one goal.
 * Start it through `WardenClient.startRun` or `warden run`; workflow id `warden/<agent>/<key>`.
 */
export async function agentRun(input: AgentRunInput): Promise<RunOutcome> {
  log.info('agent run', { agent: input.agent, requester: input.requester, continued: input.carried !== undefined });
  return new AgentRun(input).execute();
}
