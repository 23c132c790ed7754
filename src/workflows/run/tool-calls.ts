import { ActivityCancellationType, ActivityFailure, ApplicationFailure, CancellationScope, condition, isCancellation, patched, proxyActivities, proxyLocalActivities, sleep } from '@temporalio/workflow';
import type { CallModelResult, ToolActivity, ToolActivityInput, ToolBooking } from '../../activities/activity-types';
import { admitApproved, packAudit, checkModelCallBudgets, costOf, durationMs, governCall, spentOf, type ApprovalRequirement, type Decision, type QuotaSet } from '../../governance/workflow-safe';
import type { ApprovalOutcome } from '../approval-desk';
import type { ToolSpec } from '../run-types';
import { failureMessage } from '../message-values';
import { model, notifier, retryPolicy } from './activities';
import { CANCEL_TOOLS, DEFAULT_ANCHOR_EVERY_TURNS, LOOP_SEES_REJECTED } from './patches';
import type { Delegations } from './delegation';
import { RunEnd } from './run-end';
import type { CallInFlight, RunState } from './run-state';

/** How much of a goal or an answer's text goes into the audit trail (the whole text is in the run store). */
export const MAX_TEXT_IN_AUDIT = 500;

/** What becomes of a call: it runs, or it does not and the model is told why. */
type ApprovalVerdict = { kind: 'run' } | { kind: 'refuse'; message: string };

/** Governance's answer for a call of the current turn. */
type Verdict = ApprovalVerdict | { kind: 'approve' };

/**
 * One turn of the run and each call in it, along the path of one tool call (DESIGN.md): the model
 * proposes; schema, budget and policy decide (pure, in `governCall`); people approve; the tool
 * runs as an activity; what can be undone joins the rollback plan.
 */
export class ToolCalls {
  constructor(
    private readonly run: RunState,
    private readonly delegations: Delegations,
  ) {}

  /** Turns this execution has begun: under TURNS_V2 its first and every Nth anchor the audit head. */
  private turns = 0;

  async turn(): Promise<void> {
    const run = this.run;
    const every = run.sparseAnchors ? (run.policy.policy.audit?.anchorEveryTurns ?? DEFAULT_ANCHOR_EVERY_TURNS) : 1;
    // Pending approvals that changed go to the memo in any case (with the head, if it moved).
    if (this.turns++ % every === 0) run.audit.anchor(run.desk.memoChange());
    else run.audit.write(run.desk.memoChange());
    await this.checkpoint('before the next model call');
    // The first answer may have come with the run's preparation (it is accounted for already).
    const answer = run.firstAnswer ?? (await this.askModel());
    run.firstAnswer = null;

    if (answer.calls.length === 0) throw new RunEnd('completed', 'the agent finished', answer.text);

    const firstSeq = run.messageCount;
    run.messageCount += answer.calls.length;
    run.phase = 'governing';
    // Every call is decided before any runs, in the order proposed: budgets and the loop detector
    // see the same sequence on replay, and one refusal never blocks an allowed sibling.
    run.inFlight = answer.calls.map((call, i) => ({ call, index: i, seq: firstSeq + i, spec: run.tools.get(call.name), line: 'deciding' }));
    const plans = run.inFlight.map((f) => this.govern(f));
    await Promise.all(run.inFlight.map((f, i) => this.carryOut(f, plans[i])));
    if (run.ending) throw run.ending;
  }

  /** One model call, within the budgets: the next answer, accounted for. */
  private async askModel(): Promise<CallModelResult> {
    const run = this.run;
    const exceeded = checkModelCallBudgets(run.prepared.policy.budgets, run.input.delegation?.ceiling, spentOf(run.gov), run.elapsed());
    if (exceeded) {
      run.record('budget_exhausted', { ...exceeded });
      throw new RunEnd('budget_exhausted', exceeded.message, '', exceeded);
    }
    const step = this.beginStep();
    run.report('running', `step ${step}: asking the model`);
    const audit = run.audit.unflushed();
    const answer = await model.callModel.executeWithOptions({ summary: `model turn ${step}` }, [
      {
        runId: run.runId,
        agent: run.input.agent,
        step,
        upTo: run.messageCount,
        append: run.takePending(),
        audit: packAudit(audit),
        scriptTurn: run.scriptTurn(),
        ...(run.telemetry.enabled ? { price: run.prepared.policy.pricing[run.prepared.agent.modelId] ?? null } : {}),
        ...run.quotas.modelInput(),
        ...run.spendInput(),
      },
    ]);
    run.audit.markFlushed(audit);
    run.noteSpent(answer);
    // A quota on model spend that was spent already: no call was made, the run ends.
    run.quotas.answered(answer);
    this.account(answer);
    return answer;
  }

  beginStep(): number {
    const run = this.run;
    run.gov.usage.steps += 1;
    run.stepsThisExecution += 1;
    run.phase = 'thinking';
    run.inFlight = [];
    return run.gov.usage.steps;
  }

  /** The answer of the current step: stored at the next message seq, its tokens and cost counted, audited. */
  account(answer: CallModelResult): void {
    const run = this.run;
    const usage = run.gov.usage;
    run.messageCount += 1;
    const cost = costOf(run.prepared.policy.pricing[run.prepared.agent.modelId], answer.usage.inputTokens, answer.usage.outputTokens);
    usage.inputTokens += answer.usage.inputTokens;
    usage.outputTokens += answer.usage.outputTokens;
    usage.costUsd += cost;
    run.record('model_turn', {
      step: usage.steps,
      inputTokens: answer.usage.inputTokens,
      outputTokens: answer.usage.outputTokens,
      costUsd: cost,
      calls: answer.calls.map((c) => c.name),
      text: answer.text.slice(0, MAX_TEXT_IN_AUDIT),
      // Present only when the context policy left turns out; a recorded answer without it gives the event it gave.
      ...(answer.context ? { context: { ...answer.context } } : {}),
    });
  }

  /** Steps 1–3 of a call through `governCall`: run it, ask people, or refuse it with a message for the model. */
  private govern(f: CallInFlight): Verdict {
    const run = this.run;
    const ctx = {
      policy: run.policy,
      agent: run.input.agent,
      tool: f.spec,
      run: run.runFacts(),
      elapsedMs: run.elapsed(),
      ...(run.ending ? { ending: run.ending.reason } : {}),
      ...(run.input.delegation ? { inherited: run.input.delegation.ceiling } : {}),
      // Asked only when it matters (a call refused for its arguments, under a loop breaker): most runs record no marker.
      ...(f.call.refused !== undefined && f.spec && run.policy.policy.loop && patched(LOOP_SEES_REJECTED) ? { loopSeesRejected: true } : {}),
    };
    const result = governCall(run.gov, f.call, ctx);
    // Judged from the same state; only the comparison is kept (audited), never the shadow's plan or state.
    const shadowDiff = run.shadow.judge(run.gov, f.call, ctx, result);
    run.gov = result.state;
    run.recordAll(result.events);
    if (shadowDiff) run.record('policy_shadow_diff', { ...shadowDiff });
    if (result.decision) run.lastDecision = { ...result.decision, tool: f.call.name, callId: f.call.id };
    if (result.end) run.ending ??= new RunEnd(result.end.status, result.end.reason, '', result.end.budget);
    if (result.pause !== undefined) {
      run.pausedByPolicy = true;
      run.setPaused(true, { by: 'policy', reason: result.pause });
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
    const run = this.run;
    if (!plan || plan.kind === 'refuse') return run.settle(f, 'refused', plan?.message ?? 'not run');
    if (plan.kind === 'approve') {
      const verdict = await this.awaitApproval(f);
      if (verdict.kind === 'refuse') return run.settle(f, 'not run', verdict.message);
      const admitted = admitApproved(run.gov, f.call, run.policy, run.elapsed(), run.input.delegation?.ceiling);
      if (!admitted.ok) {
        run.recordAll([admitted.event]);
        run.ending ??= new RunEnd('budget_exhausted', admitted.exceeded.message, '', admitted.exceeded);
        return run.settle(f, 'not run', `not run: ${admitted.exceeded.message}`);
      }
      run.gov = admitted.state;
    }
    await this.checkpoint(`before ${f.call.name}`);
    if (run.ending) return run.settle(f, 'not run', `not run: ${run.ending.reason}`);
    if (!f.spec) return run.settle(f, 'refused', `not run: agent has no tool ${f.call.name}`);
    if (f.spec.delegate !== undefined) return this.delegations.delegate(f, f.spec.delegate);
    const quotaRules = run.quotas.rulesFor(f.call.name);
    const booked = quotaRules ? await this.admitByQuotas(f, quotaRules) : undefined;
    if (booked === null) return;
    await this.runTool(f, f.spec, {
      ...(quotaRules?.quotas.length ? { quotaRef: run.quotas.refOf(f) } : {}),
      ...(quotaRules && booked ? { booking: run.quotas.bookingOf(f, quotaRules, booked.approved) } : {}),
    });
  }

  /**
   * Books a call against its quotas and rate limits (docs/quotas.md): refused at a hard limit, sent
   * to people past a soft one (and booked once they approve), and, over a rate limit, made to wait
   * on a durable timer for its slot. Null when the call must not run.
   */
  private async admitByQuotas(f: CallInFlight, rules: QuotaSet): Promise<{ approved: boolean } | null> {
    const run = this.run;
    let approved = false;
    for (;;) {
      const booked = await run.quotas.reserve(f, rules, approved);
      if (booked.kind === 'booked') {
        if (booked.waitMs > 0) {
          run.setLine(f, `waits for rate limit ${booked.rateLimit ?? ''}`.trim());
          await sleep(booked.waitMs);
        }
        // The tool books again as it starts and takes its pace from that booking (confirmBooking).
        return { approved };
      }
      const requirement = booked.hit.approval;
      if (booked.kind === 'deny' || approved || !requirement) {
        run.settle(f, 'refused', booked.message);
        return null;
      }
      const decision: Decision = { decision: 'require_approval', ruleId: `quota:${booked.hit.quota}`, reason: booked.message, policyVersion: run.policy.version, approval: requirement };
      f.requirement = requirement;
      f.approvalId = this.requestApproval(f, decision, requirement);
      const verdict = await this.awaitApproval(f);
      if (verdict.kind === 'refuse') {
        run.settle(f, 'not run', verdict.message);
        return null;
      }
      approved = true;
      await this.checkpoint(`before ${f.call.name}`);
      if (run.ending) {
        run.settle(f, 'not run', `not run: ${run.ending.reason}`);
        return null;
      }
    }
  }

  private async runTool(f: CallInFlight, spec: ToolSpec, counted: { quotaRef?: string; booking?: ToolBooking } = {}): Promise<void> {
    const quotaRef = counted.quotaRef;
    const run = this.run;
    const { call, seq } = f;
    run.phase = 'running_tools';
    run.setLine(f, 'running');
    run.record('tool_started', { callId: call.id, tool: call.name });
    const audit = run.audit.unflushed();
    const override = run.policy.toolPolicy(call.name);
    // GRANTS implies CANCEL_TOOLS: a run under grants records one marker, not one more at its first tool call.
    const cancellable = run.grants || patched(CANCEL_TOOLS);
    const options = {
      startToCloseTimeout: durationMs(override?.timeout ?? spec.timeout ?? '1m'),
      retry: retryPolicy(spec.retry, override?.retry),
      summary: `${call.name} (${call.id})`,
      // The worker heartbeats while the tool runs (local activities cannot): a dead worker is noticed in seconds, and a cancel reaches ctx.signal.
      ...(spec.local ? {} : { heartbeatTimeout: durationMs(override?.heartbeatTimeout ?? spec.heartbeatTimeout ?? '10s') }),
      ...(cancellable ? { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED } : {}),
    };
    const activity = (spec.local ? proxyLocalActivities<Record<string, ToolActivity>>(options) : proxyActivities<Record<string, ToolActivity>>(options))[call.name];
    if (!activity) throw ApplicationFailure.nonRetryable(`no activity for tool ${call.name}`);
    const input: ToolActivityInput = {
      runId: run.runId,
      agent: run.input.agent,
      requester: run.prepared.requester.id,
      callId: call.id,
      args: call.args,
      idempotencyKey: run.idempotencyKey(call.id, seq, call.args),
      governance: run.telemetry.governanceOf(call.id),
      resultSeq: seq,
      ...(spec.schemaDigest !== undefined ? { schemaDigest: spec.schemaDigest } : {}),
      audit: packAudit(audit),
      ...(quotaRef !== undefined ? { quotaRef } : {}),
      ...(counted.booking ? { booking: counted.booking } : {}),
      ...run.grantFor(call.seal),
    };
    const scope = cancellable ? new CancellationScope() : undefined;
    if (scope) run.toolScopes.add(scope);
    try {
      const invoke = () => (scope ? scope.run(() => activity(input)) : activity(input));
      const result = spec.local ? await run.local(invoke) : await invoke();
      run.audit.markFlushed(audit);
      run.record('tool_succeeded', { callId: call.id, tool: call.name, attempts: result.attempt, summary: result.summary });
      run.setLine(f, 'done');
      const step = { callId: call.id, tool: call.name, resultSeq: seq, args: call.args, at: new Date().toISOString(), ...(quotaRef !== undefined ? { quotaRef } : {}), ...(call.seal !== undefined ? { seal: call.seal } : {}) };
      if (spec.compensable) run.executedCalls.push(step);
      else run.notUndoable.push({ callId: call.id, tool: call.name });
    } catch (err) {
      if (isCancellation(err) && scope?.consideredCancelled && !CancellationScope.current().consideredCancelled) {
        // Cancelled by a rollback (the run itself goes on to roll back): stopped, nothing to undo.
        run.record('tool_failed', { callId: call.id, tool: call.name, error: 'cancelled: the run is rolling back', cancelled: true });
        return run.settle(f, 'cancelled', `${call.name} was cancelled: the run is rolling back`);
      }
      if (isCancellation(err)) throw err;
      const message = failureMessage(err);
      const retryState = err instanceof ActivityFailure ? err.retryState : undefined;
      run.record('tool_failed', { callId: call.id, tool: call.name, error: message, retryState: retryState ?? null });
      run.settle(f, 'failed', `${call.name} failed: ${message}`);
      // It did not run: what it reserved goes back to its quotas.
      if (quotaRef !== undefined) await run.quotas.release(quotaRef);
      if (run.policy.policy.onToolFailure === 'fail_run') run.ending ??= new RunEnd('failed', `tool ${call.name} failed: ${message}`);
    } finally {
      if (scope) run.toolScopes.delete(scope);
    }
  }

  /** Waits while paused; ends the run if a rollback was asked for. */
  private async checkpoint(where: string): Promise<void> {
    const run = this.run;
    if (run.paused && !run.rollbackRequest) {
      const before = run.phase;
      run.phase = 'paused';
      run.report('paused', `paused ${where}`);
      // A pause may last days: what the store has is anchored first (every turn did it before TURNS_V2).
      if (run.sparseAnchors) run.audit.anchor(run.desk.memoChange());
      await condition(() => !run.paused || run.rollbackRequest !== null);
      run.phase = before;
      run.report(run.statusName());
    }
    if (run.rollbackRequest) {
      const { by, reason } = run.rollbackRequest;
      throw new RunEnd('rolled_back', `rolled back by ${by ?? 'an operator'}${reason ? `: ${reason}` : ''}`);
    }
  }

  /** Opens an approval for a call on the desk; its id. */
  requestApproval(f: CallInFlight, decision: Decision, requirement: ApprovalRequirement): string {
    const run = this.run;
    const call = { seq: f.seq, id: f.call.id, name: f.call.name, args: f.call.args, redactedArgs: run.redact(f.call.name, f.call.args) };
    const approval = run.desk.open(call, decision, requirement, run.prepared.requester.id);
    run.setLine(f, `awaits approval by ${approval.approvers.join(' or ')}`);
    return approval.approvalId;
  }

  /** Waits for people (and for policy changes that ask again) until the call may run or must not. */
  private async awaitApproval(f: CallInFlight): Promise<ApprovalVerdict> {
    const run = this.run;
    for (;;) {
      const approvalId = f.approvalId;
      const requirement = f.requirement;
      if (!approvalId || !requirement) return { kind: 'refuse', message: 'not run: no approval was requested' };
      // People may take days: what the store has so far is anchored before the wait, with the
      // pending approvals in the same upsert (clients read them from the memo, not by a query).
      run.audit.anchor(run.desk.memoChange());
      const notified = this.notifySlack(approvalId, requirement.notify?.slack?.channel);
      let outcome: ApprovalOutcome;
      try {
        outcome = await run.desk.wait(approvalId, requirement, (waiting) => {
          run.phase = 'awaiting_approval';
          run.setLine(f, `awaits approval by ${waiting.approvers.join(' or ')} (${approvalId})`);
        });
      } finally {
        await notified;
      }
      if (outcome.kind === 'run') run.setLine(f, `approved by ${run.desk.get(approvalId)?.decidedBy ?? 'the policy'}`);
      if (outcome.kind !== 'ask') return outcome;
      f.approvalId = outcome.approvalId;
      f.requirement = run.policy.policy.rules.find((r) => r.id === run.desk.get(outcome.approvalId)?.ruleId)?.approval ?? requirement;
    }
  }

  /** Tells approvers in Slack, alongside the wait; a failed notification is audited, never fatal. */
  private async notifySlack(approvalId: string, channel: string | undefined): Promise<void> {
    const run = this.run;
    const approval = run.desk.get(approvalId);
    if (!approval || !channel || !run.prepared.notifications.slack) return;
    const { runId, tool, args, ruleId, reason, requester, approvers, quorum, expiresAt } = approval;
    try {
      const delegatedBy = run.delegatedBy();
      const ref = await notifier.notifyApproval({
        channel,
        agent: run.input.agent,
        approval: { approvalId, runId, tool, args, ruleId, reason, requester, approvers, quorum, expiresAt, ...(delegatedBy ? { delegatedBy } : {}) },
      });
      run.record('approval_notified', { approvalId, channel: ref.channel, ts: ref.ts });
    } catch (err) {
      if (isCancellation(err)) return;
      run.record('approval_notified', { approvalId, channel, error: failureMessage(err) });
    }
  }
}
