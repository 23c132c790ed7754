import { randomUUID } from 'node:crypto';
import { Client, Connection, WorkflowFailedError, WorkflowIdReusePolicy, type WorkflowHandle } from '@temporalio/client';
import { parsePolicy, type AuditEvent, type Policy } from '../governance';
import { AGENT_RUN_WORKFLOW, TASK_QUEUE, runIdFor, temporalSettingsFromEnv, type TemporalSettings } from '../config';
import type { RunStore } from '../store/types';
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
} from '../workflows/messages';
import { agentSearchAttribute, requesterSearchAttribute, statusSearchAttribute } from '../workflows/search-attributes';
import type { agentRun } from '../workflows/agent-run';
import type { CompensationStep, PendingApproval, RunOutcome, RunStatusView, ScriptTurn } from '../workflows/types';

export interface StartRunOptions {
  agent: string;
  goal: string;
  /** Who asked for the run; they cannot approve its calls (four-eyes). */
  requester: string;
  /** Makes the run id `warden/<agent>/<key>`; a random key by default. A key is never reused. */
  key?: string;
  script?: ScriptTurn[];
  policy?: Policy;
  continueAsNewAfterSteps?: number;
}

export interface RunSummary {
  runId: string;
  agent: string;
  status: string;
  requester: string;
  startTime: Date;
}

/**
 * The typed client the CLI, the web inbox and Slack use: start runs, read their state, send them
 * decisions. Every message goes through the constants in `workflows/messages`, never a typed string.
 */
export class WardenClient {
  constructor(
    readonly client: Client,
    private readonly taskQueue = TASK_QUEUE,
  ) {}

  /** Connects from settings or the environment (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, TLS, API key). */
  static async connect(settings: TemporalSettings = temporalSettingsFromEnv(), taskQueue?: string): Promise<WardenClient> {
    const connection = await Connection.connect({ address: settings.address, tls: settings.tls, apiKey: settings.apiKey });
    return new WardenClient(new Client({ connection, namespace: settings.namespace }), taskQueue);
  }

  async close(): Promise<void> {
    await this.client.connection.close();
  }

  /** Starts a run and returns its id without waiting. A policy given here is validated first. */
  async startRun(options: StartRunOptions): Promise<string> {
    if (!options.goal.trim()) throw new Error('a run needs a goal');
    if (!options.requester.trim()) throw new Error('a run needs a requester');
    const policy = options.policy ? parsePolicy(options.policy, 'startRun policy') : undefined;
    const runId = runIdFor(options.agent, options.key ?? randomUUID());
    await this.client.workflow.start<typeof agentRun>(AGENT_RUN_WORKFLOW, {
      workflowId: runId,
      taskQueue: this.taskQueue,
      args: [{ agent: options.agent, goal: options.goal, requester: options.requester, script: options.script, policy, continueAsNewAfterSteps: options.continueAsNewAfterSteps }],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      typedSearchAttributes: [
        { key: agentSearchAttribute, value: options.agent },
        { key: requesterSearchAttribute, value: options.requester },
        { key: statusSearchAttribute, value: 'running' },
      ],
      staticSummary: `${options.agent}: ${options.goal.slice(0, 120)}`,
    });
    return runId;
  }

  handle(runId: string): WorkflowHandle<typeof agentRun> {
    return this.client.workflow.getHandle<typeof agentRun>(runId);
  }

  /**
   * Waits for the run's outcome. A cancelled run's outcome comes from its `status` query, since
   * Temporal reports the cancellation as a failure of the workflow.
   */
  async result(runId: string): Promise<RunOutcome> {
    try {
      return await this.handle(runId).result();
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        const status = await this.status(runId).catch(() => null);
        if (status?.outcome) return status.outcome;
      }
      throw err;
    }
  }

  status(runId: string): Promise<RunStatusView> {
    return this.handle(runId).query(statusQuery);
  }

  pendingApprovals(runId: string): Promise<PendingApproval[]> {
    return this.handle(runId).query(pendingApprovalsQuery);
  }

  rollbackPlan(runId: string): Promise<CompensationStep[]> {
    return this.handle(runId).query(rollbackPlanQuery);
  }

  /** The whole audit trail: events in the run store, then the run's own events not flushed yet. */
  async auditTrail(runId: string, store?: RunStore): Promise<AuditEvent[]> {
    const fromStore = store ? await store.readAudit(runId) : [];
    const live = await this.handle(runId)
      .query(auditTrailQuery)
      .catch(() => null);
    const bySeq = new Map<number, AuditEvent>();
    for (const e of fromStore) bySeq.set(e.seq, e);
    for (const e of live?.events ?? []) bySeq.set(e.seq, e);
    return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  }

  approve(runId: string, decision: ApproveInput): Promise<void> {
    return this.handle(runId).signal(approveSignal, decision);
  }

  reject(runId: string, decision: RejectInput): Promise<void> {
    return this.handle(runId).signal(rejectSignal, decision);
  }

  pause(runId: string, input: OperatorInput = {}): Promise<void> {
    return this.handle(runId).signal(pauseSignal, input);
  }

  resume(runId: string, input: OperatorInput = {}): Promise<void> {
    return this.handle(runId).signal(resumeSignal, input);
  }

  rollback(runId: string, input: OperatorInput = {}): Promise<void> {
    return this.handle(runId).signal(rollbackSignal, input);
  }

  async cancel(runId: string): Promise<void> {
    await this.handle(runId).cancel();
  }

  /** Sends a validated policy to one run; it decides with it from its next call. */
  applyPolicy(runId: string, policy: Policy, by?: string): Promise<void> {
    return this.handle(runId).signal(applyPolicySignal, { policy: parsePolicy(policy, 'applyPolicy'), by });
  }

  /** Runs found through visibility: by agent and Warden status (open runs only by default). */
  async listRuns(filter: { agent?: string; status?: string; open?: boolean } = {}): Promise<RunSummary[]> {
    const clauses = [`WorkflowType = '${AGENT_RUN_WORKFLOW}'`];
    if (filter.agent) clauses.push(`WardenAgent = '${filter.agent.replace(/'/g, '')}'`);
    if (filter.status) clauses.push(`WardenStatus = '${filter.status.replace(/'/g, '')}'`);
    if (filter.open ?? true) clauses.push(`ExecutionStatus = 'Running'`);
    const out: RunSummary[] = [];
    for await (const wf of this.client.workflow.list({ query: clauses.join(' AND ') })) {
      out.push({
        runId: wf.workflowId,
        agent: wf.typedSearchAttributes.get(agentSearchAttribute) ?? '',
        status: wf.typedSearchAttributes.get(statusSearchAttribute) ?? '',
        requester: wf.typedSearchAttributes.get(requesterSearchAttribute) ?? '',
        startTime: wf.startTime,
      });
    }
    return out;
  }
}

export type { RunOutcome, RunStatusView, PendingApproval, CompensationStep };
