/**
 * Workflow side of Warden's telemetry: sandbox-safe (no Node built-ins, no I/O). The run hands
 * every audit event it records to `RunTelemetry.observe`, which turns the governance facts into
 * span events on the active workflow span and into sink calls for the worker's metrics.
 *
 * Deterministic-safe: nothing here feeds back into the run. It keeps its own bookkeeping (which
 * call was decided how, when an approval was asked for), rebuilt the same way on replay; span
 * events go out only through Temporal's span-exporter sink and metrics only through the
 * `wardenTelemetry` sink, and sinks are not called while a worker replays history, so a run
 * evicted from the cache and replayed reports each fact once.
 */
import type { Attributes, TraceAPI } from '@opentelemetry/api';
import { proxySinks, workflowInfo, type Sinks } from '@temporalio/workflow';
import { TELEMETRY_SINK, WARDEN, GEN_AI, type CallGovernance, type GovernanceFact } from './conventions';

/** The sink the worker registers for governance facts. */
export interface WardenTelemetrySinks extends Sinks {
  [TELEMETRY_SINK]: { record(fact: GovernanceFact): void };
}

interface CallFacts {
  decision: string;
  ruleId: string;
  policyVersion: string;
  approvalId?: string;
  approvers: string[];
  decidedBy?: string;
  waitMs?: number;
}

const str = (value: unknown): string => (typeof value === 'string' ? value : '');

/**
 * Where a run finds OpenTelemetry's trace API: the telemetry interceptors module
 * (src/telemetry/workflow-interceptors.ts) puts its own on the run's global when it builds the
 * run's interceptors, so only a worker that traces loads the OpenTelemetry API into its runs.
 * This module does not import it: Warden's workflow modules are shared by every run of a worker
 * thread and frozen (src/workflows/shared-modules.ts), and the API's singletons must stay each
 * run's own (the interceptors register a tracer provider in them).
 */
export const RUN_TRACE_API = '__wardenTraceApi';
const traceApi = (): TraceAPI | undefined => (globalThis as { [RUN_TRACE_API]?: TraceAPI })[RUN_TRACE_API];

/** One run's telemetry bookkeeping. Create one per run; call `observe` with every audit event. */
export class RunTelemetry {
  private readonly calls = new Map<string, CallFacts>();
  private readonly approvals = new Map<string, { callId: string; tool: string; askedAtMs: number }>();

  /**
   * Whether this worker traces: Temporal's workflow interceptors (in the bundle only when
   * telemetry is on) make a span active around the run, so one is active when the run is
   * created. Without them nothing is reported: no sink calls, nothing extra in history.
   */
  readonly enabled = traceApi()?.getActiveSpan() !== undefined;

  /** The run's span (`invoke_agent`), active as the run starts: what a decision's trace links to. */
  private readonly runSpan = traceApi()?.getActiveSpan();

  /** Create it while the run starts (inside the workflow function), not in a handler. */
  constructor(private readonly agent: string) {}

  observe(type: string, data: Record<string, unknown>): void {
    if (!this.enabled) return;
    const agent = this.agent;
    switch (type) {
      case 'policy_decision':
      case 'approval_withdrawn': {
        // A withdrawn approval carries the new policy's decision for the same call.
        const callId = str(data.callId);
        const facts: CallFacts = { decision: str(data.decision), ruleId: str(data.ruleId), policyVersion: str(data.policyVersion), approvers: [] };
        // Kept for the tool activity of a call that may run; a denied call never does.
        if (facts.decision === 'deny') this.calls.delete(callId);
        else this.calls.set(callId, facts);
        if (type === 'approval_withdrawn') this.approvalEnded(str(data.approvalId), 'withdrawn');
        this.fact({ kind: 'decision', agent, tool: str(data.tool), decision: facts.decision, ruleId: facts.ruleId });
        this.event('warden.policy_decision', { [GEN_AI.toolName]: str(data.tool), [GEN_AI.toolCallId]: callId, [WARDEN.decision]: facts.decision, [WARDEN.ruleId]: facts.ruleId });
        return;
      }
      case 'approval_requested': {
        const approvalId = str(data.approvalId);
        const callId = str(data.callId);
        this.approvals.set(approvalId, { callId, tool: str(data.tool), askedAtMs: Date.now() });
        const facts = this.calls.get(callId);
        if (facts) Object.assign(facts, { approvalId, approvers: [], decidedBy: undefined, waitMs: undefined });
        return;
      }
      case 'approval_accepted': {
        const asked = this.approvals.get(str(data.approvalId));
        if (asked) this.calls.get(asked.callId)?.approvers.push(str(data.approver));
        return;
      }
      case 'approval_decided':
        this.approvalEnded(str(data.approvalId), data.decision === 'rejected' ? 'rejected' : 'approved', str(data.by));
        return;
      case 'approval_expired':
        this.approvalEnded(str(data.approvalId), 'expired');
        return;
      case 'budget_exhausted':
        this.fact({ kind: 'budget', agent, limit: str(data.limit) });
        this.event('warden.budget_exhausted', { [WARDEN.budgetLimit]: str(data.limit) });
        return;
      case 'loop_detected':
        // A loop trip that ends the run is a runaway-spend guard: counted with the budgets.
        if (data.action === 'fail_run') this.fact({ kind: 'budget', agent, limit: 'loop' });
        return;
    }
  }

  /**
   * How the call about to run was governed, for its tool activity's span; undefined when the
   * worker does not trace (so history carries nothing extra).
   */
  governanceOf(callId: string): CallGovernance | undefined {
    const facts = this.enabled ? this.calls.get(callId) : undefined;
    if (!facts) return undefined;
    this.calls.delete(callId);
    const { decision, ruleId, policyVersion, approvalId, approvers, decidedBy, waitMs } = facts;
    if (approvalId) this.approvals.delete(approvalId);
    return { decision, ruleId, policyVersion, ...(approvalId && decidedBy !== undefined ? { approval: { approvalId, approvers, decidedBy, waitMs: waitMs ?? 0 } } : {}) };
  }

  private approvalEnded(approvalId: string, outcome: 'approved' | 'rejected' | 'expired' | 'withdrawn', by?: string): void {
    const asked = this.approvals.get(approvalId);
    if (!asked) return;
    const waitMs = Date.now() - asked.askedAtMs;
    const facts = this.calls.get(asked.callId);
    if (outcome === 'approved' && facts?.approvalId === approvalId) {
      Object.assign(facts, { decidedBy: by ?? '', waitMs });
    } else {
      this.approvals.delete(approvalId);
      // A rejected or expired call never runs; a withdrawn one was decided again (its new facts are set).
      if (outcome !== 'withdrawn' && facts?.approvalId === approvalId) this.calls.delete(asked.callId);
    }
    this.fact({ kind: 'approval', agent: this.agent, tool: asked.tool, outcome, waitMs });
    this.linkDecision(approvalId);
    this.event('warden.approval', {
      [GEN_AI.toolName]: asked.tool,
      [GEN_AI.toolCallId]: asked.callId,
      [WARDEN.approvalId]: approvalId,
      [WARDEN.approvalOutcome]: outcome,
      [WARDEN.approvalWaitMs]: waitMs,
      ...(by ? { [WARDEN.decidedBy]: by } : {}),
    });
  }

  /**
   * A decision arrives in a trace of its own (the client's Update or signal): its span and the
   * run's span link to each other, so either trace leads to the other. Nothing for an approval that
   * expired (no decision, no other trace).
   */
  private linkDecision(approvalId: string): void {
    const decision = traceApi()?.getActiveSpan();
    const run = this.runSpan;
    if (!decision || !run) return;
    const from = decision.spanContext();
    const to = run.spanContext();
    if (from.traceId === to.traceId) return;
    decision.addLink({ context: to, attributes: { [WARDEN.runId]: workflowInfo().workflowId, [WARDEN.approvalId]: approvalId } });
    run.addLink({ context: from, attributes: { [WARDEN.approvalId]: approvalId } });
  }

  private fact(fact: GovernanceFact): void {
    proxySinks<WardenTelemetrySinks>()[TELEMETRY_SINK].record(fact);
  }

  private event(name: string, attributes: Attributes): void {
    traceApi()?.getActiveSpan()?.addEvent(name, attributes);
  }
}
