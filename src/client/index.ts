import { randomUUID } from 'node:crypto';
import type { PayloadCodec } from '@temporalio/common';
import { decodeTypedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes';
import { encodeToPayloads } from '@temporalio/common/lib/internal-non-workflow/codec-helpers';
import { optionalTsToDate } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { failureConverter } from '../codec/failure-converter';
import type * as TelemetryInterceptors from '@temporalio/interceptors-opentelemetry/lib/client';
import type { WardenTelemetry } from '../telemetry';
import {
  Client,
  Connection,
  WorkflowFailedError,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  isGrpcServiceError,
  type WorkflowHandle,
} from '@temporalio/client';
// The governance modules themselves, not its index (which loads the policy engine, CEL): a client
// that never passes a policy to `startRun` never loads it, and the CLI starts faster.
import { verifyAuditChain, type AuditEvent, type AuditHead } from '../governance/audit';
import { goalDigest } from '../governance/keyring';
import type * as PolicyModule from '../governance/policy';
import type { Policy } from '../governance/policy-schema';
import type { OperatorAction, SignedDecision } from '../governance/signed-decision';
import { errorMarker, WardenError } from '../errors';
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
import { RunInputError, UntrustedRunError } from './errors';
import { auditHeadOf, foreignApprovals, readRunMemoField, readRunPayload, type RunWords } from './run-memo';
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
  static override readonly marker = errorMarker('OperatorCommandError');
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
  /**
   * Events after the anchor that nothing in Temporal vouches for yet. Only a run still going whose
   * worker did not answer has any: the events of its current turn, stored but not anchored yet.
   */
  unanchored: number;
}

/** How long reading a trail waits for the run's own copy before going on with the store's. */
const LIVE_QUERY_MS = 5_000;

/** gRPC's NOT_FOUND status code, as a raw describe of an unknown workflow id fails. */
const GRPC_NOT_FOUND = 5;

const { WorkflowExecutionStatus } = temporal.api.enums.v1;

/** How a closed execution ended, in words, for what Warden's own end (`finish`) did not get to do. */
const CUT_OFF: ReadonlyMap<number, string> = new Map([
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED, 'terminated'],
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, 'timed out'],
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_FAILED, 'failed'],
]);

const countEvents = (n: number) => `${n} ${n === 1 ? 'event' : 'events'}`;

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
  /**
   * The runs whose approvals were left out as not the run's own (see `pendingApprovals`), with the
   * short reason (`memo not encrypted`): what a forged run says it waits for is never listed.
   */
  refused: { runId: string; reason: string }[];
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
    if (!options.goal.trim()) throw new RunInputError(`a run of agent ${options.agent} needs a goal`);
    if (!options.requester.trim()) throw new RunInputError(`a run of agent ${options.agent} needs a requester`);
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
        audit: (await this.anchorIn(runId, desc.raw.workflowExecutionInfo ?? {})) ?? { seq: 0, hash: '' },
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

  /** The audit head the execution's memo anchors, if the run wrote it (`readRunMemoField`); null otherwise. */
  private async anchorIn(runId: string, info: RawExecution): Promise<AuditHead | null> {
    const field = await this.runMemoField(runId, info, AUDIT_ANCHOR_MEMO).catch(() => null);
    return field?.ok ? auditHeadOf(field.value) : null;
  }

  private runMemoField(runId: string, info: RawExecution, field: string): Promise<RunWords> {
    return readRunMemoField(this.client.options.loadedDataConverter, this.client.options.namespace, runId, info.memo?.fields, field);
  }

  /**
   * The latest execution under `runId` as Temporal holds it, memo undecoded: one field under a key
   * this client lacks must not hide the rest, and a field in clear must be seen to be in clear.
   */
  private async describeRaw(runId: string): Promise<RawExecution> {
    try {
      const { workflowExecutionInfo } = await this.client.workflowService.describeWorkflowExecution({ namespace: this.client.options.namespace, execution: { workflowId: runId } });
      return workflowExecutionInfo ?? {};
    } catch (err) {
      if (isGrpcServiceError(err) && (err.code as number) === GRPC_NOT_FOUND) throw new WorkflowNotFoundError(err.details || `no workflow ${runId}`, runId, undefined);
      throw err;
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
  async pendingApprovals(runId: string): Promise<PendingApproval[]> {
    const info = await this.describeRaw(runId);
    const type = info.type?.name ?? '';
    if (type !== AGENT_RUN_WORKFLOW) {
      throw new UntrustedRunError(`the latest execution under run id ${runId} is a "${type}" workflow, not an ${AGENT_RUN_WORKFLOW}: it holds no Warden approvals`, `not an ${AGENT_RUN_WORKFLOW}`);
    }
    const field = await this.runMemoField(runId, info, APPROVALS_MEMO);
    if (!field.ok) throw new UntrustedRunError(field.detail, field.reason);
    const fromMemo = readApprovalsMemo(field.value);
    if (fromMemo && info.status !== WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING) return [];
    let approvals = fromMemo;
    if (!approvals) {
      const answer = await this.askPendingApprovals(runId);
      if (!answer.ok) throw new UntrustedRunError(answer.detail, answer.reason);
      approvals = answer.approvals;
    }
    const foreign = foreignApprovals(approvals, runId, optionalTsToDate(info.startTime) ?? undefined);
    if (foreign) throw new UntrustedRunError(foreign.detail, foreign.reason);
    return approvals;
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
   * The `pendingApprovals` query, its answer read as the run's own words (`readRunPayload`): a
   * forged run's own worker answers in clear. Raw, since the SDK's `query` decodes the answer
   * before anyone can see whether it was encrypted.
   */
  private async askPendingApprovals(runId: string): Promise<{ ok: true; approvals: PendingApproval[] } | { ok: false; reason: string; detail: string }> {
    const converter = this.client.options.loadedDataConverter;
    const { namespace } = this.client.options;
    const { queryResult } = await this.client.workflowService.queryWorkflow({
      namespace,
      execution: { workflowId: runId },
      query: { queryType: pendingApprovalsQuery.name, queryArgs: { payloads: (await encodeToPayloads(converter)) ?? [] } },
    });
    const answer = await readRunPayload(converter, namespace, runId, queryResult?.payloads?.[0], { short: 'answer', long: `the answer to the ${pendingApprovalsQuery.name} query` });
    if (!answer.ok) return answer;
    return { ok: true, approvals: Array.isArray(answer.value) ? (answer.value as PendingApproval[]) : [] };
  }

  /**
   * The pending approvals of every open run waiting for people (`WardenStatus` awaiting_approval
   * or paused: a paused run's approvals still count), read from the memos that one visibility
   * listing returns: no query per run. A run without a complete list in its memo is asked by
   * query (within `queryTimeoutMs` each); a run that cannot be read is reported in `failures`,
   * never hides the others. Runs with nothing pending are left out, and so are runs whose
   * approvals are not their own (`refused`, as `pendingApprovals` tells them).
   */
  async listPendingApprovals(options: { queryTimeoutMs?: number } = {}): Promise<PendingApprovalsListing> {
    const listing: PendingApprovalsListing = { approvals: [], runs: [], failures: [], refused: [], queried: [] };
    const asked: Promise<void>[] = [];
    const add = (run: RunSummary, approvals: PendingApproval[]) => {
      const foreign = foreignApprovals(approvals, run.runId, run.startTime);
      if (foreign) listing.refused.push({ runId: run.runId, reason: foreign.reason });
      else if (approvals.length > 0) listing.runs.push({ run, approvals });
    };
    const ask = (run: RunSummary) => {
      listing.queried.push(run.runId);
      const query = () => this.askPendingApprovals(run.runId);
      const answer = options.queryTimeoutMs === undefined ? query() : this.client.connection.withDeadline(Date.now() + options.queryTimeoutMs, query);
      const take = (read: Awaited<typeof answer>) => (read.ok ? add(run, read.approvals) : void listing.refused.push({ runId: run.runId, reason: read.reason }));
      asked.push(answer.then(take, (error: unknown) => void listing.failures.push({ runId: run.runId, error })));
    };
    // `listRaw` lists agentRun executions only.
    for await (const raw of this.listRaw({ status: 'awaiting_approval,paused' })) {
      const run = this.summaryOf(raw);
      let field: RunWords;
      try {
        // This field alone: another field under a key this client lacks must not hide the approvals.
        field = await this.runMemoField(run.runId, raw, APPROVALS_MEMO);
      } catch (error) {
        listing.failures.push({ runId: run.runId, error });
        continue;
      }
      if (!field.ok) {
        listing.refused.push({ runId: run.runId, reason: field.reason });
        continue;
      }
      const approvals = readApprovalsMemo(field.value);
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
   * is left out (`verifyAuditTrail` reports it). Unverified: show a trail to people only through
   * `verifyAuditTrail`.
   */
  async auditTrail(runId: string, store?: RunStore): Promise<AuditEvent[]> {
    return (await this.readTrail(runId, store ? await store.readAudit(runId) : [])).events;
  }

  /** The stored events with the run's own (`auditTrail` query) merged in; `liveHead`: the run's head, when it answered. */
  private async readTrail(runId: string, fromStore: AuditEvent[]): Promise<{ events: AuditEvent[]; mismatch: number | null; liveHead: number | null }> {
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
    return { events: [...bySeq.values()].sort((a, b) => a.seq - b.seq), mismatch, liveHead: live ? live.headSeq : null };
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
  async verifyAuditTrail(runId: string, store?: RunStore): Promise<AuditTrailCheck> {
    const [info, fromStore] = await Promise.all([this.describeRaw(runId), store ? store.readAudit(runId) : Promise.resolve([])]);
    const execution = await this.ownExecution(runId, info);
    if (!execution.ok) {
      const last = fromStore[fromStore.length - 1];
      return { events: fromStore, ok: false, problem: execution.problem, problemSeq: 0, anchor: null, head: last ? { seq: last.seq, hash: last.hash } : null, unanchored: 0 };
    }
    const { anchor } = execution;
    const { events, mismatch, liveHead } = await this.readTrail(runId, fromStore);
    const last = events[events.length - 1];
    const head = last ? { seq: last.seq, hash: last.hash } : null;
    const fail = (problemSeq: number, problem: string): AuditTrailCheck => ({ events, ok: false, problem, problemSeq, anchor, head, unanchored: 0 });
    const chain = verifyAuditChain(events);
    if (!chain.ok) return fail(chain.seq, chain.reason);
    if (mismatch !== null) return fail(mismatch, "the run store's copy differs from the run's own record of it");
    if (anchor) {
      const anchored = events.find((e) => e.seq === anchor.seq);
      if (!anchored) return fail(anchor.seq, `the trail ends before event ${anchor.seq}, which Temporal anchored`);
      if (anchored.hash !== anchor.hash) return fail(anchor.seq, 'the event differs from the head Temporal anchored: the run store was rewritten');
    }
    const after = events.filter((e) => e.seq > (anchor?.seq ?? 0));
    const first = after[0];
    if (first && execution.end === 'finished') {
      if (!anchor) return fail(0, 'Temporal holds no anchor for this trail (a run from before anchoring, or not a Warden run)');
      return fail(first.seq, `${countEvents(after.length)} after the anchored head (seq ${anchor.seq}): appended after the run ended`);
    }
    if (liveHead !== null) {
      const beyond = events.filter((e) => e.seq > liveHead);
      if (beyond[0]) return fail(beyond[0].seq, `${countEvents(beyond.length)} after the run's own head (seq ${liveHead}): the run never recorded ${beyond.length === 1 ? 'it' : 'them'}`);
      return { events, ok: true, anchor, head, unanchored: 0 };
    }
    // No answer: the trail is the store's alone.
    if (first && execution.end !== null) {
      return fail(first.seq, `${countEvents(after.length)} after the anchored head (seq ${anchor?.seq ?? 0}): the run was ${execution.end} before it anchored them, and no worker answered to vouch for them (start a worker and verify again)`);
    }
    return { events, ok: true, anchor, head, unanchored: after.length };
  }

  /**
   * Whether the latest execution under `runId` is the run's own, and the anchor it holds: an
   * `agentRun`, its anchor readable as the run wrote it (`readRunMemoField`), and no earlier run
   * under the same id (`earlierRunUnder`). `end`: `finished` when Warden's own end ran (completed,
   * cancelled: the last events stored and anchored in one workflow task), the way Temporal cut it
   * off (`terminated`, `timed out`, `failed`), or null while it runs.
   */
  private async ownExecution(runId: string, info: RawExecution): Promise<{ ok: true; anchor: AuditHead | null; end: string | null } | { ok: false; problem: string }> {
    const execution = `Temporal run ${info.execution?.runId ?? 'unknown'}`;
    const type = info.type?.name ?? '';
    if (type !== AGENT_RUN_WORKFLOW) {
      return { ok: false, problem: `the latest execution under this run id (${execution}) is a "${type}" workflow, not an ${AGENT_RUN_WORKFLOW}: it was started under the run's id by someone else, and holds no anchor of the run's` };
    }
    let field: RunWords;
    try {
      field = await this.runMemoField(runId, info, AUDIT_ANCHOR_MEMO);
    } catch (err) {
      return { ok: false, problem: `the audit anchor of the latest execution (${execution}) does not decrypt with this client's payload keys: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (!field.ok) return { ok: false, problem: `${field.detail} (${execution})` };
    const earlier = await this.earlierRunUnder(runId, info);
    if (earlier) return { ok: false, problem: earlier };
    const status = info.status ?? WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED;
    const end = status === WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING ? null : (CUT_OFF.get(status) ?? 'finished');
    return { ok: true, anchor: auditHeadOf(field.value), end };
  }

  /**
   * Says so when an earlier run under `runId` ended before the latest execution: in one run's
   * chain every execution but the latest ended by continue-as-new, so any other end means the id
   * was used again, and the latest execution is not the run's (its anchor, even encrypted, may be
   * a copy). An execution still listed as running is visibility catching up and is not counted.
   */
  private async earlierRunUnder(runId: string, info: RawExecution): Promise<string | null> {
    const latest = info.execution?.runId;
    const query = `WorkflowId = '${runId.replace(/'/g, "''")}' AND ExecutionStatus != 'ContinuedAsNew' AND ExecutionStatus != 'Running'`;
    const page = await this.client.workflowService.listWorkflowExecutions({ namespace: this.client.options.namespace, query, pageSize: 10 });
    const earlier = page.executions.find((e) => e.execution?.workflowId === runId && e.execution.runId !== latest);
    if (!earlier) return null;
    const ended = CUT_OFF.get(earlier.status ?? 0) ?? 'ended';
    const when = optionalTsToDate(earlier.closeTime)?.toISOString() ?? 'an unknown time';
    return `the run id was used again: an earlier execution under it (Temporal run ${earlier.execution?.runId ?? 'unknown'}) ${ended} at ${when}, and the latest (Temporal run ${latest ?? 'unknown'}) began after it; a Warden run never reuses its id, so the latest execution is not this run's and its anchor proves nothing`;
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

export { RunInputError, UntrustedRunError } from './errors';
export type { RunOutcome, RunStatusView, PendingApproval, CompensationStep };
