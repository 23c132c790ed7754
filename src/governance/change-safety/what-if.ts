import type { AuditEvent } from '../signing/audit-chain';
import { emptyUsage, type BudgetUsage } from '../accounting/budget';
import { governCall, type GovernedTool, type GovernResult, type GovernState } from '../calls/govern-call';
import { emptyLoopState } from '../accounting/loop-detector';
import type { CompiledPolicy, DecisionKind, RunFacts } from '../policy/parse-policy';
import { REDACTED } from '../calls/redaction';
import { quotaSetFor, type QuotaSet } from '../quota';
import { replayQuotas, type QuotaReplay, type QuotaReplayCall } from './what-if-quotas';

/**
 * What governance made of one call, as one comparable value: the policy's decision, or the
 * budget or loop-breaker refusal that came before it (`budget:<limit>`, `loop:<action>`).
 */
export interface Verdict {
  decision: DecisionKind;
  ruleId: string;
  reason: string;
  /** Who must approve, for `require_approval` (when known). */
  approvers?: string[];
}

/**
 * How two verdicts on the same call differ. A call that could run (allowed, or once approved) and
 * now cannot is `allow-to-deny`; one that could not and now can (at once, or once approved) is
 * `deny-to-allow`; `approval-added`/`approval-removed` between allow and require_approval;
 * `rule-changed` for the same decision by another rule or with other approvers.
 */
export type DiffKind = 'deny-to-allow' | 'allow-to-deny' | 'approval-added' | 'approval-removed' | 'rule-changed';

export const DIFF_KINDS: readonly DiffKind[] = ['deny-to-allow', 'allow-to-deny', 'approval-added', 'approval-removed', 'rule-changed'];

/** The verdict of a `governCall` result, or null when no policy step judged the call (schema refusal, the run was ending). */
export function verdictOf(result: GovernResult): Verdict | null {
  const d = result.decision;
  if (d) {
    if (result.plan.kind === 'approve') return { decision: 'require_approval', ruleId: d.ruleId, reason: d.reason, approvers: [...result.plan.requirement.approvers] };
    return { decision: result.plan.kind === 'run' ? 'allow' : 'deny', ruleId: d.ruleId, reason: d.reason };
  }
  if (result.end?.budget) return { decision: 'deny', ruleId: `budget:${result.end.budget.limit}`, reason: result.end.budget.message };
  const loop = result.events.find((e) => e.type === 'loop_detected');
  if (loop && result.plan.kind === 'refuse') return { decision: 'deny', ruleId: `loop:${String(loop.data.action)}`, reason: result.plan.message };
  return null;
}

const sameList = (a: readonly string[] | undefined, b: readonly string[] | undefined) => (a ?? []).join('\n') === (b ?? []).join('\n');

/** How `after` differs from `before`, or null when they say the same. Approvers count only when both sides know them. */
export function diffKindOf(before: Verdict, after: Verdict): DiffKind | null {
  const runs = (v: Verdict) => v.decision !== 'deny';
  if (runs(before) && !runs(after)) return 'allow-to-deny';
  if (!runs(before) && runs(after)) return 'deny-to-allow';
  if (before.decision === 'allow' && after.decision === 'require_approval') return 'approval-added';
  if (before.decision === 'require_approval' && after.decision === 'allow') return 'approval-removed';
  if (before.ruleId !== after.ruleId) return 'rule-changed';
  if (before.decision === 'require_approval' && before.approvers && after.approvers && !sameList(before.approvers, after.approvers)) return 'rule-changed';
  return null;
}

/** One call as its run's audit trail recorded it, with the facts its decision was made on. */
export interface RecordedCall {
  runId: string;
  agent: string;
  /** Seq of its `call_proposed` event. */
  seq: number;
  at: string;
  callId: string;
  tool: string;
  /** As recorded: sensitive fields are redacted (see `missing`). */
  args: Record<string, unknown>;
  run: RunFacts;
  /** The tenant `run_started` recorded, or null (quotas scoped by tenant count it under `-`). */
  tenant: string | null;
  usage: BudgetUsage;
  /** Time since the run started, from the events' times. */
  elapsedMs: number;
  recorded: Verdict;
  policyVersion: string;
  /** Facts the decision may have read that the trail does not hold. */
  missing: string[];
}

export interface RecordedRun {
  runId: string;
  agent: string;
  calls: RecordedCall[];
  /** Facts missing for the whole run (an incomplete trail). */
  missing: string[];
}

function redactedPaths(value: unknown, at: string, out: string[]): string[] {
  if (value === REDACTED) out.push(at);
  else if (Array.isArray(value)) value.forEach((v, i) => redactedPaths(v, `${at}[${i}]`, out));
  else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) redactedPaths(v, `${at}.${k}`, out);
  return out;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown, fallback = ''): string => (typeof v === 'string' ? v : fallback);

/**
 * The calls of one run's audit trail that governance judged, each with the run facts it was
 * judged on, rebuilt from the trail: requester and verification from `run_started`, step, tokens
 * and cost from `model_turn`, tool counts from allowed decisions and approved calls that started
 * (the workflow counts a call when it is allowed, or when its approval lets it run). Calls refused
 * by their schema or because the run was ending are left out: no policy judged them.
 */
export function recordedRun(runId: string, events: readonly AuditEvent[]): RecordedRun {
  const missing: string[] = [];
  const started = events.find((e) => e.type === 'run_started');
  if (!started) missing.push('run_started (requester, verification, agent): the trail does not begin with the run');
  const agent = str(started?.data.agent, runId.split('/')[1] ?? '');
  const requester = str(started?.data.requester);
  const requesterVerified = started?.data.requesterVerified === true;
  const tenant = typeof started?.data.tenant === 'string' && started.data.tenant !== '' ? started.data.tenant : null;
  const startMs = started ? Date.parse(started.at) : NaN;
  const usage = emptyUsage();
  const calls: RecordedCall[] = [];
  const awaitingStart = new Map<string, RecordedCall[]>();
  let open: { event: AuditEvent; usage: BudgetUsage } | null = null;

  const count = (tool: string) => {
    usage.toolCalls += 1;
    usage.toolCallsByTool = { ...usage.toolCallsByTool, [tool]: (usage.toolCallsByTool[tool] ?? 0) + 1 };
  };
  const judged = (recorded: Verdict, policyVersion: string): RecordedCall | null => {
    if (!open) return null;
    const { event, usage: at } = open;
    open = null;
    const args = (typeof event.data.args === 'object' && event.data.args !== null ? event.data.args : {}) as Record<string, unknown>;
    const redacted = redactedPaths(args, 'args', []);
    const call: RecordedCall = {
      runId,
      agent,
      seq: event.seq,
      at: event.at,
      callId: str(event.data.callId),
      tool: str(event.data.tool),
      args,
      run: { id: runId, requester, requesterVerified, step: at.steps, toolCalls: at.toolCalls, costUsd: at.costUsd, inputTokens: at.inputTokens, outputTokens: at.outputTokens, ...(tenant ? { tenant } : {}) },
      tenant,
      usage: at,
      elapsedMs: Number.isNaN(startMs) ? 0 : Math.max(0, Date.parse(event.at) - startMs),
      recorded,
      policyVersion,
      missing: redacted.length > 0 ? [`${redacted.join(', ')} (sensitive, redacted in the trail)`] : [],
    };
    calls.push(call);
    return call;
  };

  for (const e of events) {
    const d = e.data;
    const sameCall = open !== null && str(d.callId) === str(open.event.data.callId);
    switch (e.type) {
      case 'model_turn':
        usage.steps = num(d.step);
        usage.inputTokens += num(d.inputTokens);
        usage.outputTokens += num(d.outputTokens);
        usage.costUsd += num(d.costUsd);
        break;
      case 'call_proposed':
        open = { event: e, usage: { ...usage, toolCallsByTool: { ...usage.toolCallsByTool } } };
        break;
      case 'schema_rejected':
        if (sameCall) open = null;
        break;
      case 'budget_exhausted':
        if (sameCall) judged({ decision: 'deny', ruleId: `budget:${str(d.limit)}`, reason: str(d.message) }, '');
        break;
      case 'loop_detected':
        // A pause still lets the policy decide (the decision follows); fail_run and stop_tool refuse here.
        if (sameCall && d.action !== 'pause') judged({ decision: 'deny', ruleId: `loop:${str(d.action)}`, reason: `loop detected: ${str(d.tool)} repeated ${num(d.repeats)} times` }, '');
        break;
      case 'policy_decision': {
        if (!sameCall) break;
        const decision = (['allow', 'deny', 'require_approval'].includes(str(d.decision)) ? d.decision : 'deny') as DecisionKind;
        const call = judged({ decision, ruleId: str(d.ruleId), reason: str(d.reason) }, str(d.policyVersion));
        if (call && decision === 'allow') count(call.tool);
        if (call && decision === 'require_approval') awaitingStart.set(call.callId, [...(awaitingStart.get(call.callId) ?? []), call]);
        break;
      }
      case 'approval_requested': {
        const waiting = awaitingStart.get(str(d.callId));
        const call = waiting?.[waiting.length - 1];
        if (call && call.recorded.approvers === undefined && Array.isArray(d.approvers)) call.recorded.approvers = d.approvers.map((a) => str(a));
        break;
      }
      case 'delegation_finished': {
        // What a delegate used counts against the delegating run's budgets and shows in its run facts (not its step).
        const used = (typeof d.used === 'object' && d.used !== null ? d.used : {}) as Record<string, unknown>;
        usage.toolCalls += num(used.toolCalls);
        usage.inputTokens += num(used.inputTokens);
        usage.outputTokens += num(used.outputTokens);
        usage.costUsd += num(used.costUsd);
        break;
      }
      case 'delegation_started':
      case 'tool_started': {
        // An approved call (a delegation too) is counted when it is let run, just before it starts.
        const waiting = awaitingStart.get(str(d.callId));
        const call = waiting?.shift();
        if (call) count(call.tool);
        break;
      }
      default:
        break;
    }
  }
  return { runId, agent, calls, missing };
}

export interface CallDiff {
  runId: string;
  callId: string;
  tool: string;
  seq: number;
  at: string;
  kind: DiffKind;
  before: Verdict;
  after: Verdict;
  /** Facts the recorded trail lacks for this call: the candidate's answer may rest on a guess. */
  missing: string[];
}

/** Differences grouped by the rule that decided before and the one that decides now. */
export interface RuleCount {
  kind: DiffKind;
  from: string;
  to: string;
  count: number;
}

export interface WhatIfReport {
  agent: string;
  candidateVersion: string;
  runs: number;
  calls: number;
  unchanged: number;
  diffs: CallDiff[];
  byKind: Record<DiffKind, number>;
  byRule: RuleCount[];
  /** Each fact missing from the trails, with how many calls lacked it. */
  missing: { fact: string; calls: number }[];
  /** What the candidate's quotas would have done, replayed in recorded order across the runs (`replayQuotas`); `whatIf` always sets it. */
  quotas?: QuotaReplay;
}

/** Counts diffs by kind and by (kind, rule before, rule after), most frequent first. */
export function groupDiffs(diffs: readonly { kind: DiffKind; before: Verdict; after: Verdict }[]): { byKind: Record<DiffKind, number>; byRule: RuleCount[] } {
  const byKind = Object.fromEntries(DIFF_KINDS.map((k) => [k, 0])) as Record<DiffKind, number>;
  const rules = new Map<string, RuleCount>();
  for (const d of diffs) {
    byKind[d.kind] += 1;
    const key = `${d.kind}\n${d.before.ruleId}\n${d.after.ruleId}`;
    const row = rules.get(key) ?? { kind: d.kind, from: d.before.ruleId, to: d.after.ruleId, count: 0 };
    row.count += 1;
    rules.set(key, row);
  }
  const byRule = [...rules.values()].sort((a, b) => b.count - a.count || a.from.localeCompare(b.from) || a.to.localeCompare(b.to));
  return { byKind, byRule };
}

export interface WhatIfOptions {
  /**
   * The agent's tools (risk, input schema), when known: the candidate should be compiled with
   * the same `knownTools`. Absent, every tool is taken to exist with risk `low`, and the report
   * says `tool.risk` was not known.
   */
  tools?: ReadonlyMap<string, GovernedTool>;
  /**
   * The quotas and rate limits to replay: the candidate's own and the fleet's that reach its
   * agent (`quotaSetFor`). Absent, the candidate's own only.
   */
  quotas?: QuotaSet;
}

/**
 * Decides every recorded call again under `candidate` with `governCall`, the workflow's own
 * function, on the facts each call had (usage, requester, step, time), and lists where the answer
 * differs. The loop breaker's memory is carried from call to call within a run, as the workflow
 * carries it. Pure: the trails are read by the caller. Runs of another agent are skipped.
 */
export function whatIf(runs: readonly RecordedRun[], candidate: CompiledPolicy, options: WhatIfOptions = {}): WhatIfReport {
  const agent = candidate.policy.agent;
  const diffs: CallDiff[] = [];
  const missing = new Map<string, number>();
  let calls = 0;
  let considered = 0;
  const replayed: QuotaReplayCall[] = [];
  for (const run of runs) {
    if (run.agent !== agent) continue;
    considered += 1;
    let carry: Pick<GovernState, 'loop' | 'stoppedTools'> = { loop: emptyLoopState(), stoppedTools: [] };
    for (const call of run.calls) {
      calls += 1;
      const gaps = [...run.missing, ...call.missing];
      let tool = options.tools?.get(call.tool);
      if (!options.tools) {
        tool = { name: call.tool, inputSchema: {}, risk: 'low' };
        gaps.push('tool.risk (not recorded: pass the agents to know it; taken as low)');
      }
      const result = governCall({ usage: call.usage, ...carry }, { id: call.callId, name: call.tool, args: call.args }, { policy: candidate, agent, tool, run: call.run, elapsedMs: call.elapsedMs });
      carry = { loop: result.state.loop, stoppedTools: result.state.stoppedTools };
      for (const g of gaps) missing.set(g, (missing.get(g) ?? 0) + 1);
      const after = verdictOf(result);
      if (!after) continue;
      replayed.push({ runId: call.runId, callId: call.callId, agent, tool: call.tool, args: call.args, at: call.at, seq: call.seq, tenant: call.tenant, requester: call.run.requester, decision: after.decision });
      const kind = diffKindOf(call.recorded, after);
      if (kind) diffs.push({ runId: call.runId, callId: call.callId, tool: call.tool, seq: call.seq, at: call.at, kind, before: call.recorded, after, missing: gaps });
    }
  }
  return {
    agent,
    candidateVersion: candidate.version,
    runs: considered,
    calls,
    unchanged: calls - diffs.length,
    diffs,
    ...groupDiffs(diffs),
    missing: [...missing].map(([fact, n]) => ({ fact, calls: n })),
    quotas: replayedQuotas(replayed, candidate, options.quotas),
  };
}

function replayedQuotas(calls: readonly QuotaReplayCall[], candidate: CompiledPolicy, given: QuotaSet | undefined): QuotaReplay {
  const replay = replayQuotas(calls, given ?? quotaSetFor(candidate.policy.agent, candidate.policy));
  if (!given) replay.notEvaluated.push({ quota: 'the fleet file', kind: 'fleet', why: "its quotas reach every agent's runs; what-if replays the candidate's own unless given the fleet file (--fleet)" });
  return replay;
}
