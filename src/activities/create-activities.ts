import { hostname } from 'node:os';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { jsonSchema, tool as aiTool, type ToolSet } from 'ai';
import type { Logger } from 'pino';
import type { AgentRegistry } from '../agents';
import { ROLE_FOR_ACTION, type OperatorAction, authorizeDecision, authorizeOperator, authorizeStart, checkModelCallBudgets, delegateUsageOf, emptyUsage, goalDigest, normalizeIdentity, parsePolicy, type Keyring, type Policy, modelQuotas, type FleetPolicy, AuditBatchError, unpackAudit, type AuditInput } from '../governance';
import type { PreparedRun, Requester } from '../workflows/run-types';
import type { RunStore } from '../store/run-store';
import { preparedDigest } from '../workflows/run/patches';
import { ConversationCache, generate } from './model-call';
import { createModelResolver, resolveModel, type ModelEnv } from './models';
import { traceActivities, type ActivityTelemetry } from '../telemetry/spans';
import { loadShadowPolicy } from './shadow-policy';
import type { CallModelInput, CallModelResult, CompensateInput, CoreActivities, CurrentPolicy, CurrentPolicyInput, DelegateSpendingInput, DelegateSpendingResult, PrepareAndCallModelInput, PrepareAndCallModelResult, PrepareRunInput, RecordRunInput, SealStateInput, ToolActivity, ToolActivityResult, VerifyDecisionInput, VerifyDecisionResult, VerifyOperatorInput, VerifyOperatorResult, VerifySealInput, VerifySealResult } from './activity-types';
import { ExecutionGuard, activityRefused } from './execution-guard';
import { classify, nonRetryable } from './activity-errors';
import { createToolActivities, toolContext } from './tool-activities';
import { Grants } from './grants';
import { ModelSpend } from './model-spend';
import { createQuotaActivities } from './quota-activities';
import { withHeartbeats } from './heartbeats';
import { sealMatches, sealOf } from './seals';
import { DEFAULT_LIMITS, cut, keptAnswer, proposals, type RunLimits } from './proposals';
import { fitContext, type ContextApplied } from './context-window';

export interface ActivityDeps {
  registry: AgentRegistry;
  store: RunStore;
  logger: Logger;
  /** The keys whose signatures count, read on every decision (so a revoked key stops counting at once). */
  keyring?: () => Keyring;
  /** Development only: count approve/reject messages that carry no signature (typed into the Temporal UI). */
  allowUnsignedDecisions?: boolean;
  /** Development only: count resume, rollback and applyPolicy signals that carry no signed operator command. */
  allowUnsignedOperators?: boolean;
  /** Tests only: let a start input bring its own policy. */
  acceptRunInputPolicy?: boolean;
  limits?: Partial<RunLimits>;
  /** Posts approval requests to Slack; absent when the worker has no Slack configuration. */
  notifyApproval?: CoreActivities['notifyApproval'];
  /** Posts a plain message to a Slack channel (quota thresholds that ask for it); absent without Slack. */
  notifySlackText?: (channel: string, text: string) => Promise<void>;
  /** Puts model calls and tool calls in `chat` and `execute_tool` spans and reports their metrics. */
  telemetry?: Pick<ActivityTelemetry, 'tracer' | 'metrics'>;
  /** The worker's identity, for messages that name it (default `<pid>@<host>`, as Temporal's). */
  workerIdentity?: string;
  /** Model API keys and base URLs (`OPENAI_API_KEY`, an agent's `apiKeyEnv`, … see `ModelEnv`). Default none: such models fail with `ModelConfigError`. */
  modelEnv?: ModelEnv;
  /** The fleet file's quotas and rate limits (`loadFleetPolicy`), across every agent of this worker. */
  fleet?: FleetPolicy;
  /** The tenant of runs whose start does not sign one (`warden worker --default-tenant`). */
  defaultTenant?: string;
  /** How long a held quota reservation counts when nothing settles it (default one hour). */
  quotaReservationTtlMs?: number;
}

function toolsForModel(registry: AgentRegistry, agent: string): ToolSet {
  const spec = registry.spec(agent);
  const set: ToolSet = {};
  for (const t of spec.tools) {
    // No validate function: the workflow does the schema check, so a bad call reaches
    // governance (and the audit trail) instead of being dropped inside the SDK.
    // An MCP tool is offered under a provider-safe name (`mcp__github__create_issue`); governance knows it as `mcp:github/create_issue`.
    set[t.modelName ?? t.name] = aiTool({ description: t.description, inputSchema: jsonSchema(t.inputSchema) });
  }
  return set;
}

/**
 * The activities a worker registers: Warden's own (prepare, model call, compensation, record)
 * and one per tool, under the tool's name, so the Temporal UI shows which tool ran.
 */
export function createActivities(deps: ActivityDeps): Partial<CoreActivities> & Record<string, ToolActivity | CoreActivities[keyof CoreActivities]> {
  const { registry, store, logger } = deps;
  const notifications = { slack: deps.notifyApproval !== undefined };
  // The tool set an agent offers its model never changes while the worker runs: build it once.
  const toolSets = new Map<string, ToolSet>();
  const modelTools = (agent: string): ToolSet => {
    let set = toolSets.get(agent);
    if (!set) toolSets.set(agent, (set = toolsForModel(registry, agent)));
    return set;
  };

  const limits: RunLimits = { ...DEFAULT_LIMITS, ...deps.limits };
  const models = createModelResolver(deps.modelEnv);
  const conversations = new ConversationCache((runId, toSeq, fromSeq) => store.readMessages(runId, toSeq, fromSeq));
  const keyring = deps.keyring ?? (() => ({}));
  if (deps.allowUnsignedDecisions) logger.warn('allowUnsignedDecisions is on: approvals without a signature count (development only)');
  if (deps.acceptRunInputPolicy) logger.warn('acceptRunInputPolicy is on: a start input may bring its own policy (tests only)');
  if (deps.allowUnsignedOperators) logger.warn('allowUnsignedOperators is on: resume, rollback and applyPolicy without a signed operator command count (development only)');
  const guard = new ExecutionGuard(logger);
  /**
   * Workers on one task queue share its tasks: one whose agents module lacks the run's agent says so
   * loudly and hands the call back (retryable), so a worker that serves the agent takes it; when none
   * does, the run fails with this message instead of an opaque one.
   */
  const servesAgent = (agent: string): void => {
    if (registry.list().some((a) => a.name === agent)) return;
    const info = Context.current().info;
    const served = registry.list().map((a) => a.name).join(', ') || 'none';
    const message = `unknown agent "${agent}": worker ${deps.workerIdentity ?? `${process.pid}@${hostname()}`} (task queue ${info.taskQueue}) does not serve it; its agents module has: ${served}. Every worker of a task queue must serve the same agents, or give each agent set a task queue of its own (WARDEN_TASK_QUEUE)`;
    logger.error({ agent, served, taskQueue: info.taskQueue, workflowId: info.workflowExecution?.workflowId, attempt: info.attempt }, message);
    // Soon again, whatever the call's backoff: another worker may take it, and with none the run fails in seconds.
    throw ApplicationFailure.create({ type: 'AgentNotServed', message, nonRetryable: false, nextRetryDelay: '1s' });
  };
  /** The events an activity input carries, links rebuilt (a batch) and written to the store before anything else. */
  const appendAudit = async (runId: string, audit: AuditInput): Promise<void> => {
    let events;
    try {
      events = unpackAudit(audit);
    } catch (err) {
      if (AuditBatchError.isInstance(err)) throw nonRetryable('AuditBatchError', `run ${runId}: ${err.message}`);
      throw err;
    }
    await store.appendAudit(runId, events);
  };
  const grants = new Grants(store, logger);
  const modelSpend = new ModelSpend(store, logger);
  const quotas = createQuotaActivities({
    store,
    logger,
    ...(deps.fleet ? { fleet: deps.fleet } : {}),
    ...(deps.defaultTenant !== undefined ? { defaultTenant: deps.defaultTenant } : {}),
    ...(deps.quotaReservationTtlMs !== undefined ? { reservationTtlMs: deps.quotaReservationTtlMs } : {}),
    ...(deps.telemetry ? { metrics: deps.telemetry.metrics } : {}),
    ...(deps.notifySlackText ? { notifySlack: deps.notifySlackText } : {}),
  });
  /** The execution this activity runs for, as Temporal tells the worker (never as an input says). */
  const execution = (): { workflowId: string; runId: string } => {
    const of = Context.current().info.workflowExecution;
    if (!of) throw activityRefused('refused: activity input not made for this run: no workflow scheduled it');
    return of;
  };

  // The shadow a policy names is loaded here, from the worker's own sources, never from a run's input.
  const withShadow = (found: { policy: Policy; source: string }, file: string): CurrentPolicy => {
    const shadow = loadShadowPolicy(found.policy, file);
    return shadow ? { ...found, shadow } : found;
  };

  async function currentPolicy(agent: string): Promise<CurrentPolicy> {
    const applied = await store.getAppliedPolicy(agent);
    if (applied) return withShadow({ policy: parsePolicy(applied.policy, `policy applied to ${agent}`, { dropMovedFields: true }), source: `${applied.source} (applied ${applied.appliedAt})` }, applied.source);
    const fromFile = registry.policyFor(agent);
    if (!fromFile) throw nonRetryable('PolicyError', `no policy for agent ${agent}: add policies/${agent}.yaml (every tool call is denied without one)`);
    return withShadow(fromFile, fromFile.source);
  }

  /** The worker's keyring as it is now; a file that cannot be read refuses whatever needed it. */
  function currentKeyring(): Keyring | { refused: string } {
    try {
      return keyring();
    } catch (err) {
      return { refused: `the worker's keyring cannot be read: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
  const unreadable = (ring: Keyring | { refused: string }): ring is { refused: string } => typeof ring.refused === 'string';

  /** The requester as the start input names it, verified when a trusted channel signed the start. */
  function requesterOf(input: PrepareRunInput): Requester {
    const id = normalizeIdentity(typeof input.requester === 'string' ? input.requester : '');
    if (!id) throw nonRetryable('RunInputError', 'a run needs a requester');
    if (input.requesterProof === undefined) return { id, verified: false };
    const ring = currentKeyring();
    if (unreadable(ring)) return { id, verified: false, unverified: ring.refused };
    const proof = authorizeStart(input.requesterProof, ring, input.startedAtMs);
    if (!proof.ok) return { id, verified: false, unverified: proof.reason };
    const c = proof.claims;
    const mismatch =
      c.runId !== input.runId ? `it is for run ${c.runId}` : c.agent !== input.agent ? `it is for agent ${c.agent}` : c.goal !== goalDigest(input.goal) ? 'it is for another goal' : proof.identity.id !== id ? `it names ${proof.identity.id}` : null;
    if (mismatch) return { id, verified: false, unverified: `the signed start does not match this run: ${mismatch}` };
    return { id, verified: true, channel: proof.identity.channel };
  }

  /**
   * An operator stopped the run's agent (its kill switch): nobody lets its runs go on, however they
   * sign, until the switch is lifted. Rollback (a safer state) and applyPolicy (the run stays
   * paused) still count.
   */
  async function stoppedAgent(action: OperatorAction, agent: string | undefined): Promise<{ refused: string } | null> {
    if (action !== 'resume' || agent === undefined) return null;
    const stopped = await store.killSwitch(agent);
    if (!stopped?.engaged) return null;
    return {
      refused: `resume refused: agent ${agent} is stopped by its kill switch (engaged by ${stopped.by} at ${stopped.at}: ${stopped.reason}); its runs stay paused until an operator lifts the switch (the console's Kill switches page, /console/agents), then resumes them`,
    };
  }

  const core: Omit<CoreActivities, 'notifyApproval'> & Partial<Pick<CoreActivities, 'notifyApproval'>> = {
    async prepareRun(input: PrepareRunInput): Promise<PreparedRun> {
      servesAgent(input.agent);
      let agent;
      try {
        agent = registry.spec(input.agent);
      } catch (err) {
        throw nonRetryable('DefinitionError', err instanceof Error ? err.message : String(err));
      }
      // An operator stopped the agent (its kill switch, in the store): no new run of it starts until it is lifted.
      const stopped = await store.killSwitch(input.agent);
      if (stopped?.engaged) {
        throw nonRetryable('AgentStoppedError', `refused: agent ${input.agent} is stopped by its kill switch (engaged by ${stopped.by} at ${stopped.at}: ${stopped.reason}); no new run of it starts until an operator lifts it`);
      }
      // A workflow id reused by whoever can start workflows would mix two runs in one trail, and a
      // terminated run started again with its signed start copied from history is not that run.
      const own = execution();
      const holder = await store.claimRun(input.runId, own.runId);
      if (holder !== own.runId) throw nonRetryable('RunInputError', `refused: run id ${input.runId} was used by an earlier execution (${holder}); a run id is never reused, and its signed start counts for that execution only`);
      if ((await store.readAudit(input.runId)).length > 0) throw nonRetryable('RunInputError', `run ${input.runId} already has an audit trail in the run store: a run id is never reused`);
      if (input.delegation !== undefined) {
        const { parent, digest, seal } = input.delegation;
        if (!sealMatches(await store.sealKey(), { kind: 'delegation', by: parent, to: own.workflowId, digest }, seal)) {
          throw nonRetryable('RunInputError', `refused: the start input says the run was delegated by ${parent.workflowId}, but it carries no seal of that run (a delegation is accepted only as the delegating run made it)`);
        }
      }
      // A delegate works for its delegating run's requester, as that run's worker established them (the seal above covers it).
      const requester = input.delegation?.requester ?? requesterOf(input);
      let prepared: PreparedRun;
      if (input.policy !== undefined) {
        if (!deps.acceptRunInputPolicy) {
          throw nonRetryable('PolicyError', "refused: the start input brings a policy; policies come only from the worker (its policy directory or 'warden policy apply')");
        }
        logger.warn({ runId: input.runId }, 'run uses the policy of its start input (acceptRunInputPolicy)');
        prepared = await quotas.prepare(input, { agent, requester, notifications, policy: parsePolicy(input.policy, 'run input'), policySource: 'run input (test worker)' });
      } else {
        const { policy, source, shadow } = await currentPolicy(input.agent);
        prepared = await quotas.prepare(input, { agent, requester, notifications, policy, policySource: source, ...(shadow ? { shadow } : {}) });
      }
      return { ...prepared, grant: await grants.grant(input.runId, prepared) };
    },

    async verifyDecision(input: VerifyDecisionInput): Promise<VerifyDecisionResult> {
      if (input.signature !== undefined) {
        const ring = currentKeyring();
        if (unreadable(ring)) return ring;
        const auth = authorizeDecision(input.signature, ring, input.nowMs);
        if (!auth.ok) return { refused: `signed decision refused: ${auth.reason}` };
        return { identity: auth.identity, claims: auth.claims };
      }
      if (!deps.allowUnsignedDecisions) return { refused: 'unsigned decision refused: this worker counts only decisions signed by a trusted channel' };
      const approver = typeof input.approver === 'string' ? normalizeIdentity(input.approver) : '';
      if (!approver) return { refused: 'malformed decision: no approver' };
      const groups = Array.isArray(input.groups) ? input.groups.filter((g): g is string => typeof g === 'string').map(normalizeIdentity).filter(Boolean) : [];
      return { identity: { id: approver, groups, channel: typeof input.channel === 'string' ? input.channel : 'signal', keyId: null } };
    },

    async currentPolicy(input: CurrentPolicyInput): Promise<CurrentPolicy> {
      const fresh = await currentPolicy(input.agent);
      if (input.grant === undefined || input.prepared === undefined || input.runId === undefined) return fresh;
      // Only a preparation this worker granted is granted again, with the new policy taken up as the workflow takes it up.
      if (preparedDigest(input.prepared) !== input.grant.digest || !(await grants.granted(input.runId, input.grant))) {
        throw activityRefused(`refused: the run's preparation carries no grant of this worker's store (run ${input.runId}): no new policy is granted to it`);
      }
      const next: PreparedRun = { ...input.prepared, policy: fresh.policy, policySource: fresh.source };
      return { ...fresh, grant: await grants.grant(input.runId, next) };
    },

    async verifyOperator(input: VerifyOperatorInput): Promise<VerifyOperatorResult> {
      const action = input.action;
      if (input.signature === undefined) {
        if (!deps.allowUnsignedOperators) return { refused: `unsigned ${action} refused: this worker counts only operator commands signed by a trusted key with the ${ROLE_FOR_ACTION[action]} role` };
        const by = typeof input.by === 'string' ? normalizeIdentity(input.by) : '';
        // Unsigned commands name whoever they say; without a name, as before, "an operator".
        return (await stoppedAgent(action, input.agent)) ?? { operator: by || 'an operator', signed: false };
      }
      const ring = currentKeyring();
      if (unreadable(ring)) return ring;
      const auth = authorizeOperator(input.signature, ring, input.nowMs, { action, runId: input.signedFor ?? input.runId });
      if (!auth.ok) return { refused: `signed ${action} refused: ${auth.reason}` };
      return (await stoppedAgent(action, input.agent)) ?? { operator: auth.identity.id, signed: true };
    },

    async sealState(input: SealStateInput): Promise<string> {
      // A regular activity can be scheduled by any workflow: only a run's own worker seals its state.
      if (!Context.current().info.isLocal) throw activityRefused('refused: state is sealed only by the worker running the run (a local activity)');
      const by = execution();
      if (input.kind === 'carry' && input.to !== by.workflowId) throw activityRefused(`refused: carried state is sealed only for the run itself (${by.workflowId}), not ${input.to}`);
      // A delegate inherits the run's requester: a run working under a preparation the worker did not grant hands on nothing.
      if (input.grant !== undefined && !(await grants.granted(by.workflowId, input.grant))) {
        throw activityRefused(`refused: run ${by.workflowId} works under a preparation that carries no grant of this worker's store: its state is not sealed`);
      }
      return sealOf(await store.sealKey(), { kind: input.kind, by: { workflowId: by.workflowId, runId: by.runId }, to: input.to, digest: input.digest });
    },

    async verifySeal(input: VerifySealInput): Promise<VerifySealResult> {
      const own = execution();
      if (input.from.workflowId !== own.workflowId) return { refused: `carried state is accepted only from the same run, not from ${input.from.workflowId}` };
      if (!sealMatches(await store.sealKey(), { kind: 'carry', by: input.from, to: own.workflowId, digest: input.digest }, input.seal)) {
        return { refused: `the carried state has no seal of this run's execution ${input.from.runId} (it was not made by Warden's continue-as-new of this run, or was altered)` };
      }
      return { ok: true };
    },

    async callModel(input: CallModelInput): Promise<CallModelResult> {
      await appendAudit(input.runId, input.audit);
      await store.appendMessages(input.runId, input.append);
      servesAgent(input.agent);
      const agent = registry.get(input.agent);
      // The run's own spend, as this worker sealed it, within its token and cost budgets.
      await modelSpend.check(input);
      // A quota on model spend that is spent already: no further model call.
      const stopped = await quotas.checkModel(input);
      if (stopped) return stopped;
      let answer;
      let context: ContextApplied | undefined;
      try {
        const model = resolveModel(agent.model, input.scriptTurn, models);
        // The agent's context policy: what of the stored conversation this call is sent.
        const fitted = fitContext(agent.instructions, await conversations.prompt(input.runId, input.upTo, model), agent.context);
        const prompt = fitted.prompt;
        context = fitted.applied;
        // Temporal owns retries: one place, visible in history, with backoff across worker restarts.
        // Heartbeats while the model thinks: a worker that dies mid-call is replaced in seconds, and a cancel reaches the call.
        answer = await withHeartbeats(() => generate({ model, system: agent.instructions, prompt, tools: modelTools(agent.name), abortSignal: Context.current().cancellationSignal }));
      } catch (err) {
        classify(err);
      }
      // Refused oversized arguments are not kept for the model's next calls (proposals() refuses them from `answer` itself).
      await store.appendMessages(input.runId, [{ seq: input.upTo, message: keptAnswer(answer.message, limits).message }], 'replace');
      const warnings = await quotas.chargeModel(input, answer.usage);
      const spent = await modelSpend.after(input, answer.usage);
      return {
        calls: await grants.seal(input.runId, proposals(agent, answer.toolCalls, limits)),
        text: cut(answer.text, limits.maxTextBytes),
        usage: answer.usage,
        ...(context ? { context } : {}),
        ...(warnings.length > 0 ? { quota: { warnings } } : {}),
        ...(spent ? { spent } : {}),
      };
    },

    async prepareAndCallModel(input: PrepareAndCallModelInput): Promise<PrepareAndCallModelResult> {
      // A retry prepares again: the run's trail is still empty (its first events ride in a later activity).
      const prepared = await core.prepareRun(input.prepare);
      const { budgets, pricing } = prepared.policy;
      const price = pricing[prepared.agent.modelId];
      const unpriced = !price && (budgets.maxCostUsd !== undefined || input.ceiling?.maxCostUsd !== undefined);
      if (prepared.quotaStop !== undefined || unpriced || checkModelCallBudgets(budgets, input.ceiling, emptyUsage(), Date.now() - input.prepare.startedAtMs)) return { prepared, answer: null };
      const spend = modelQuotas(prepared.quotas);
      const quota = spend.length > 0 ? { quota: { tenant: prepared.tenant ?? null, requester: prepared.requester.id, quotas: spend, price: price ?? null } } : {};
      // The first call's spend is counted at the price the run starts with (the workflow counts it so too).
      const sealed = input.model.spend ? { spend: { ...input.model.spend, price: price ?? null } } : {};
      const answer = await core.callModel({ ...input.model, ...(input.withPrice ? { price: price ?? null } : {}), ...quota, ...sealed });
      return { prepared, answer };
    },

    async compensateCall(input: CompensateInput): Promise<ToolActivityResult> {
      await appendAudit(input.runId, input.audit);
      await grants.check('compensateCall', input.tool, input);
      const tool = registry.tools().get(input.tool);
      const compensate = tool?.compensate;
      if (!compensate) throw nonRetryable('DefinitionError', `tool ${input.tool} has no compensation`);
      const callRun = input.callRunId ?? input.runId;
      const [row] = (await store.readMessages(callRun, input.resultSeq + 1, input.resultSeq)) as ({ content?: { output?: { value?: unknown } }[] } | undefined)[];
      const result = row?.content?.[0]?.output?.value;
      try {
        // The arguments the call ran with: already what the tool's schema made of the model's.
        await withHeartbeats(async (beat) => compensate(input.args, result, toolContext({ ...input, runId: callRun, agent: input.callAgent ?? input.agent }, logger, beat)));
      } catch (err) {
        classify(err);
      }
      // Undone, the call gives back what it counted against quotas.
      if (input.quotaRef !== undefined) await store.settleQuota(callRun, { ref: input.quotaRef, from: 'committed', to: 'refunded' });
      return { summary: `compensated ${input.tool}`, attempt: Context.current().info.attempt };
    },

    reserveQuota: (input) => quotas.reserveQuota(input),
    settleQuota: (input) => quotas.settleQuota(input),

    async recordRun(input: RecordRunInput) {
      await appendAudit(input.runId, input.audit);
      await store.appendMessages(input.runId, input.append);
    },

    async delegateSpending(input: DelegateSpendingInput): Promise<DelegateSpendingResult> {
      const trail = await store.readAudit(input.delegate);
      // Only the run that delegated (the guard checked input.runId is the caller) learns what its delegate spent.
      const by = trail.find((e) => e.type === 'run_started')?.data.delegatedBy as { runId?: unknown } | undefined;
      if (by?.runId !== input.runId) return { refused: `${input.delegate} is not a delegate of ${input.runId} in the run store` };
      return { used: delegateUsageOf(trail) };
    },
  };
  if (deps.notifyApproval) core.notifyApproval = deps.notifyApproval;

  const tools = createToolActivities({ registry, store, logger, grants, quotas, appendAudit });
  if (deps.telemetry) traceActivities(deps.telemetry, registry, core, tools);
  // Every activity is an entry point: it does nothing for an execution that is not one of this worker's runs.
  const guarded = <F extends (input: never) => Promise<unknown>>(name: string, fn: F): F =>
    (async (input: never) => {
      await guard.check(name, input);
      return fn(input);
    }) as F;
  for (const [name, fn] of Object.entries(tools)) tools[name] = guarded(name, fn);
  for (const name of Object.keys(core) as (keyof typeof core)[]) {
    const fn = core[name];
    if (fn) (core as Record<string, unknown>)[name] = guarded(name, fn as (input: never) => Promise<unknown>);
  }
  return { ...tools, ...core };
}
