import { CancellationScope, ContinueAsNew, isCancellation, log, setHandler } from '@temporalio/workflow';
import type { AuditEventType } from '../governance/workflow-safe';
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
import { openSignal, refusePlaintextStart, sealedSignal, sealedValidator } from './plaintext';
import { Delegations } from './run/delegation';
import { Lifecycle } from './run/lifecycle';
import { OperatorControls } from './run/operator-controls';
import { RunEnd } from './run/run-end';
import { RunState } from './run/run-state';
import { rollbackPlan, statusView } from './run/status-view';
import { ToolCalls } from './run/tool-calls';
import type { AgentRunInput, RunOutcome } from './run-types';
import { failureMessage } from './message-values';

/**
 * One governed agent run: its handlers and its loop. What the run knows lives in `RunState`;
 * each role is a module of `./run/` that shares it (lifecycle, tool calls, delegation, operator
 * controls, compensation, the status view).
 */
class AgentRun {
  private readonly run: RunState;
  private readonly lifecycle: Lifecycle;
  private readonly calls: ToolCalls;
  private readonly operators: OperatorControls;

  constructor(input: AgentRunInput) {
    const run = (this.run = new RunState(input));
    const delegations = new Delegations(run);
    this.calls = new ToolCalls(run, delegations);
    this.lifecycle = new Lifecycle(run, this.calls);
    this.operators = new OperatorControls(run, this.calls, delegations);
    // Handlers are registered before the first await so the Temporal UI lists them from the start
    // and no early message is dropped.
    setHandler(statusQuery, () => statusView(run), { description: 'Phase, step, budgets used and left, pending approvals, last decision, outcome.' });
    setHandler(pendingApprovalsQuery, () => run.pendingApprovals(), { description: 'Calls waiting for a human decision: id, tool, redacted args, rule, approvers, expiry.' });
    setHandler(auditTrailQuery, () => run.audit.view(), { description: 'The hash-chained audit events of this run (earlier executions are in the run store).' });
    setHandler(rollbackPlanQuery, () => rollbackPlan(run), { description: 'The compensations a rollback would run, newest first (arguments redacted).' });
    // Messages that act need encrypted input where the worker holds a payload key; a pause does not (./plaintext.ts).
    const record = (type: AuditEventType, data: Record<string, unknown>) => run.record(type, data);
    setHandler(approveSignal, sealedSignal('approve', record, (decision: ApproveInput) => run.desk.decide('approve', decision).then(() => undefined)), {
      description: 'Approve a pending call: {"approvalId": "apr_…", "approver": "alice", "comment": "ok"} (counts only when signed, unless the worker accepts unsigned decisions)',
    });
    setHandler(rejectSignal, sealedSignal('reject', record, (decision: RejectInput) => run.desk.decide('reject', decision).then(() => undefined)), {
      description: 'Reject a pending call: {"approvalId": "apr_…", "approver": "alice", "reason": "too much"}',
    });
    setHandler(approveUpdate, (decision) => run.desk.decide('approve', decision), {
      validator: sealedValidator('approve', (decision: ApproveInput) => run.desk.validate('approve', decision)),
      description: 'Approve a pending call and learn at once whether it counted: {"approvalId", "approver", "comment", "signature"}',
    });
    setHandler(rejectUpdate, (decision) => run.desk.decide('reject', decision), {
      validator: sealedValidator('reject', (decision: RejectInput) => run.desk.validate('reject', decision)),
      description: 'Reject a pending call and learn at once whether it counted: {"approvalId", "approver", "reason", "signature"}',
    });
    setHandler(pauseSignal, openSignal('pause', record, (by?: OperatorInput) => this.operators.pause(by)), { description: 'Pause before the next model or tool call: {"by": "you", "reason": "…"}' });
    setHandler(resumeSignal, sealedSignal('resume', record, (by?: OperatorInput) => this.operators.resume(by)), { description: 'Resume a paused run: {"by": "you"} (counts only signed by an operator key, unless the worker accepts unsigned operators)' });
    setHandler(rollbackSignal, sealedSignal('rollback', record, (by?: OperatorInput) => this.operators.rollback(by)), {
      description: 'Undo what the run did (compensations, newest first) and end it: {"by": "you", "reason": "…"} (counts only signed by an operator key)',
    });
    setHandler(applyPolicySignal, sealedSignal('applyPolicy', record, (input?: ApplyPolicyInput) => this.operators.applyPolicy(input)), {
      description: "Take up the agent's current policy from the worker (policy directory or `warden policy apply`): {\"by\": \"you\"} (counts only signed by a policy-admin key)",
    });
  }

  async execute(): Promise<RunOutcome> {
    try {
      await this.lifecycle.start();
      for (;;) {
        await this.calls.turn();
        if (this.lifecycle.shouldContinueAsNew()) await this.lifecycle.continueAsNew();
      }
    } catch (err) {
      if (err instanceof ContinueAsNew) throw err;
      if (err instanceof RunEnd) return this.lifecycle.finish(err);
      if (isCancellation(err)) {
        await CancellationScope.nonCancellable(() => this.lifecycle.finish(new RunEnd('cancelled', 'the run was cancelled')));
        throw err;
      }
      return this.lifecycle.finish(new RunEnd('failed', failureMessage(err)));
    }
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
