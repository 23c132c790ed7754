import { randomUUID } from 'node:crypto';
import type { PayloadCodec } from '@temporalio/common';
import { failureConverter } from '../codec/failure-converter';
import type * as TelemetryInterceptors from '@temporalio/interceptors-opentelemetry/lib/client';
import type { WardenTelemetry } from '../telemetry';
import { Client, Connection, WorkflowFailedError, WorkflowIdReusePolicy, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, type WorkflowHandle } from '@temporalio/client';
// The governance modules themselves, not its index (which loads the policy engine, CEL): a client
// that never passes a policy to `startRun` never loads it, and the CLI starts faster.
import type { AuditEvent } from '../governance/signing/audit-chain';
import { goalDigest } from '../governance/signing/keyring';
import type * as PolicyModule from '../governance/policy/parse-policy';
import type { Policy } from '../governance/policy/policy-schema';
import type { SignedDecision } from '../governance/signing/signed-decision';
import { AGENT_RUN_WORKFLOW, LOCAL_TEMPORAL, TASK_QUEUE, runIdFor, type TemporalSettings } from '../config';
import type { RunStore } from '../store/run-store';
import {
  applyPolicySignal,
  approveSignal,
  approveUpdate,
  pauseSignal,
  pendingApprovalsQuery,
  rejectSignal,
  rejectUpdate,
  resumeSignal,
  rollbackPlanQuery,
  rollbackSignal,
  statusQuery,
  type ApproveInput,
  type DecisionReply,
  type RejectInput,
} from '../workflows/messages';
import { RunInputError } from './client-errors';
import { readTrail, verifyAuditTrail, type AuditTrailCheck } from './audit-verification';
import { listPendingApprovals, listRuns, type PendingApprovalsListing, type RunFilter, type RunSummary } from './listings';
import { operatorInput, type OperatorCommand } from './operator-command';
import { RunReader } from './run-reader';
import { agentSearchAttribute, replayOfSearchAttribute, requesterSearchAttribute, statusSearchAttribute } from '../workflows/search-attributes';
import type { agentRun } from '../workflows/agent-run';
import type { CompensationStep, PendingApproval, RunOutcome, RunStatusView, ScriptTurn } from '../workflows/run-types';

export interface StartRunOptions {
  agent: string;
  goal: string;
  /** Who asked for the run; they cannot approve its calls (four-eyes). */
  requester: string;
  /** Makes the run id `warden/<agent>/<key>`; a random key by default. A key is never reused. */
  key?: string;
  script?: ScriptTurn[];
  /** Honoured only by a worker started with `acceptRunInputPolicy` (tests); others fail the run. */
  policy?: Policy;
  /**
   * The tenant the run works for (quotas, `run.tenant`, the `WardenTenant` search attribute). It
   * counts only in a signed start (`signer`); a worker gives an unsigned start its default tenant, or none.
   */
  tenant?: string;
  continueAsNewAfterSteps?: number;
  /** Signs the start as a channel that authenticated the requester, so the run counts the requester as verified. */
  signer?: StartSigner;
  /** The channel `signer` signs for (default `cli`); must be the channel its key is trusted for. */
  channel?: string;
  /** The run this one replays (`warden replay`, `warden eval run`): set as the `WardenReplayOf` search attribute. */
  replayOf?: string;
}

/** What signs a run start: a channel key (`DecisionSigner`). */
export interface StartSigner {
  signStart(claims: { runId: string; agent: string; requester: string; goal: string; channel: string; tenant?: string }): SignedDecision;
}

/** How many times a decision is sent (under one Update id) when the call times out. */
const DECISION_ATTEMPTS = 5;

/** How `approve` and `reject` send a decision. */
export interface DecisionOptions {
  /** A deadline for each try of the call, in ms (default: the connection's). */
  rpcTimeoutMs?: number;
  /** Tries in all, each under the same Update id, while the call times out (default 5). */
  attempts?: number;
}

/**
 * The typed client the CLI, the web inbox and Slack use: start runs, read their state, send them
 * decisions. Every message goes through the constants in `workflows/messages`, never a typed string.
 */
export class WardenClient {
  /** Reads runs as Temporal holds them, taking only the runs' own words. */
  private readonly reader: RunReader;

  constructor(
    readonly client: Client,
    private readonly taskQueue = TASK_QUEUE,
  ) {
    this.reader = new RunReader(client);
  }

  /**
   * Connects with settings (default: a local dev server, `LOCAL_TEMPORAL`; `temporalSettingsFromEnv(process.env)` reads `TEMPORAL_*` as the CLI does).
   * `payloadCodec` must match the workers' (the same payload keys): without it, encrypted results and query answers cannot be read.
   * `telemetry` makes starts, signals, updates and queries spans whose context the run's workflow spans continue.
   */
  static async connect(settings: TemporalSettings = LOCAL_TEMPORAL, taskQueue?: string, options: { payloadCodec?: PayloadCodec; telemetry?: Pick<WardenTelemetry, 'tracer'> } = {}): Promise<WardenClient> {
    const connection = await Connection.connect({ address: settings.address, tls: settings.tls, apiKey: settings.apiKey, metadata: settings.metadata });
    // Failure messages travel as payloads, so the codec encrypts them too (the workers do the same).
    const dataConverter = { failureConverter, ...(options.payloadCodec ? { payloadCodecs: [options.payloadCodec] } : {}) };
    // Required only with telemetry: OpenTelemetry's API costs every client (each CLI command) its load time otherwise.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const telemetry = options.telemetry ? (require('@temporalio/interceptors-opentelemetry/lib/client') as typeof TelemetryInterceptors) : undefined;
    const interceptors = options.telemetry && telemetry ? { workflow: [new telemetry.OpenTelemetryWorkflowClientInterceptor({ tracer: options.telemetry.tracer })] } : undefined;
    return new WardenClient(new Client({ connection, namespace: settings.namespace, dataConverter, interceptors }), taskQueue);
  }

  async close(): Promise<void> {
    await this.client.connection.close();
  }

  /** Starts a run and returns its id without waiting. A policy given here is validated first. */
  async startRun(options: StartRunOptions): Promise<string> {
    if (!options.goal.trim()) throw new RunInputError(`a run of agent ${options.agent} needs a goal`);
    if (!options.requester.trim()) throw new RunInputError(`a run of agent ${options.agent} needs a requester`);
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- required only when a policy is given: see the imports
    const policy = options.policy ? (require('../governance/policy/parse-policy') as typeof PolicyModule).parsePolicy(options.policy, 'startRun policy') : undefined;
    const runId = runIdFor(options.agent, options.key ?? randomUUID());
    const channel = options.channel ?? 'cli';
    const tenant = options.tenant;
    const requesterProof = options.signer?.signStart({ runId, agent: options.agent, requester: options.requester, goal: goalDigest(options.goal), channel, ...(tenant !== undefined ? { tenant } : {}) });
    await this.client.workflow.start<typeof agentRun>(AGENT_RUN_WORKFLOW, {
      workflowId: runId,
      taskQueue: this.taskQueue,
      args: [{ agent: options.agent, goal: options.goal, requester: options.requester, script: options.script, policy, continueAsNewAfterSteps: options.continueAsNewAfterSteps, requesterProof, ...(tenant !== undefined ? { tenant } : {}) }],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      typedSearchAttributes: [
        { key: agentSearchAttribute, value: options.agent },
        { key: requesterSearchAttribute, value: options.requester },
        { key: statusSearchAttribute, value: 'running' },
        ...(options.replayOf ? [{ key: replayOfSearchAttribute, value: options.replayOf }] : []),
      ],
      staticSummary: `${options.agent}: ${options.goal.slice(0, 120)}`,
    });
    return runId;
  }

  handle(runId: string): WorkflowHandle<typeof agentRun> {
    return this.reader.handle(runId);
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

  /**
   * The run's status. A run Temporal terminated (no outcome of Warden's) answers no query; its
   * status then says `terminated`, from the execution's own description.
   */
  async status(runId: string): Promise<RunStatusView> {
    let view: RunStatusView | null = null;
    let failure: unknown;
    try {
      view = await this.handle(runId).query(statusQuery);
      // A worker replays a terminated run to answer: it looks as it was when Temporal cut it off.
      if (view.outcome) return view;
    } catch (err) {
      failure = err;
    }
    {
      const desc = await this.handle(runId)
        .describe()
        .catch(() => null);
      if (desc?.status.name !== 'TERMINATED') {
        if (view) return view;
        throw failure;
      }
      const when = desc.closeTime?.toISOString() ?? 'unknown time';
      const terminated = {
        status: 'terminated',
        reason: `terminated by Temporal at ${when}`,
        text: '',
        steps: 0,
        toolCalls: 0,
        usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 },
        policyVersion: '',
        audit: (await this.reader.anchorIn(runId, desc.raw.workflowExecutionInfo ?? {})) ?? { seq: 0, hash: '' },
      } as unknown as RunOutcome;
      return {
        runId,
        agent: desc.typedSearchAttributes.get(agentSearchAttribute) ?? '',
        requester: desc.typedSearchAttributes.get(requesterSearchAttribute) ?? '',
        requesterVerified: false,
        phase: 'finished',
        paused: false,
        step: 0,
        currentDetails: terminated.reason,
        budget: { used: { steps: 0, toolCalls: 0, toolCallsByTool: {}, inputTokens: 0, outputTokens: 0, costUsd: 0 }, limits: {}, left: {} },
        pendingApprovals: 0,
        lastDecision: null,
        policyVersion: view?.policyVersion ?? '',
        outcome: terminated,
      };
    }
  }

  /**
   * A run's pending approvals, from its memo (`describe`: no workflow task, so a run out of the
   * worker's cache is not replayed, and a run whose worker is down still answers). A closed run
   * has none. A run with no complete list in its memo (started before the memo existed, or more
   * approvals than fit) is asked by its `pendingApprovals` query. To list many runs' approvals,
   * `listPendingApprovals` reads them all in one visibility listing.
   *
   * Only the run's own approvals count, since anyone may start a workflow under any id with any
   * memo: the latest execution under `runId` must be an `agentRun`, its memo field encrypted under
   * this client's payload key (when it holds one), and every approval must name this run and be
   * asked for in this execution. Otherwise it throws `UntrustedRunError`, and nothing is shown.
   */
  pendingApprovals(runId: string): Promise<PendingApproval[]> {
    return this.reader.pendingApprovals(runId);
  }

  /**
   * The run's own answer (`pendingApprovals` query): a workflow task, which replays the run if it is
   * out of the worker's cache. Whoever serves the run's task queue answers, so this answer is not
   * checked: `pendingApprovals` is.
   */
  queryPendingApprovals(runId: string): Promise<PendingApproval[]> {
    return this.handle(runId).query(pendingApprovalsQuery);
  }

  /**
   * The pending approvals of every open run waiting for people (`WardenStatus` awaiting_approval
   * or paused: a paused run's approvals still count), read from the memos that one visibility
   * listing returns: no query per run. A run without a complete list in its memo is asked by
   * query (within `queryTimeoutMs` each); a run that cannot be read is reported in `failures`,
   * never hides the others. Runs with nothing pending are left out, and so are runs whose
   * approvals are not their own (`refused`, as `pendingApprovals` tells them).
   */
  listPendingApprovals(options: { queryTimeoutMs?: number } = {}): Promise<PendingApprovalsListing> {
    return listPendingApprovals(this.reader, options);
  }

  rollbackPlan(runId: string): Promise<CompensationStep[]> {
    return this.handle(runId).query(rollbackPlanQuery);
  }

  /**
   * The whole audit trail: the events in the run store, then the run's own events the store does
   * not have yet. Stored rows win; a live event that differs from the stored one of the same seq
   * is left out (`verifyAuditTrail` reports it). Unverified: show a trail to people only through
   * `verifyAuditTrail`.
   */
  async auditTrail(runId: string, store?: RunStore): Promise<AuditEvent[]> {
    return (await readTrail(this.reader, runId, store ? await store.readAudit(runId) : [])).events;
  }

  /**
   * Reads and verifies a run's trail: every hash and link, and the head Temporal holds in the
   * run's memo (written each time the store confirmed events), so a store rewritten with
   * recomputed hashes fails even with no worker running. Use it before showing a trail to anyone.
   *
   * Only the run's own execution vouches: the latest execution under `runId` must be an
   * `agentRun` of the chain of executions that began the run (a Warden run id is never reused),
   * with its anchor encrypted under this client's payload key (when it holds one). Past the
   * anchor: a run Warden ended (completed, cancelled) anchored its last event, so any event after
   * it fails; a run that answers (running, or replayed by a worker) vouches for the events up to
   * its own head, and any event past that fails; a run cut off by Temporal (terminated, timed out,
   * failed) with no worker answering fails on events past the anchor; a run still going with no
   * worker answering passes with them counted as `unanchored`, since its current turn's events
   * are stored before they are anchored.
   */
  verifyAuditTrail(runId: string, store?: RunStore): Promise<AuditTrailCheck> {
    return verifyAuditTrail(this.reader, runId, store);
  }

  /**
   * Sends an approval as an Update: the run verifies and judges it and answers in the same round
   * trip. A decision its validator refuses (no such approval, already decided, past its deadline)
   * comes back `refused` and leaves nothing in history.
   */
  approve(runId: string, decision: ApproveInput, options: DecisionOptions = {}): Promise<DecisionReply> {
    return this.decide(runId, 'approve', decision, options);
  }

  reject(runId: string, decision: RejectInput, options: DecisionOptions = {}): Promise<DecisionReply> {
    return this.decide(runId, 'reject', decision, options);
  }

  /**
   * A decision as an Update with an id of its own, sent again under the same id when the call
   * times out ("context deadline exceeded" under load): Temporal runs an Update once per id, so a
   * decision the run already counted is not counted twice, and the reply is the real outcome.
   */
  private async decide(runId: string, kind: 'approve' | 'reject', decision: ApproveInput | RejectInput, options: DecisionOptions): Promise<DecisionReply> {
    const updateId = `${kind}-${randomUUID()}`;
    const attempts = options.attempts ?? DECISION_ATTEMPTS;
    const send = (): Promise<DecisionReply> =>
      kind === 'approve'
        ? this.handle(runId).executeUpdate(approveUpdate, { args: [decision as ApproveInput], updateId })
        : this.handle(runId).executeUpdate(rejectUpdate, { args: [decision as RejectInput], updateId });
    for (let attempt = 1; ; attempt++) {
      try {
        const timeout = options.rpcTimeoutMs;
        return timeout === undefined ? await send() : await this.client.connection.withDeadline(Date.now() + timeout, send);
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError) return { status: 'refused', approvalId: decision.approvalId, reason: err.cause?.message ?? err.message };
        if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError && attempt < attempts) continue;
        throw err;
      }
    }
  }

  /** Sends an approval as a fire-and-forget signal, as the Temporal UI does; `approve` is better everywhere else. */
  signalApprove(runId: string, decision: ApproveInput): Promise<void> {
    return this.handle(runId).signal(approveSignal, decision);
  }

  signalReject(runId: string, decision: RejectInput): Promise<void> {
    return this.handle(runId).signal(rejectSignal, decision);
  }

  /**
   * Pauses a run before its next model or tool call. Anyone may pause (a safer state); with a
   * `signer`, the command is signed so the trail names the verified operator.
   */
  pause(runId: string, input: OperatorCommand = {}): Promise<void> {
    return this.handle(runId).signal(pauseSignal, operatorInput('pause', runId, input));
  }

  /** Resumes a paused run. Counts only signed by a key with the `operator` role (`signer`), unless the workers allow unsigned operators. */
  resume(runId: string, input: OperatorCommand = {}): Promise<void> {
    return this.handle(runId).signal(resumeSignal, operatorInput('resume', runId, input));
  }

  /** Rolls a run back (its compensations, newest first). Counts only signed by a key with the `operator` role (`signer`). */
  rollback(runId: string, input: OperatorCommand = {}): Promise<void> {
    return this.handle(runId).signal(rollbackSignal, operatorInput('rollback', runId, input));
  }

  async cancel(runId: string): Promise<void> {
    await this.handle(runId).cancel();
  }

  /**
   * Tells a run to take up its agent's current policy from the worker (after `setAppliedPolicy`
   * or a changed policy file). The run re-decides its pending approvals under it.
   */
  applyPolicy(runId: string, input: Omit<OperatorCommand, 'reason'> = {}): Promise<void> {
    const { reason: _none, ...command } = operatorInput('applyPolicy', runId, input);
    return this.handle(runId).signal(applyPolicySignal, command);
  }

  /** Runs found through visibility: by agent and Warden status (open runs only by default), as `RunFilter` says. */
  listRuns(filter: RunFilter = {}): Promise<RunSummary[]> {
    return listRuns(this.client, filter);
  }
}
