import { patched } from '@temporalio/workflow';
import type { VerifyOperatorResult } from '../../activities/activity-types';
import { denialMessage, digestOf, emptyLoopState, sameRequirement, type OperatorAction } from '../../governance/workflow-safe';
import type { ApprovalOutcome } from '../approval-desk';
import { pauseSignal, resumeSignal, rollbackSignal, type ApplyPolicyInput, type OperatorInput } from '../messages';
import { failureMessage, text } from '../message-values';
import { core, verifier } from './activities';
import type { Delegations } from './delegation';
import { OPERATOR_AUTHORITY, PAUSE_UNCHECKED } from './patches';
import type { RunState } from './run-state';
import type { ToolCalls } from './tool-calls';

/** How many signed operator commands a run remembers, so none counts twice. */
const MAX_USED_COMMANDS = 200;

/**
 * What operators do to a run through its signals: pause, resume, roll back, take up the current
 * policy. Anyone may ask for a pause (a safer state); the rest widen what runs or cause effects, so
 * they count only as signed operator commands the worker verifies (OPERATOR_AUTHORITY).
 */
export class OperatorControls {
  constructor(
    private readonly run: RunState,
    private readonly calls: ToolCalls,
    private readonly delegations: Delegations,
  ) {}

  /**
   * Who sent an operator command, as the worker verified it (a signed command whose key may assert
   * the role the action needs), or null when it does not count (audited). Commands signed for a
   * delegating run reach its delegates too. Each signed command counts once.
   */
  private async authorize(action: OperatorAction, input: OperatorInput | undefined): Promise<{ by: string; signed: boolean } | null> {
    const run = this.run;
    const claimed = text(input?.by);
    const refuse = (reason: string): null => {
      run.record(action === 'resume' ? 'resume_refused' : 'operator_refused', { action, by: claimed, reason });
      return null;
    };
    const signature = input?.signature;
    const used = typeof signature?.signature === 'string' ? digestOf(signature.signature).slice(0, 32) : null;
    if (used && run.usedCommands.includes(used)) return refuse(`this signed ${action} was counted already (a signed command counts once)`);
    let verdict: VerifyOperatorResult | null = null;
    for (const runId of [run.runId, ...run.lineage()]) {
      // The input names this run (the activity runs only for the run that scheduled it); a delegating run, as the one signed for.
      const signedFor = runId === run.runId ? {} : { signedFor: runId };
      try {
        verdict = await this.run.local(() => verifier.verifyOperator({ runId: run.runId, ...signedFor, nowMs: Date.now(), action, by: input?.by, signature, agent: run.input.agent }));
      } catch (err) {
        return refuse(`the worker could not verify the ${action}: ${failureMessage(err)}`);
      }
      // Only a command signed for another run of the lineage is worth asking about again.
      if (!('refused' in verdict) || signature === undefined || !verdict.refused.includes('is for run')) break;
    }
    if (!verdict || 'refused' in verdict) return refuse(verdict?.refused ?? 'not verified');
    if (used) run.usedCommands = [...run.usedCommands, used].slice(-MAX_USED_COMMANDS);
    return { by: verdict.operator, signed: verdict.signed };
  }

  /**
   * Anyone may pause a run (a safer state). Under PAUSE_UNCHECKED the pause takes hold in the
   * activation its signal arrives in, recorded as asked (by whom it says; a signature is not
   * checked, and the event claims no `verified`): a local activity awaited here resolved, live, in whichever activation the worker got
   * to it, and on replay right after its marker, so a run paused while an activity ran could not
   * replay. Before it, a signed pause was verified so the trail named who asked.
   */
  async pause(input?: OperatorInput): Promise<void> {
    const run = this.run;
    if (run.outcome) return;
    let by = text(input?.by) ?? 'an operator';
    if (patched(PAUSE_UNCHECKED)) {
      run.setPaused(true, { ...input, by });
      await this.delegations.tellAll(pauseSignal, { by, reason: `the delegating run ${run.runId} was paused` });
      return;
    }
    let verified: boolean | undefined;
    if (patched(OPERATOR_AUTHORITY)) {
      verified = false;
      if (input?.signature !== undefined) {
        const who = await this.authorize('pause', input);
        if (who) ({ by, signed: verified } = who);
      }
      if (run.outcome) return;
    }
    run.setPaused(true, { ...input, by }, verified);
    // A paused run's delegates pause too: nothing of the tree goes on while people look.
    await this.delegations.tellAll(pauseSignal, { by, reason: `the delegating run ${run.runId} was paused` });
  }

  /**
   * Resumes a paused run. Anyone may ask for a pause (a safer state); letting a run go on widens
   * what runs, so the worker must verify a signed operator first (and refuses while the agent's
   * kill switch is engaged). A run its policy paused (the loop breaker) is not let go by its own
   * requester.
   */
  async resume(input?: OperatorInput): Promise<void> {
    const run = this.run;
    if (run.outcome || !run.paused) return;
    let by = text(input?.by) ?? 'an operator';
    const authority = patched(OPERATOR_AUTHORITY);
    if (run.pausedByPolicy || authority) {
      const who = await this.authorize('resume', input);
      if (!who || run.outcome || !run.paused) return;
      if (authority && run.pausedByPolicy && who.by === run.prepared?.requester.id) {
        run.record('resume_refused', { action: 'resume', by: who.by, reason: `the run's own requester may not let a run its policy paused go on` });
        return;
      }
      by = who.by;
      run.pausedByPolicy = false;
    }
    // A person looked at the run and let it go on: the loop breaker starts counting afresh,
    // or the repeat that paused it would pause it again at once.
    run.gov = { ...run.gov, loop: emptyLoopState() };
    run.setPaused(false, { ...input, by });
    // A delegate its own policy paused still needs its own signed resume.
    await this.delegations.tellAll(resumeSignal, { by, reason: `the delegating run ${run.runId} was resumed`, ...(input?.signature ? { signature: input.signature } : {}) });
  }

  /** Rolling back runs compensations (effects): it takes a verified operator. */
  async rollback(input?: OperatorInput): Promise<void> {
    const run = this.run;
    if (run.outcome || run.rollbackRequest) return;
    let by = text(input?.by) ?? 'an operator';
    if (patched(OPERATOR_AUTHORITY)) {
      const who = await this.authorize('rollback', input);
      if (!who || run.outcome || run.rollbackRequest) return;
      by = who.by;
    }
    const reason = text(input?.reason);
    run.rollbackRequest = { by, ...(reason ? { reason } : {}), ...(input?.signature ? { signature: input.signature } : {}) };
    run.record('rollback_requested', { by, reason: reason ?? null });
    // A tool running now is cancelled (its ctx.signal fires) instead of holding up the rollback.
    for (const scope of run.toolScopes) scope.cancel();
    // A running delegate undoes its own calls and ends; those of finished delegates are in this run's plan.
    await this.delegations.tellAll(rollbackSignal, { ...run.rollbackRequest, reason: `the delegating run ${run.runId} is rolling back` });
  }

  /**
   * Takes up the agent's current policy from the worker: the signal says only "look again", so
   * nobody can hand a run a policy through Temporal. Every pending approval is decided again
   * under the new policy.
   */
  async applyPolicy(input?: ApplyPolicyInput): Promise<void> {
    const run = this.run;
    let by = text(input?.by) ?? 'an operator';
    if (run.outcome) return;
    if (patched(OPERATOR_AUTHORITY)) {
      const who = await this.authorize('applyPolicy', input);
      if (!who || run.outcome) return;
      by = who.by;
    }
    let fresh;
    try {
      const grant = run.grantRef();
      fresh = await core.currentPolicy({ agent: run.input.agent, ...(grant ? { runId: run.runId, prepared: run.prepared, grant } : {}) });
    } catch (err) {
      run.record('policy_applied', { refused: true, by, error: failureMessage(err) });
      return;
    }
    run.shadow = run.shadow.takeUp(fresh.shadow, run.prepared.agent.tools.map((t) => t.name));
    const from = run.policy.version;
    const next = run.compile(fresh.policy);
    const ignored = typeof input === 'object' && input !== null && 'policy' in input;
    if (next.version === from) {
      run.record('policy_applied', { from, to: from, by, unchanged: true, ...(ignored ? { ignored: 'a policy in the signal is never used' } : {}) });
      return;
    }
    run.policy = next;
    run.setPrepared({ ...run.prepared, policy: fresh.policy, policySource: fresh.source, ...(run.grants ? { grant: fresh.grant } : {}) });
    run.record('policy_applied', { from, to: next.version, by, source: fresh.source, ...(ignored ? { ignored: 'a policy in the signal is never used' } : {}) });
    this.redecidePending();
  }

  /** A call waiting for approval under the old policy is decided again: denied, allowed, or asked anew. */
  private redecidePending(): void {
    const run = this.run;
    for (const f of run.inFlight) {
      const approval = f.approvalId ? run.desk.get(f.approvalId) : undefined;
      if (!approval || approval.state !== 'pending') continue;
      const decision = run.policy.decide({ tool: f.call.name, args: f.call.args, risk: f.spec?.risk }, run.input.agent, run.runFacts());
      if (decision.decision === 'require_approval' && decision.ruleId === approval.ruleId && sameRequirement(decision.approval, f.requirement)) continue;
      const { approval: requirement, ...recorded } = decision;
      run.record('approval_withdrawn', { approvalId: approval.approvalId, callId: f.call.id, tool: f.call.name, ...recorded });
      run.lastDecision = { ...decision, tool: f.call.name, callId: f.call.id };
      const outcome: ApprovalOutcome =
        decision.decision === 'allow'
          ? { kind: 'run' }
          : decision.decision === 'require_approval' && requirement
            ? { kind: 'ask', approvalId: this.calls.requestApproval(f, decision, requirement) }
            : { kind: 'refuse', message: `${denialMessage(decision)} (the policy changed while the call waited)` };
      run.desk.supersede(approval.approvalId, outcome);
    }
  }
}
