import { isCancellation, proxyActivities } from '@temporalio/workflow';
import type { CoreActivities } from '../../activities/activity-types';
import { durationMs, packAudit } from '../../governance/workflow-safe';
import type { RollbackReport } from '../run-types';
import { failureMessage } from '../message-values';
import { retryPolicy } from './activities';
import type { RunState } from './run-state';

/**
 * Undoes what the run did: the compensation of every executed call (its delegates' included),
 * newest first, each audited; a failed one is reported and the rest still run.
 */
export async function rollback(run: RunState): Promise<RollbackReport> {
  run.phase = 'rolling_back';
  run.report('running', `rolling back ${run.executedCalls.length} call(s)`);
  const report: RollbackReport = { undone: [], failed: [], notUndoable: [...run.notUndoable] };
  for (const step of [...run.executedCalls].reverse()) {
    // A delegate's call: its tool is the delegate agent's, its result in the delegate's run; the undo is audited here.
    const spec = step.runId === undefined ? run.tools.get(step.tool) : undefined;
    const of = step.runId === undefined ? {} : { runId: step.runId };
    const audit = run.audit.unflushed();
    try {
      await proxyActivities<CoreActivities>({
        startToCloseTimeout: durationMs(run.policy.toolPolicy(step.tool)?.timeout ?? spec?.timeout ?? '1m'),
        retry: retryPolicy(spec?.retry, run.policy.toolPolicy(step.tool)?.retry),
        summary: `undo ${step.tool} (${step.callId})`,
      }).compensateCall({
        runId: run.runId,
        agent: run.input.agent,
        requester: run.prepared.requester.id,
        callId: step.callId,
        tool: step.tool,
        args: step.args,
        idempotencyKey: run.idempotencyKey(step.runId === undefined ? `undo:${step.callId}` : `undo:${step.runId}:${step.callId}`, step.resultSeq, step.args),
        resultSeq: step.resultSeq,
        audit: packAudit(audit),
        ...(step.runId !== undefined ? { callRunId: step.runId, callAgent: step.agent ?? run.input.agent } : {}),
        ...(step.quotaRef !== undefined ? { quotaRef: step.quotaRef } : {}),
        ...run.grantFor(step.seal),
      });
      run.audit.markFlushed(audit);
      report.undone.push({ callId: step.callId, tool: step.tool, ...of });
      run.record('compensation_run', { callId: step.callId, tool: step.tool, ...of });
    } catch (err) {
      if (isCancellation(err)) throw err;
      report.failed.push({ callId: step.callId, tool: step.tool, error: failureMessage(err), ...of });
      run.record('compensation_failed', { callId: step.callId, tool: step.tool, error: failureMessage(err), ...of });
    }
  }
  run.executedCalls = [];
  return report;
}
