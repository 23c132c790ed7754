import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import { AGENT_RUN_WORKFLOW } from '../config';

/** Positive verdicts kept (one per execution); an execution's type and task queue never change. */
const MAX_REMEMBERED = 10_000;

/** An activity refused because it was not scheduled by one of this worker's runs. Never retried. */
export function activityRefused(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: 'ActivityRefused', message, nonRetryable: true });
}

/**
 * Any workflow in the namespace can schedule any activity on any task queue, with any input: a
 * worker of someone else's, on a task queue of its own, could run a workflow that schedules
 * Warden's `pay` with an amount of its choosing. Every Warden activity therefore checks, before
 * it does anything, that it was scheduled by an agent run on this worker's own task queue (whose
 * workflow tasks only Warden's workers take, so the code that governed the call is Warden's):
 *
 * - a local activity is run by the worker that runs the workflow task, so it is Warden's by construction;
 * - otherwise the activity asks Temporal (with the worker's own client) for the scheduling
 *   execution's workflow type and task queue, once per execution;
 * - an input that names a run is refused unless it names the run that scheduled it.
 *
 * A refusal fails the activity without retry and is logged with the scheduling execution.
 */
export class ExecutionGuard {
  private readonly verified = new Set<string>();

  constructor(private readonly logger: Logger) {}

  async check(activity: string, input: unknown): Promise<void> {
    const ctx = Context.current();
    const { workflowExecution, workflowType, taskQueue, isLocal } = ctx.info;
    const refuse = (reason: string): never => {
      this.logger.warn({ activity, workflowId: workflowExecution?.workflowId, workflowRunId: workflowExecution?.runId, workflowType, taskQueue, reason }, 'activity refused');
      throw activityRefused(`refused: activity input not made for this run: ${reason}`);
    };
    if (!workflowExecution) return refuse('no workflow scheduled it');
    const named = typeof input === 'object' && input !== null && 'runId' in input ? input.runId : undefined;
    if (named !== undefined && named !== workflowExecution.workflowId) {
      return refuse(`it names run ${JSON.stringify(named)}, but ${workflowExecution.workflowId} scheduled it`);
    }
    if (isLocal) return;
    if (workflowType !== AGENT_RUN_WORKFLOW) return refuse(`a ${workflowType ?? 'unknown'} workflow scheduled it, not an agent run`);
    if (this.verified.has(workflowExecution.runId)) return;
    const described = await ctx.client.workflowService.describeWorkflowExecution({ namespace: ctx.info.namespace, execution: { workflowId: workflowExecution.workflowId, runId: workflowExecution.runId } });
    const queue = described.executionConfig?.taskQueue?.name ?? '';
    const type = described.workflowExecutionInfo?.type?.name ?? '';
    if (type !== AGENT_RUN_WORKFLOW) return refuse(`the execution that scheduled it is a ${type || 'unknown'} workflow, not an agent run`);
    if (queue !== taskQueue) return refuse(`the run ${workflowExecution.workflowId} that scheduled it runs on task queue "${queue}", not on this worker's "${taskQueue}"`);
    if (this.verified.size >= MAX_REMEMBERED) this.verified.delete(this.verified.values().next().value ?? '');
    this.verified.add(workflowExecution.runId);
  }
}
