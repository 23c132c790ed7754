import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PayloadCodec } from '@temporalio/common';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { Logger } from 'pino';
import { AgentRegistry, ToolError, type Agent, type AnyTool, type PolicyEntry } from '../agents';
import { DecisionSigner } from '../approvals/signing-keys';
import { decideApproval } from '../approvals/decide';
import { WardenClient } from '../client';
import type { TemporalSettings } from '../config';
import { generateSigningKey, type AuditEvent, type Keyring } from '../governance';
import type { RunStore } from '../store/run-store';
import type { ModelSpec } from '../agents';
import type { ModelEnv } from '../activities/models';
import { connectWorker, createWardenWorker } from '../worker';
import type { RunOutcome } from '../workflows/run-types';
import type { GoldenCase, GoldenDecision } from './case-schema';
import { decisionsOf } from './record';

/** The channel the bench's own key signs run starts and recorded votes for; its worker trusts that key only. */
export const EVAL_CHANNEL = 'eval';

/** How one replayed case compares with its recording. */
export interface CaseReport {
  name: string;
  agent: string;
  /** The new run's id (`WardenReplayOf` = `recordedRunId`). */
  runId: string;
  recordedRunId: string;
  passed: boolean;
  durationMs: number;
  /** Why the case failed: changed decisions, another outcome, missed expectations. Empty when it passed. */
  failures: string[];
  /** What differs without failing the case (cost, text, steps under --from-step). */
  changes: string[];
  decisions: { recorded: GoldenDecision[]; replayed: GoldenDecision[] };
  outcome: { recorded: GoldenCase['outcome']; replayed: Pick<RunOutcome, 'status' | 'reason' | 'steps' | 'toolCalls' | 'usage'> };
  budget: { costUsd: number; maxCostUsd: number | null; toolCalls: number; steps: number };
}

export interface ReplayOptions {
  /** The case's name in reports (the file name without `.json`). */
  name: string;
  /** Use only the first K recorded model answers; the scripted model then ends the run with a text answer. */
  fromStep?: number;
  /** Longest wait for the run's outcome. */
  timeoutMs?: number;
}

export interface ReplayBenchOptions {
  /** The agents and policies to replay under: today's definitions. Tools are stubbed, schemas, risk and policies stay. */
  registry: AgentRegistry;
  settings: TemporalSettings;
  /** Where the replayed runs write their conversations and trails. */
  store: RunStore;
  payloadCodec?: PayloadCodec;
  workflowBundle?: { codePath: string };
  logger?: Logger;
  /**
   * A real model for `live` evaluations (`local:smollm2`, `openai:gpt-4o-mini`, …) instead of the
   * recorded answers; its keys come from `modelEnv`.
   */
  model?: ModelSpec;
  modelEnv?: ModelEnv;
}

/** How one case did against a real model over its repetitions. */
export interface LiveCaseReport {
  name: string;
  agent: string;
  repeat: number;
  passed: number;
  passRate: number;
  /** Each repetition: its run, outcome and what missed the case's expectations. */
  runs: { runId: string; status: string; reason: string; passed: boolean; failures: string[]; toolsRun: string[] }[];
}

const describe = (d: GoldenDecision | undefined): string => (d ? `${d.tool} ${d.decision} by rule ${d.ruleId || '(none)'}` : 'nothing');

/**
 * Compares two decision sequences position by position and names every difference
 * ("decision 3: issue_refund allow by rule small-refunds, now issue_refund deny by rule no-refunds").
 */
export function decisionChanges(recorded: readonly GoldenDecision[], replayed: readonly GoldenDecision[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < Math.max(recorded.length, replayed.length); i++) {
    const a = recorded[i];
    const b = replayed[i];
    if (a && b && a.tool === b.tool && a.decision === b.decision && a.ruleId === b.ruleId) continue;
    out.push(`decision ${i + 1}: ${describe(a)}, now ${describe(b)}`);
  }
  return out;
}

/**
 * Replays golden cases on a Temporal server: a worker of its own, on a task queue of its own,
 * serving the agents with `model: 'scripted'` (each run's script is the recorded answers) and
 * tools whose `run` returns what the recorded call returned. Schemas, risk and policies are the
 * agents' real ones, so every decision is today's. Its keyring trusts one throwaway key, which
 * vouches for recorded requesters that were verified and casts the recorded approval votes.
 */
export class ReplayBench {
  private constructor(
    /** What each run's stub tools answer from, by run id; the stubs read it. */
    private readonly results: Map<string, GoldenCase['toolResults']>,
    readonly client: WardenClient,
    private readonly worker: Worker,
    private readonly running: Promise<void>,
    private readonly connection: NativeConnection,
    private readonly signer: DecisionSigner,
    private readonly store: RunStore,
    readonly taskQueue: string,
    /** The agents as given: their MCP connections (opened by `resolveTools`) close with the bench. */
    private readonly agents: AgentRegistry,
  ) {}

  static async start(options: ReplayBenchOptions): Promise<ReplayBench> {
    try {
      return await ReplayBench.open(options);
    } catch (err) {
      await options.registry.close().catch(() => undefined);
      throw err;
    }
  }

  private static async open(options: ReplayBenchOptions): Promise<ReplayBench> {
    await options.registry.resolveTools();
    const pair = generateSigningKey();
    const keyId = `eval-${randomUUID().slice(0, 8)}`;
    const keyring: Keyring = { [keyId]: { publicKey: pair.publicKey, channel: EVAL_CHANNEL, people: '*', revoked: false } };
    const signer = new DecisionSigner({ keyId, privateKey: pair.privateKey, publicKey: pair.publicKey });
    // A queue of its own: real workers never receive a replay, and the stub tools never see a real run.
    const taskQueue = `warden-eval-${randomUUID().slice(0, 8)}`;
    const results = new Map<string, GoldenCase['toolResults']>();
    const registry = stubRegistry(options.registry, results, options.model);
    const connection = await connectWorker(options.settings);
    let worker: Worker;
    try {
      worker = await createWardenWorker({
        registry,
        store: options.store,
        connection,
        settings: options.settings,
        keyring,
        taskQueue,
        ...(options.payloadCodec ? { payloadCodec: options.payloadCodec } : {}),
        ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : {}),
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.modelEnv ? { modelEnv: options.modelEnv } : {}),
        workerOptions: { shutdownGraceTime: '2s' },
      });
    } catch (err) {
      await connection.close().catch(() => undefined);
      throw err;
    }
    const running = worker.run();
    let client: WardenClient;
    try {
      client = await WardenClient.connect(options.settings, taskQueue, options.payloadCodec ? { payloadCodec: options.payloadCodec } : {});
    } catch (err) {
      worker.shutdown();
      await running.catch(() => undefined);
      await connection.close().catch(() => undefined);
      throw err;
    }
    return new ReplayBench(results, client, worker, running, connection, signer, options.store, taskQueue, options.registry);
  }

  /** Replays one case as a new run linked to the recorded one, and compares. */
  async replay(golden: GoldenCase, options: ReplayOptions): Promise<CaseReport> {
    const started = Date.now();
    const turns = options.fromStep === undefined ? golden.turns : golden.turns.slice(0, options.fromStep);
    const key = `replay-${options.name.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40)}-${randomUUID().slice(0, 8)}`;
    const runId = `warden/${golden.agent}/${key}`;
    this.results.set(runId, golden.toolResults);
    const failures: string[] = [];
    let outcome: RunOutcome;
    try {
      await this.client.startRun({
        agent: golden.agent,
        goal: golden.goal,
        requester: golden.requester,
        key,
        script: turns,
        replayOf: golden.recordedFrom.runId,
        ...(golden.requesterVerified ? { signer: this.signer, channel: EVAL_CHANNEL } : {}),
      });
      outcome = await this.outcomeOf(runId, golden, options.timeoutMs ?? 120_000, failures);
    } finally {
      this.results.delete(runId);
    }
    const trail = await this.client.auditTrail(runId, this.store);
    return compare(golden, options, { runId, outcome, trail, failures, durationMs: Date.now() - started });
  }

  /**
   * Runs a case's goal `repeat` times on the bench's real model (`ReplayBenchOptions.model`) and
   * judges each run by the case's expectations only: a real model proposes what it proposes, so
   * the recorded decisions are not compared. Tools answer from the recording. A call that waits
   * for approval has nobody to decide it: the run is cancelled and the repetition fails.
   */
  async live(golden: GoldenCase, options: { name: string; repeat: number; timeoutMs?: number }): Promise<LiveCaseReport> {
    const runs: LiveCaseReport['runs'] = [];
    for (let i = 0; i < options.repeat; i++) {
      const key = `live-${options.name.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40)}-${i + 1}-${randomUUID().slice(0, 8)}`;
      const runId = `warden/${golden.agent}/${key}`;
      this.results.set(runId, golden.toolResults);
      const failures: string[] = [];
      let outcome: RunOutcome;
      try {
        await this.client.startRun({ agent: golden.agent, goal: golden.goal, requester: golden.requester, key, ...(golden.requesterVerified ? { signer: this.signer, channel: EVAL_CHANNEL } : {}) });
        outcome = await this.liveOutcome(runId, options.timeoutMs ?? 600_000, failures);
      } finally {
        this.results.delete(runId);
      }
      const trail = await this.client.auditTrail(runId, this.store);
      const ran = [...new Set(trail.filter((e) => e.type === 'tool_succeeded').map((e) => String(e.data.tool)))];
      const expect = golden.expect;
      if (expect.outcome !== undefined && outcome.status !== expect.outcome) failures.push(`expected outcome ${expect.outcome}, got ${outcome.status} (${outcome.reason})`);
      for (const tool of expect.toolsCalled ?? []) if (!ran.includes(tool)) failures.push(`expected ${tool} to run; it did not`);
      for (const tool of expect.toolsNotCalled ?? []) if (ran.includes(tool)) failures.push(`expected ${tool} not to run; it ran`);
      if (expect.maxCostUsd !== undefined && outcome.usage.costUsd > expect.maxCostUsd + 1e-9) failures.push(`cost $${outcome.usage.costUsd.toFixed(6)} is over the expected maximum $${expect.maxCostUsd.toFixed(6)}`);
      if (outcome.status === 'failed' && expect.outcome === undefined) failures.push(`the run failed: ${outcome.reason}`);
      runs.push({ runId, status: outcome.status, reason: outcome.reason, passed: failures.length === 0, failures, toolsRun: ran });
    }
    const passed = runs.filter((r) => r.passed).length;
    return { name: options.name, agent: golden.agent, repeat: options.repeat, passed, passRate: runs.length === 0 ? 0 : passed / runs.length, runs };
  }

  private async liveOutcome(runId: string, timeoutMs: number, failures: string[]): Promise<RunOutcome> {
    const deadline = Date.now() + timeoutMs;
    const result = this.client.result(runId).then(
      (outcome) => ({ outcome }),
      (error: unknown) => ({ error }),
    );
    let cancelled = false;
    for (;;) {
      const settled = await Promise.race([result, sleep(500, null)]);
      if (settled) {
        if ('error' in settled) throw settled.error;
        return settled.outcome;
      }
      if (cancelled) continue;
      const waiting = await this.client.pendingApprovals(runId).catch(() => []);
      if (waiting.length > 0 || Date.now() > deadline) {
        failures.push(waiting.length > 0 ? `call ${waiting[0]?.callId} (${waiting[0]?.tool}) waited for approval; nobody decides in a live evaluation, so the run was cancelled` : `the run had no outcome after ${Math.round(timeoutMs / 1000)}s; cancelled`);
        cancelled = true;
        await this.client.cancel(runId).catch(() => undefined);
      }
    }
  }

  /**
   * Waits for the outcome, casting the recorded votes on approvals the replay asks for (signed
   * by the bench's key as the recorded approver). A call that waits with no recorded vote cancels
   * the run: nobody is there to decide it.
   */
  private async outcomeOf(runId: string, golden: GoldenCase, timeoutMs: number, failures: string[]): Promise<RunOutcome> {
    const deadline = Date.now() + timeoutMs;
    const result = this.client.result(runId).then(
      (outcome) => ({ outcome }),
      (error: unknown) => ({ error }),
    );
    const cast = new Set<string>();
    let cancelled = false;
    for (;;) {
      const settled = await Promise.race([result, sleep(250, null)]);
      if (settled) {
        if ('error' in settled) throw settled.error;
        return settled.outcome;
      }
      if (cancelled) continue;
      if (Date.now() > deadline) {
        failures.push(`the run had no outcome after ${Math.round(timeoutMs / 1000)}s; cancelled`);
        cancelled = true;
        await this.client.cancel(runId).catch(() => undefined);
        continue;
      }
      const pending = await this.client.pendingApprovals(runId).catch(() => []);
      for (const p of pending) {
        if (cast.has(p.approvalId)) continue;
        cast.add(p.approvalId);
        const votes = golden.votes.filter((v) => v.callId === p.callId && v.tool === p.tool);
        if (votes.length === 0) {
          failures.push(`call ${p.callId} (${p.tool}) waits for approval by rule ${p.ruleId}; the recorded run has no vote for it, so the replay was cancelled`);
          cancelled = true;
          await this.client.cancel(runId).catch(() => undefined);
          break;
        }
        for (const vote of votes) {
          const sent = await decideApproval(
            { client: this.client, store: this.store, signer: this.signer, confirmWithinMs: 10_000 },
            { runId, approvalId: p.approvalId, decision: vote.kind, identity: { id: vote.approver, groups: vote.groups }, note: vote.note, channel: EVAL_CHANNEL },
          );
          if (sent.status !== 'accepted') failures.push(`the recorded ${vote.kind} of ${p.tool} by ${vote.approver} was not counted: ${sent.message}`);
        }
      }
    }
  }

  async close(): Promise<void> {
    try {
      this.worker.shutdown();
    } catch {
      // Already stopping.
    }
    await this.running.catch(() => undefined);
    await this.client.close().catch(() => undefined);
    await this.connection.close().catch(() => undefined);
    // An MCP server's connection (a child process, a socket) would keep the CLI from exiting.
    await this.agents.close().catch(() => undefined);
  }
}

/**
 * The agents as the bench serves them: the same tools (name, schema, risk, retry, compensation)
 * with `run` answering from the recording of the run it serves, by call id, else the next
 * unused recorded result of that tool; and the plain `scripted` model, so each run's script is
 * the recorded answers. A call the recording lacks fails as a `ToolError` the model is told of.
 */
function stubRegistry(real: AgentRegistry, results: Map<string, GoldenCase['toolResults']>, model: ModelSpec = 'scripted'): AgentRegistry {
  const used = new Map<string, Set<number>>();
  const stub = (tool: AnyTool): AnyTool => ({
    ...tool,
    run: (_args: unknown, ctx: { runId: string; callId: string }) => {
      const recorded = results.get(ctx.runId) ?? [];
      const taken = used.get(ctx.runId) ?? new Set<number>();
      used.set(ctx.runId, taken);
      let index = recorded.findIndex((r, i) => r.callId === ctx.callId && r.tool === tool.name && !taken.has(i));
      if (index < 0) index = recorded.findIndex((r, i) => r.tool === tool.name && !taken.has(i));
      const hit = recorded[index];
      if (!hit) throw new ToolError(`replay: the recorded run has no result for this call of ${tool.name} (call ${ctx.callId})`);
      taken.add(index);
      if (hit.error !== undefined) throw new ToolError(hit.error);
      return hit.result;
    },
  });
  const tools = new Map<string, AnyTool>([...real.tools()].map(([name, tool]) => [name, stub(tool)]));
  const agents: Agent[] = real.list().map((agent) => ({ ...agent, model, mcpTools: [], tools: agent.tools.map((t) => tools.get(t.name) ?? stub(t)) }));
  // Delegates are the stubbed agents too (delegating runs are not replayed, but their agents are served).
  for (const agent of agents) agent.delegates = (agent.delegates ?? []).map((d) => agents.find((a) => a.name === d.name) ?? d);
  const policies = agents.map((a) => real.policyFor(a.name)).filter((p): p is PolicyEntry => p !== undefined);
  return new AgentRegistry(agents, policies);
}

function compare(
  golden: GoldenCase,
  options: ReplayOptions,
  run: { runId: string; outcome: RunOutcome; trail: readonly AuditEvent[]; failures: string[]; durationMs: number },
): CaseReport {
  const { outcome, trail } = run;
  const failures = [...run.failures];
  const changes: string[] = [];
  const replayed = decisionsOf(trail);
  const partial = options.fromStep !== undefined && options.fromStep < golden.turns.length;
  // With fewer turns, the recorded decisions of the turns left out are not expected again.
  const recordedCalls = new Set(golden.turns.slice(0, options.fromStep ?? golden.turns.length).flatMap((t) => (t.toolCalls ?? []).map((c) => c.id)));
  const recorded = partial ? golden.decisions.filter((d) => recordedCalls.has(d.callId)) : golden.decisions;
  failures.push(...decisionChanges(recorded, replayed));
  const was = golden.outcome;
  if (!partial) {
    if (outcome.status !== was.status) failures.push(`outcome: ${was.status} (${was.reason}), now ${outcome.status} (${outcome.reason})`);
    if (outcome.toolCalls !== was.toolCalls) failures.push(`tool calls: ${was.toolCalls}, now ${outcome.toolCalls}`);
    if (outcome.steps !== was.steps) failures.push(`steps: ${was.steps}, now ${outcome.steps}`);
  } else {
    changes.push(`replayed the first ${options.fromStep} of ${golden.turns.length} model answers: ${outcome.status} after ${outcome.steps} step(s) (recorded: ${was.status} after ${was.steps})`);
  }
  if (Math.abs(outcome.usage.costUsd - was.usage.costUsd) > 1e-9) changes.push(`cost: $${was.usage.costUsd.toFixed(6)}, now $${outcome.usage.costUsd.toFixed(6)}`);
  if (outcome.reason !== was.reason && outcome.status === was.status) changes.push(`reason: "${was.reason}", now "${outcome.reason}"`);

  const ran = new Set(trail.filter((e) => e.type === 'tool_succeeded').map((e) => String(e.data.tool)));
  const expect = golden.expect;
  if (expect.outcome !== undefined && !partial && outcome.status !== expect.outcome) failures.push(`expected outcome ${expect.outcome}, got ${outcome.status}`);
  for (const tool of expect.toolsCalled ?? []) if (!partial && !ran.has(tool)) failures.push(`expected ${tool} to run; it did not`);
  for (const tool of expect.toolsNotCalled ?? []) if (ran.has(tool)) failures.push(`expected ${tool} not to run; it ran`);
  if (expect.maxCostUsd !== undefined && outcome.usage.costUsd > expect.maxCostUsd + 1e-9) failures.push(`cost $${outcome.usage.costUsd.toFixed(6)} is over the expected maximum $${expect.maxCostUsd.toFixed(6)}`);

  return {
    name: options.name,
    agent: golden.agent,
    runId: run.runId,
    recordedRunId: golden.recordedFrom.runId,
    passed: failures.length === 0,
    durationMs: run.durationMs,
    failures,
    changes,
    decisions: { recorded, replayed },
    outcome: { recorded: was, replayed: { status: outcome.status, reason: outcome.reason, steps: outcome.steps, toolCalls: outcome.toolCalls, usage: outcome.usage } },
    budget: { costUsd: outcome.usage.costUsd, maxCostUsd: expect.maxCostUsd ?? null, toolCalls: outcome.toolCalls, steps: outcome.steps },
  };
}
