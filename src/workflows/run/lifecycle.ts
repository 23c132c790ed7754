import { ApplicationFailure, allHandlersFinished, condition, continueAsNew, patched, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import { packAudit, spentOf } from '../../governance/workflow-safe';
import type { CallModelResult } from '../../activities/activity-types';
import type { MessageRow } from '../../store/run-store';
import type { agentRun } from '../agent-run';
import { AuditLog } from '../audit-log';
import { agentSearchAttribute, requesterSearchAttribute, tenantSearchAttribute } from '../search-attributes';
import { ShadowDecider } from '../shadow-decider';
import type { AgentRunInput, CarriedState, RollbackReport, RunOutcome } from '../run-types';
import { core, model, recorder, verifier } from './activities';
import { rollback } from './compensation';
import { FEWER_COMMANDS, GRANTS, PREPARE_WITH_FIRST_MODEL_CALL, SEALED_STATE, TURNS_V2, sealedDigest } from './patches';
import { RunEnd } from './run-end';
import type { RunState } from './run-state';
import { MAX_TEXT_IN_AUDIT, type ToolCalls } from './tool-calls';

/**
 * How an execution of a run begins (prepared by the worker, or restored from sealed carried
 * state), hands over to the next one (continue-as-new), and ends (the outcome, rolled back first
 * when asked, the trail flushed to the run store).
 */
export class Lifecycle {
  constructor(
    private readonly run: RunState,
    private readonly calls: ToolCalls,
  ) {}

  async start(): Promise<void> {
    const run = this.run;
    const input = run.input;
    const carried = input.carried;
    // A run that started before grants goes on without them (its preparation has none); the carried
    // flag is sealed. GRANTS implies FEWER_COMMANDS and the patches before it: one marker a run.
    // TURNS_V2 implies GRANTS, and an execution continued from one without grants asks neither.
    run.sparseAnchors = !carried?.ungranted && patched(TURNS_V2);
    // An execution continued from one that kept no sealed spend has none to hand on.
    run.sealsSpend = run.sparseAnchors && (!carried || carried.spent !== undefined);
    run.grants = run.sparseAnchors || (!carried?.ungranted && patched(GRANTS));
    run.fewerCommands = run.grants || patched(FEWER_COMMANDS);
    // A model answer withheld because a quota on model spend was spent before the run's first call.
    let spentBeforeStart: CallModelResult | null = null;
    if (carried) {
      // Only Temporal sets continuedFromExecutionRunId: a start input cannot pass itself off as a continuation.
      const from = workflowInfo().continuedFromExecutionRunId;
      if (!from) {
        throw ApplicationFailure.nonRetryable('refused: the start input carries run state, which is accepted only from a continue-as-new of the same run', 'RunInputError');
      }
      // Cron and retry runs are continued too, with the first input again: only a seal of the
      // execution before this one, made by its worker as it continued as new, proves where the state came from.
      if (patched(SEALED_STATE)) {
        const verdict = await run.local(() => verifier.verifySeal({ kind: 'carry', from: { workflowId: run.runId, runId: from }, digest: sealedDigest(input), seal: input.seal }));
        if ('refused' in verdict) throw ApplicationFailure.nonRetryable(`refused: ${verdict.refused}`, 'RunInputError');
      }
      this.restore(carried);
      run.quotas.begin();
      run.record('run_continued', { execution: carried.executions + 1, messageCount: carried.messageCount });
    } else {
      const delegation = input.delegation;
      if (delegation !== undefined) {
        // Only Temporal sets the parent: a start input cannot pass itself off as a delegating run's child (and its requester).
        if (workflowInfo().parent?.workflowId !== delegation.runId) {
          throw ApplicationFailure.nonRetryable('refused: the start input says the run was delegated, which is accepted only from the delegating run itself (as its child workflow)', 'RunInputError');
        }
      }
      const prepare = {
        runId: run.runId,
        agent: input.agent,
        requester: input.requester,
        goal: input.goal,
        startedAtMs: workflowInfo().startTime.getTime(),
        ...(input.policy !== undefined ? { policy: input.policy } : {}),
        ...(input.requesterProof !== undefined ? { requesterProof: input.requesterProof } : {}),
        // Taken by the worker only when the signed start names it.
        ...(input.tenant !== undefined ? { tenant: input.tenant } : {}),
        // A delegate's start input is checked by the worker against the delegating run's seal.
        ...(delegation !== undefined
          ? { delegation: { parent: { workflowId: workflowInfo().parent?.workflowId ?? '', runId: workflowInfo().parent?.runId ?? '' }, digest: sealedDigest(input), seal: input.seal, ...(run.grants ? { requester: delegation.requester } : {}) } }
          : {}),
      };
      const goalRow: MessageRow = { seq: 0, message: { role: 'user', content: input.goal } };
      // One activity prepares the run and makes its first model call: a round trip fewer for every
      // run. Not when an operator has already paused or rolled it back: then nothing is asked first.
      if (!run.paused && !run.rollbackRequest && (run.fewerCommands || patched(PREPARE_WITH_FIRST_MODEL_CALL))) {
        const script = input.script;
        const first = await model.prepareAndCallModel.executeWithOptions({ summary: 'prepare the run, model turn 1' }, [
          {
            prepare,
            model: { runId: run.runId, agent: input.agent, step: 1, upTo: 1, append: [goalRow], audit: [], ...(script ? { scriptTurn: script[0] ?? null } : {}), ...(run.sealsSpend ? { spend: { spent: run.spent } } : {}) },
            ...(run.telemetry.enabled ? { withPrice: true } : {}),
            ...(delegation ? { ceiling: delegation.ceiling } : {}),
          },
        ]);
        run.setPrepared(first.prepared);
        run.firstAnswer = first.answer;
        if (first.answer) run.noteSpent(first.answer);
      } else {
        run.setPrepared(await core.prepareRun(prepare));
      }
      // A delegate works for its delegating run's requester, as that run's worker established them.
      if (delegation) run.prepared = { ...run.prepared, requester: delegation.requester };
      run.quotas.begin();
      run.policy = run.compile(run.prepared.policy);
      run.shadow = ShadowDecider.from(run.prepared.shadow, run.prepared.agent.tools.map((t) => t.name));
      run.record('run_started', {
        agent: input.agent,
        requester: run.prepared.requester.id,
        requesterVerified: run.prepared.requester.verified,
        requesterChannel: run.prepared.requester.channel ?? null,
        ...(run.prepared.requester.unverified ? { requesterUnverified: run.prepared.requester.unverified } : {}),
        goal: input.goal.slice(0, MAX_TEXT_IN_AUDIT),
        ...(run.prepared.tenant !== undefined ? { tenant: run.prepared.tenant } : {}),
        ...(run.prepared.tenantRefused !== undefined ? { tenantRefused: run.prepared.tenantRefused } : {}),
        policyVersion: run.policy.version,
        policySource: run.prepared.policySource,
        model: run.prepared.agent.modelId,
        ...run.shadow.startFields(),
        ...(delegation ? { delegatedBy: run.delegatedBy(), ceiling: delegation.ceiling, depth: delegation.depth } : {}),
      });
      // With the first model call made, the goal is in the store already, and the answer is the first step's.
      run.messageCount = 1;
      if (run.firstAnswer?.quota?.stop) {
        spentBeforeStart = run.firstAnswer;
        run.firstAnswer = null;
      }
      if (run.firstAnswer) {
        this.calls.beginStep();
        run.quotas.answered(run.firstAnswer);
        this.calls.account(run.firstAnswer);
      } else {
        run.pendingRows.push(goalRow);
      }
    }
    for (const spec of run.prepared.agent.tools) run.tools.set(spec.name, spec);
    const budgets = run.prepared.policy.budgets;
    if (budgets.maxCostUsd !== undefined && !run.prepared.policy.pricing[run.prepared.agent.modelId]) {
      throw new RunEnd('failed', `the policy sets budgets.maxCostUsd but pricing has no entry for model "${run.prepared.agent.modelId}"`);
    }
    if (input.delegation?.ceiling.maxCostUsd !== undefined && !run.prepared.policy.pricing[run.prepared.agent.modelId]) {
      // Unpriced, its spend would be $0 to the delegating run's cost budget.
      throw new RunEnd('failed', `the delegating run has a cost budget, but this agent's policy has no pricing entry for model "${run.prepared.agent.modelId}"`);
    }
    const identity: SearchAttributeUpdatePair[] = [
      { key: agentSearchAttribute, value: input.agent },
      { key: requesterSearchAttribute, value: run.prepared.requester.id },
      ...(run.prepared.tenant !== undefined ? [{ key: tenantSearchAttribute, value: run.prepared.tenant }] : []),
    ];
    if (run.fewerCommands) {
      // With the run's first status report: the first answer's calls may change the status at once
      // (to awaiting_approval), and every path reports before the run waits on anything.
      run.identityPending = identity;
    } else {
      upsertSearchAttributes(identity);
      run.report('running');
    }
    if (run.quotas.on && !carried) {
      // A quota on runs started refused this run, or one on model spend was spent before its first call.
      if (run.prepared.quotaStop !== undefined) {
        run.record('quota_exceeded', { on: 'run_start', reason: run.prepared.quotaStop });
        throw new RunEnd('budget_exhausted', run.prepared.quotaStop);
      }
      if (spentBeforeStart) run.quotas.answered(spentBeforeStart);
    }
  }

  private restore(c: CarriedState): void {
    const run = this.run;
    run.setPrepared(c.prepared);
    run.policy = run.compile(c.prepared.policy);
    run.gov = c.govern;
    run.audit = new AuditLog(c.auditHead);
    run.messageCount = c.messageCount;
    run.startedAtMs = c.startedAtMs;
    run.executedCalls = c.executedCalls;
    run.notUndoable = c.notUndoable;
    run.delegations = c.delegations ?? [];
    run.lastDecision = c.lastDecision;
    run.paused = c.paused;
    run.pausedByPolicy = c.pausedByPolicy ?? false;
    run.usedCommands = c.usedCommands ?? [];
    if (c.spent) run.spent = c.spent;
    run.shadow = ShadowDecider.from(c.shadow?.source, c.prepared.agent.tools.map((t) => t.name), c.shadow);
  }

  shouldContinueAsNew(): boolean {
    const every = this.run.input.continueAsNewAfterSteps;
    return workflowInfo().continueAsNewSuggested || (every !== undefined && this.run.stepsThisExecution >= every);
  }

  /** Hands the run's governance state to the next execution, sealed by the worker. */
  async continueAsNew(): Promise<never> {
    const run = this.run;
    await this.flush();
    // Messages being handled must finish first, or their effect would be lost.
    await condition(allHandlersFinished);
    const carried: CarriedState = {
      // Under grants the preparation goes on exactly as the worker granted it (its policy is the compiled one's).
      prepared: run.grants ? run.prepared : { ...run.prepared, policy: run.policy.policy },
      govern: run.gov,
      auditHead: run.audit.current,
      messageCount: run.messageCount,
      startedAtMs: run.startedAtMs,
      executions: (run.input.carried?.executions ?? 1) + 1,
      executedCalls: run.executedCalls,
      notUndoable: run.notUndoable,
      lastDecision: run.lastDecision,
      paused: run.paused,
      ...(run.delegations.length > 0 ? { delegations: run.delegations } : {}),
      pausedByPolicy: run.pausedByPolicy,
      ...(run.usedCommands.length > 0 ? { usedCommands: run.usedCommands } : {}),
      ...(run.shadow.carry() ? { shadow: run.shadow.carry() } : {}),
      ...(run.grants ? {} : { ungranted: true }),
      ...(run.sealsSpend ? { spent: run.spent } : {}),
    };
    const { seal: _previous, ...start } = run.input;
    const next: AgentRunInput = { ...start, carried };
    if (patched(SEALED_STATE)) next.seal = await verifier.sealState({ kind: 'carry', to: run.runId, digest: sealedDigest(next) });
    return continueAsNew<typeof agentRun>(next);
  }

  /** Ends the run: rolled back first when asked (or when the policy says so on failure), then the outcome, audited and flushed. */
  async finish(end: RunEnd): Promise<RunOutcome> {
    const run = this.run;
    let report: RollbackReport | undefined;
    if (end.status === 'failed' && run.prepared?.policy.onRunFailure === 'rollback' && run.executedCalls.length > 0) {
      end = new RunEnd('rolled_back', `run failed (${end.reason}); rolled back as the policy says`);
    }
    if (end.status === 'rolled_back') report = await rollback(run);
    run.desk.cancelPending();
    // Whatever the run still holds against quotas (a call cut short, a cancelled run) goes back.
    await run.quotas.settleRun();
    // Everything the run caused, its delegates' runs included (`delegated` says how much of it was theirs).
    const spent = spentOf(run.gov);
    const usage = { inputTokens: spent.inputTokens, outputTokens: spent.outputTokens, costUsd: spent.costUsd };
    const delegated = run.gov.delegated;
    run.record('run_finished', { status: end.status, reason: end.reason, steps: spent.steps, toolCalls: spent.toolCalls, usage, ...(delegated ? { delegated } : {}) });
    const outcome: RunOutcome = {
      status: end.status,
      reason: end.reason,
      text: end.text,
      steps: spent.steps,
      toolCalls: spent.toolCalls,
      usage,
      policyVersion: run.policy?.version ?? '',
      audit: run.audit.current,
    };
    if (end.budget) outcome.budget = end.budget;
    if (report) outcome.rollback = report;
    if (delegated) outcome.delegated = delegated;
    if (run.input.delegation) {
      // What the delegating run may still undo: rollback there reaches what this run did.
      outcome.undoable = run.executedCalls.map((step) => (step.runId ? step : { ...step, runId: run.runId, agent: run.input.agent, shownArgs: run.redact(step.tool, step.args) }));
      outcome.notUndoable = run.notUndoable.map((n) => (n.runId ? n : { ...n, runId: run.runId }));
    }
    run.outcome = outcome;
    run.phase = 'finished';
    run.inFlight = [];
    run.report(outcome.status, `${outcome.status}: ${outcome.reason}`);
    if (run.prepared) await this.flush();
    await condition(allHandlersFinished);
    return outcome;
  }

  /** Writes what the store lacks (audit events, conversation rows) and anchors the chain's head in the memo. */
  private async flush(): Promise<void> {
    const run = this.run;
    const audit = run.audit.unflushed();
    const append = run.takePending();
    if (audit.length > 0 || append.length > 0) {
      await (run.fewerCommands ? recorder : core).recordRun({ runId: run.runId, audit: packAudit(audit), append });
      run.audit.markFlushed(audit);
    }
    run.audit.anchor(run.desk.memoChange());
  }
}
