import { randomUUID } from 'node:crypto';
import type { PayloadCodec } from '@temporalio/common';
import { decodeTypedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes';
import { decodeOptionalSinglePayload } from '@temporalio/common/lib/internal-non-workflow/codec-helpers';
import { optionalTsToDate } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { failureConverter } from '../codec/failure-converter';
import type * as TelemetryInterceptors from '@temporalio/interceptors-opentelemetry/lib/client';
import type { WardenTelemetry } from '../telemetry';
import { Client, Connection, WorkflowFailedError, WorkflowIdReusePolicy, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
// The governance modules themselves, not its index (which loads the policy engine, CEL): a client
// that never passes a policy to `startRun` never loads it, and the CLI starts faster.
import { verifyAuditChain, type AuditEvent, type AuditHead } from '../governance/audit';
import { goalDigest } from '../governance/keyring';
import type * as PolicyModule from '../governance/policy';
import type { Policy } from '../governance/policy-schema';
import type { OperatorAction, SignedDecision } from '../governance/signed-decision';
import { WardenError } from '../errors';
import { AGENT_RUN_WORKFLOW, LOCAL_TEMPORAL, TASK_QUEUE, runIdFor, type TemporalSettings } from '../config';
import type { RunStore } from '../store/types';
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
  type ApproveInput,
  type DecisionReply,
  type OperatorInput,
  type RejectInput,
} from '../workflows/messages';
import { AUDIT_ANCHOR_MEMO } from '../workflows/audit-log';
import { APPROVALS_MEMO, readApprovalsMemo } from '../workflows/approvals-memo';
import { agentSearchAttribute, replayOfSearchAttribute, requesterSearchAttribute, statusSearchAttribute } from '../workflows/search-attributes';
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
  /** Honoured only by a worker started with `acceptRunInputPolicy` (tests); others fail the run. */
  policy?: Policy;
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
  signStart(claims: { runId: string; agent: string; requester: string; goal: string; channel: string }): SignedDecision;
}

/** What signs an operator command: a channel key (`DecisionSigner`) whose grant has the role the action needs. */
export interface OperatorSigner {
  signOperator(claims: { action: OperatorAction; runId: string; by: string; channel: string }): SignedDecision;
}

/** An operator command: who and why (both in the audit trail), signed by `signer` when given. */
export interface OperatorCommand {
  by?: string;
  reason?: string;
  signer?: OperatorSigner;
  /** The channel `signer` signs for (default `cli`). */
  channel?: string;
  /** A command signed already (`OperatorSigner.signOperator`); `signer` is not asked then. */
  signature?: SignedDecision;
}

/** An operator command the client cannot send as asked (a signed command without `by`). */
export class OperatorCommandError extends WardenError {
  override name = 'OperatorCommandError';
}

function operatorInput(action: OperatorAction, runId: string, command: OperatorCommand): OperatorInput {
  const { signer, channel, ...input } = command;
  if (!signer || input.signature) return input;
  if (!input.by) throw new OperatorCommandError(`a signed ${action} needs "by": the operator the key vouches for`);
  return { ...input, signature: signer.signOperator({ action, runId, by: input.by, channel: channel ?? 'cli' }) };
}

/** What `verifyAuditTrail` found: the events, and whether they hold together and match Temporal's anchor. */
export interface AuditTrailCheck {
  events: AuditEvent[];
  ok: boolean;
  /** What failed, when `ok` is false, and at which event. */
  problem?: string;
  problemSeq?: number;
  /** The head anchored in the run's memo (Temporal's copy, which the run store cannot rewrite), if any. */
  anchor: AuditHead | null;
  head: AuditHead | null;
}

/** How long reading a trail waits for the run's own copy before going on with the store's. */
const LIVE_QUERY_MS = 5_000;

/**
 * Which runs `listRuns` lists. `query` is a Temporal list query ANDed with the rest (the caller's
 * own words: it only narrows what this client may list anyway); `startedAfter` keeps runs
 * started since then.
 */
export interface RunFilter {
  agent?: string;
  /** Warden statuses, comma-separated. */
  status?: string;
  /** Open runs only (default). */
  open?: boolean;
  idPrefix?: string;
  query?: string;
  startedAfter?: Date;
}

export interface RunSummary {
  runId: string;
  agent: string;
  status: string;
  requester: string;
  startTime: Date;
}

/** A run waiting for people, and its pending approvals (`listPendingApprovals`). */
export interface RunApprovals {
  run: RunSummary;
  approvals: PendingApproval[];
}

/** Every open run's pending approvals, and the runs whose approvals could not be read (with why). */
export interface PendingApprovalsListing {
  /** Every pending approval of every listed run, the most urgent (earliest deadline) first. */
  approvals: PendingApproval[];
  /** The runs with approvals pending, each with its own, the most urgent run first. */
  runs: RunApprovals[];
  failures: { runId: string; error: unknown }[];
  /** The runs asked by query: no complete list in their memo (started before it existed, never asked for approval, or too many to fit). */
  queried: string[];
}

type RawExecution = temporal.api.workflow.v1.IWorkflowExecutionInfo;

/**
 * The typed client the CLI, the web inbox and Slack use: start runs, read their state, send them
 * decisions. Every message goes through the constants in `workflows/messages`, never a typed string.
 */
export class WardenClient {
  constructor(
    readonly client: Client,
    private readonly taskQueue = TASK_QUEUE,
  ) {}

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
    if (!options.goal.trim()) throw new Error('a run needs a goal');
    if (!options.requester.trim()) throw new Error('a run needs a requester');
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- required only when a policy is given: see the imports
    const policy = options.policy ? (require('../governance/policy') as typeof PolicyModule).parsePolicy(options.policy, 'startRun policy') : undefined;
    const runId = runIdFor(options.agent, options.key ?? randomUUID());
    const channel = options.channel ?? 'cli';
    const requesterProof = options.signer?.signStart({ runId, agent: options.agent, requester: options.requester, goal: goalDigest(options.goal), channel });
    await this.client.workflow.start<typeof agentRun>(AGENT_RUN_WORKFLOW, {
      workflowId: runId,
      taskQueue: this.taskQueue,
      args: [{ agent: options.agent, goal: options.goal, requester: options.requester, script: options.script, policy, continueAsNewAfterSteps: options.continueAsNewAfterSteps, requesterProof }],
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
        audit: this.anchorOf(desc.memo) ?? { seq: 0, hash: '' },
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

  private anchorOf(memo: Record<string, unknown> | undefined): AuditHead | null {
    const anchor = memo?.[AUDIT_ANCHOR_MEMO] as Partial<AuditHead> | undefined;
    return typeof anchor?.seq === 'number' && typeof anchor.hash === 'string' ? { seq: anchor.seq, hash: anchor.hash } : null;
  }

  /**
   * A run's pending approvals, from its memo (`describe`: no workflow task, so a run out of the
   * worker's cache is not replayed, and a run whose worker is down still answers). A closed run
   * has none. A run with no complete list in its memo (started before the memo existed, or more
   * approvals than fit) is asked by its `pendingApprovals` query. To list many runs' approvals,
   * `listPendingApprovals` reads them all in one visibility listing.
   */
  async pendingApprovals(runId: string): Promise<PendingApproval[]> {
    const desc = await this.handle(runId).describe();
    const fromMemo = readApprovalsMemo(desc.memo?.[APPROVALS_MEMO]);
    if (desc.status.name !== 'RUNNING') return fromMemo ? [] : this.queryPendingApprovals(runId);
    return fromMemo ?? this.queryPendingApprovals(runId);
  }

  /** The run's own answer (`pendingApprovals` query): a workflow task, which replays the run if it is out of the worker's cache. */
  queryPendingApprovals(runId: string): Promise<PendingApproval[]> {
    return this.handle(runId).query(pendingApprovalsQuery);
  }

  /**
   * The pending approvals of every open run waiting for people (`WardenStatus` awaiting_approval
   * or paused: a paused run's approvals still count), read from the memos that one visibility
   * listing returns: no query per run. A run without a complete list in its memo is asked by
   * query (within `queryTimeoutMs` each); a run that cannot be read is reported in `failures`,
   * never hides the others. Runs with nothing pending are left out.
   */
  async listPendingApprovals(options: { queryTimeoutMs?: number } = {}): Promise<PendingApprovalsListing> {
    const listing: PendingApprovalsListing = { approvals: [], runs: [], failures: [], queried: [] };
    const asked: Promise<void>[] = [];
    const add = (run: RunSummary, approvals: PendingApproval[]) => {
      if (approvals.length > 0) listing.runs.push({ run, approvals });
    };
    const ask = (run: RunSummary) => {
      listing.queried.push(run.runId);
      const query = () => this.queryPendingApprovals(run.runId);
      const answer = options.queryTimeoutMs === undefined ? query() : this.client.connection.withDeadline(Date.now() + options.queryTimeoutMs, query);
      asked.push(answer.then((approvals) => add(run, approvals), (error: unknown) => void listing.failures.push({ runId: run.runId, error })));
    };
    for await (const raw of this.listRaw({ status: 'awaiting_approval,paused' })) {
      const run = this.summaryOf(raw);
      const field = raw.memo?.fields?.[APPROVALS_MEMO];
      if (!field) {
        ask(run);
        continue;
      }
      let approvals: PendingApproval[] | null;
      try {
        // This field alone: another field under a key this client lacks must not hide the approvals.
        approvals = readApprovalsMemo(await decodeOptionalSinglePayload(this.client.options.loadedDataConverter, field, { type: 'workflow', namespace: this.client.options.namespace, workflowId: run.runId }));
      } catch (error) {
        listing.failures.push({ runId: run.runId, error });
        continue;
      }
      if (approvals) add(run, approvals);
      else ask(run);
    }
    await Promise.all(asked);
    const byDeadline = (a: PendingApproval, b: PendingApproval) => a.expiresAt.localeCompare(b.expiresAt);
    for (const r of listing.runs) r.approvals.sort(byDeadline);
    listing.runs.sort((a, b) => (a.approvals[0]?.expiresAt ?? '').localeCompare(b.approvals[0]?.expiresAt ?? ''));
    listing.approvals = listing.runs.flatMap((r) => r.approvals).sort(byDeadline);
    return listing;
  }

  rollbackPlan(runId: string): Promise<CompensationStep[]> {
    return this.handle(runId).query(rollbackPlanQuery);
  }

  /**
   * The whole audit trail: the events in the run store, then the run's own events the store does
   * not have yet. Stored rows win; a live event that differs from the stored one of the same seq
   * is left out (`verifyAuditTrail` reports it).
   */
  async auditTrail(runId: string, store?: RunStore): Promise<AuditEvent[]> {
    return (await this.readTrail(runId, store)).events;
  }

  private async readTrail(runId: string, store?: RunStore): Promise<{ events: AuditEvent[]; mismatch: number | null }> {
    const fromStore = store ? await store.readAudit(runId) : [];
    // A run whose worker is down never answers: the store alone is the trail then (and is checked against the anchor).
    const live = await this.client.connection
      .withDeadline(Date.now() + LIVE_QUERY_MS, () => this.handle(runId).query(auditTrailQuery))
      .catch(() => null);
    const bySeq = new Map<number, AuditEvent>();
    for (const e of fromStore) bySeq.set(e.seq, e);
    let mismatch: number | null = null;
    for (const e of live?.events ?? []) {
      const stored = bySeq.get(e.seq);
      if (!stored) bySeq.set(e.seq, e);
      else if (stored.hash !== e.hash) mismatch ??= e.seq;
    }
    return { events: [...bySeq.values()].sort((a, b) => a.seq - b.seq), mismatch };
  }

  /**
   * Reads and verifies a run's trail: every hash and link, and the head Temporal holds in the
   * run's memo (written each time the store confirmed events), so a store rewritten with
   * recomputed hashes fails even with no worker running. Use it before showing a trail to anyone.
   */
  async verifyAuditTrail(runId: string, store?: RunStore): Promise<AuditTrailCheck> {
    const [{ events, mismatch }, desc] = await Promise.all([this.readTrail(runId, store), this.handle(runId).describe()]);
    const anchor = this.anchorOf(desc.memo);
    const last = events[events.length - 1];
    const head = last ? { seq: last.seq, hash: last.hash } : null;
    const fail = (problemSeq: number, problem: string): AuditTrailCheck => ({ events, ok: false, problem, problemSeq, anchor, head });
    const chain = verifyAuditChain(events);
    if (!chain.ok) return fail(chain.seq, chain.reason);
    if (mismatch !== null) return fail(mismatch, "the run store's copy differs from the run's own record of it");
    if (anchor) {
      const anchored = events.find((e) => e.seq === anchor.seq);
      if (!anchored) return fail(anchor.seq, `the trail ends before event ${anchor.seq}, which Temporal anchored`);
      if (anchored.hash !== anchor.hash) return fail(anchor.seq, 'the event differs from the head Temporal anchored: the run store was rewritten');
    } else if (events.length > 0 && store) {
      return fail(0, 'Temporal holds no anchor for this trail (a run from before anchoring, or not a Warden run)');
    }
    return { events, ok: true, anchor, head };
  }

  /**
   * Sends an approval as an Update: the run verifies and judges it and answers in the same round
   * trip. A decision its validator refuses (no such approval, already decided, past its deadline)
   * comes back `refused` and leaves nothing in history.
   */
  approve(runId: string, decision: ApproveInput): Promise<DecisionReply> {
    return this.decide(runId, 'approve', decision);
  }

  reject(runId: string, decision: RejectInput): Promise<DecisionReply> {
    return this.decide(runId, 'reject', decision);
  }

  private async decide(runId: string, kind: 'approve' | 'reject', decision: ApproveInput | RejectInput): Promise<DecisionReply> {
    try {
      if (kind === 'approve') return await this.handle(runId).executeUpdate(approveUpdate, { args: [decision as ApproveInput] });
      return await this.handle(runId).executeUpdate(rejectUpdate, { args: [decision as RejectInput] });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) return { status: 'refused', approvalId: decision.approvalId, reason: err.cause?.message ?? err.message };
      throw err;
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
  async listRuns(filter: RunFilter = {}): Promise<RunSummary[]> {
    const out: RunSummary[] = [];
    for await (const raw of this.listRaw(filter)) out.push(this.summaryOf(raw));
    return out;
  }

  /**
   * The raw listing, not `workflow.list()`: that one decodes every run's memo, and a single run
   * written under a payload key this client lacks would make the whole listing fail. A listing
   * needs only the search attributes, which Temporal keeps in clear; memo fields are decoded one
   * by one where a caller needs them.
   */
  private async *listRaw(filter: RunFilter): AsyncGenerator<RawExecution> {
    const clauses = [`WorkflowType = '${AGENT_RUN_WORKFLOW}'`];
    if (filter.agent) clauses.push(`WardenAgent = '${filter.agent.replace(/'/g, '')}'`);
    if (filter.status) clauses.push(`WardenStatus IN (${filter.status.split(',').map((st) => `'${st.trim().replace(/'/g, '')}'`).join(', ')})`);
    if (filter.open ?? true) clauses.push(`ExecutionStatus = 'Running'`);
    if (filter.idPrefix) clauses.push(`WorkflowId STARTS_WITH '${filter.idPrefix.replace(/'/g, '')}'`);
    if (filter.startedAfter) clauses.push(`StartTime > '${filter.startedAfter.toISOString()}'`);
    if (filter.query) clauses.push(`(${filter.query})`);
    let nextPageToken: Uint8Array | undefined;
    do {
      const page = await this.client.workflowService.listWorkflowExecutions({ namespace: this.client.options.namespace, query: clauses.join(' AND '), nextPageToken });
      yield* page.executions;
      nextPageToken = page.nextPageToken && page.nextPageToken.length > 0 ? page.nextPageToken : undefined;
    } while (nextPageToken);
  }

  private summaryOf(raw: RawExecution): RunSummary {
    const attributes = decodeTypedSearchAttributes(raw.searchAttributes?.indexedFields);
    return {
      runId: raw.execution?.workflowId ?? '',
      agent: attributes.get(agentSearchAttribute) ?? '',
      // Temporal's own end wins: a terminated run never got to update WardenStatus.
      status: raw.status === temporal.api.enums.v1.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED ? 'terminated' : (attributes.get(statusSearchAttribute) ?? ''),
      requester: attributes.get(requesterSearchAttribute) ?? '',
      startTime: optionalTsToDate(raw.startTime) ?? new Date(0),
    };
  }
}

export type { RunOutcome, RunStatusView, PendingApproval, CompensationStep };
