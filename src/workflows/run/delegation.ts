import { CancellationScope, isCancellation, log, patched, startChild } from '@temporalio/workflow';
import { addDelegateUsage, budgetsLeft, delegationCeiling, emptyCeiling, spentOf, type DelegateUsage } from '../../governance/workflow-safe';
import { pauseSignal, rollbackSignal, type OperatorInput } from '../messages';
import type { AgentRunInput, DelegationInput, DelegationView, RunOutcome } from '../run-types';
import { failureMessage } from '../message-values';
import type { agentRun } from '../agent-run';
import { core, recorder, verifier } from './activities';
import { DELEGATE_CANCEL_USAGE, DELEGATE_USAGE_LOCAL, SEALED_STATE, sealedDigest } from './patches';
import type { CallInFlight, RunState } from './run-state';

/** The workflow type of a delegate's run: `agentRun` (src/workflows/agent-run.ts), by name so this module does not import the workflow. */
const AGENT_RUN = 'agentRun';

/**
 * The id of a delegate's run: `warden/<delegate agent>/<delegating run's key>.d<seq>`, where `seq`
 * is the delegation call's place in the delegating run's conversation (unique in that run). Read
 * left to right it names the delegate, then whose task it is.
 */
export function delegateRunId(parentRunId: string, parentAgent: string, agent: string, seq: number): string {
  const prefix = `warden/${parentAgent}/`;
  const key = parentRunId.startsWith(prefix) ? parentRunId.slice(prefix.length) : parentRunId.replace(/\//g, '_');
  return `warden/${agent}/${key}.d${seq}`;
}

/** The runs this run hands tasks to, as child workflows: started, steered (pause, resume, rollback) and accounted for. */
export class Delegations {
  constructor(private readonly run: RunState) {}

  /**
   * Step 5 of a delegation: the delegate's run, as a child workflow, under its own policy and
   * inside a ceiling of this run's budgets; what it used is charged here, what it did joins the
   * rollback plan, and its answer (or why it stopped) is the call's result.
   */
  async delegate(f: CallInFlight, agent: string): Promise<void> {
    const run = this.run;
    const { call, seq } = f;
    run.phase = 'running_tools';
    const left = budgetsLeft(run.prepared.policy.budgets, run.input.delegation?.ceiling, spentOf(run.gov), run.elapsed());
    const others = run.inFlight.filter((o) => o !== f && o.delegationWaiting).length;
    const ceiling = delegationCeiling(left, [...run.running.values()].map((r) => r.ceiling), 1 + others);
    f.delegationWaiting = false;
    const runId = delegateRunId(run.runId, run.input.agent, agent, seq);
    const empty = emptyCeiling(ceiling);
    if (empty) {
      run.record('budget_exhausted', { callId: call.id, tool: call.name, delegation: runId, message: `the delegation could not start: ${empty}` });
      run.delegations.push({ callId: call.id, agent, runId, status: 'not_started', reason: empty });
      return run.settle(f, 'not run', `not run: the delegation to ${agent} could not start: ${empty}`);
    }
    const delegation: DelegationInput = {
      runId: run.runId,
      agent: run.input.agent,
      callId: call.id,
      requester: run.prepared.requester,
      ceiling,
      depth: (run.input.delegation?.depth ?? 0) + 1,
      lineage: [run.runId, ...run.lineage()],
    };
    const script = run.scriptTurn()?.toolCalls?.[f.index]?.script;
    const view: DelegationView = { callId: call.id, agent, runId, status: 'running' };
    run.delegations.push(view);
    run.record('delegation_started', { callId: call.id, tool: call.name, agent, runId, ceiling, depth: delegation.depth });
    run.setLine(f, `delegated to ${runId}`);
    let outcome: RunOutcome;
    try {
      const childInput: AgentRunInput = { agent, goal: typeof call.args.goal === 'string' ? call.args.goal : '', requester: run.prepared.requester.id, delegation, ...(script ? { script } : {}), ...(run.prepared.tenant !== undefined ? { tenant: run.prepared.tenant } : {}) };
      // The delegate's worker accepts the delegation only with this run's seal over its start input.
      if (patched(SEALED_STATE)) {
        const grant = run.grantRef();
        childInput.seal = await verifier.sealState({ kind: 'delegation', to: runId, digest: sealedDigest(childInput), ...(grant ? { grant } : {}) });
      }
      const handle = await startChild<typeof agentRun>(AGENT_RUN, {
        workflowId: runId,
        args: [childInput],
        // A delegating run that ends any other way (terminated, timed out) asks its delegates to stop too.
        parentClosePolicy: 'REQUEST_CANCEL',
        staticSummary: `${agent}, delegated by ${run.runId} (${call.id})`,
      });
      run.running.set(runId, { handle, ceiling });
      if (run.paused) await this.tell(runId, pauseSignal, { by: 'the delegating run', reason: `${run.runId} is paused` });
      if (run.rollbackRequest) await this.tell(runId, rollbackSignal, { ...run.rollbackRequest, reason: `${run.runId} is rolling back` });
      outcome = await handle.result();
    } catch (err) {
      view.status = isCancellation(err) ? 'cancelled' : 'failed';
      view.reason = failureMessage(err);
      // A cancelled delegate returns no outcome, yet it spent: its trail says how much, and this run is charged.
      const used = isCancellation(err) && patched(DELEGATE_CANCEL_USAGE) ? await this.spendingOf(runId) : undefined;
      if (used) run.gov = { ...run.gov, delegated: addDelegateUsage(run.gov.delegated, used) };
      run.record('delegation_finished', { callId: call.id, agent, runId, status: view.status, error: view.reason, ...(used ? { used } : {}) });
      if (isCancellation(err)) throw err;
      run.settle(f, 'failed', `the delegation to ${agent} failed: ${view.reason}`);
      return;
    } finally {
      run.running.delete(runId);
    }
    const used = { steps: outcome.steps, toolCalls: outcome.toolCalls, ...outcome.usage };
    run.gov = { ...run.gov, delegated: addDelegateUsage(run.gov.delegated, used) };
    view.status = outcome.status;
    view.reason = outcome.reason;
    run.executedCalls.push(...(outcome.undoable ?? []));
    run.notUndoable.push(...(outcome.notUndoable ?? []));
    run.record('delegation_finished', {
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
    run.pendingRows.push({
      seq,
      message: { role: 'tool', content: [{ type: 'tool-result', toolCallId: call.id, toolName: f.spec?.modelName ?? call.name, output: { type: 'json', value: answer } }] },
    });
    run.setLine(f, outcome.status === 'completed' ? 'done' : `${outcome.status}: ${outcome.reason}`);
  }

  /**
   * What a cancelled delegate spent, from its trail; even when this run is being cancelled too.
   * Asked with a local activity (DELEGATE_USAGE_LOCAL), retried as the run's own store writes are
   * (a read that fails leaves the spending uncharged): a regular one's result could be completed
   * by anyone with a Temporal client (zero spending, say) in the worker's place.
   */
  private async spendingOf(runId: string): Promise<DelegateUsage | undefined> {
    const input = { runId: this.run.runId, delegate: runId };
    try {
      const found = await CancellationScope.nonCancellable(() =>
        patched(DELEGATE_USAGE_LOCAL) ? this.run.local(() => recorder.delegateSpending(input)) : core.delegateSpending(input),
      );
      if ('used' in found) return found.used;
      log.warn('delegate spending not charged', { delegate: runId, reason: found.refused });
    } catch (err) {
      log.warn('delegate spending not read', { delegate: runId, error: failureMessage(err) });
    }
    return undefined;
  }

  /** Signals one running delegate (pause, resume, rollback); one that has just ended is no matter. */
  async tell(runId: string, signal: typeof pauseSignal, input: OperatorInput): Promise<void> {
    const delegate = this.run.running.get(runId);
    if (!delegate) return;
    try {
      await delegate.handle.signal(signal, input);
    } catch (err) {
      if (isCancellation(err)) throw err;
      log.info('delegate not signalled', { delegate: runId, error: failureMessage(err) });
    }
  }

  /** Signals every running delegate. */
  tellAll(signal: typeof pauseSignal, input: OperatorInput): Promise<void> {
    return Promise.all([...this.run.running.keys()].map((runId) => this.tell(runId, signal, input))).then(() => undefined);
  }
}
