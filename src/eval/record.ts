import type { AuditEvent } from '../governance';
import { StoreError } from '../store';
import type { RunStore } from '../store/run-store';
import { EvalCaseError, parseGoldenCase, type GoldenCase, type GoldenDecision, type GoldenTurn, type GoldenVote } from './case-schema';

interface Part {
  type?: unknown;
  text?: unknown;
  toolCallId?: unknown;
  toolName?: unknown;
  input?: unknown;
  output?: { type?: unknown; value?: unknown };
}
interface Row {
  role?: unknown;
  content?: unknown;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/**
 * The conversation rows a trail accounts for: the goal, then per model turn its answer and one
 * row per proposed call. Rows the run never wrote (a run that ended before a call's result) are
 * skipped, never invented.
 */
async function readConversation(store: RunStore, runId: string, trail: readonly AuditEvent[]): Promise<Row[]> {
  const bound = 1 + trail.filter((e) => e.type === 'model_turn').reduce((n, e) => n + 1 + (Array.isArray(e.data.calls) ? e.data.calls.length : 0), 0);
  const rows: Row[] = [];
  for (let seq = 0; seq < bound; seq++) {
    try {
      const [row] = await store.readMessages(runId, seq + 1, seq);
      if (row && typeof row === 'object') rows.push(row);
    } catch (err) {
      if (!StoreError.isInstance(err)) throw err;
    }
  }
  return rows;
}

function turnOf(row: Row, usage: AuditEvent | undefined): GoldenTurn {
  const parts = (Array.isArray(row.content) ? row.content : typeof row.content === 'string' ? [{ type: 'text', text: row.content }] : []) as Part[];
  const text = parts.filter((p) => p.type === 'text').map((p) => str(p.text)).join('');
  const toolCalls = parts
    .filter((p) => p.type === 'tool-call')
    .map((p) => {
      let args: unknown = p.input;
      if (typeof args === 'string') {
        try {
          args = JSON.parse(args);
        } catch {
          // What the model sent was not JSON: replayed as it is, the schema check refuses it again.
          args = { _unparsed: args };
        }
      }
      return { id: str(p.toolCallId), name: str(p.toolName), args: (args && typeof args === 'object' && !Array.isArray(args) ? args : {}) as Record<string, unknown> };
    });
  return {
    ...(text ? { text } : {}),
    ...(toolCalls.length > 0 ? { toolCalls } : {}),
    ...(usage ? { usage: { inputTokens: num(usage.data.inputTokens), outputTokens: num(usage.data.outputTokens) } } : {}),
  };
}

/** The `policy_decision` events of a trail, in order: what a replay must decide again. */
export function decisionsOf(trail: readonly AuditEvent[]): GoldenDecision[] {
  return trail
    .filter((e) => e.type === 'policy_decision')
    .map((e) => ({ callId: str(e.data.callId), tool: str(e.data.tool), decision: str(e.data.decision) as GoldenDecision['decision'], ruleId: str(e.data.ruleId) }));
}

/** The votes people cast on the run's approvals, by the call they concerned. */
function votesOf(trail: readonly AuditEvent[]): GoldenVote[] {
  const calls = new Map<string, { callId: string; tool: string }>();
  const votes: GoldenVote[] = [];
  for (const e of trail) {
    if (e.type === 'approval_requested') calls.set(str(e.data.approvalId), { callId: str(e.data.callId), tool: str(e.data.tool) });
    if (e.type !== 'approval_accepted' && e.type !== 'rejection_accepted') continue;
    const call = calls.get(str(e.data.approvalId));
    if (!call) continue;
    const note = str(e.data.note);
    votes.push({
      ...call,
      kind: e.type === 'approval_accepted' ? 'approve' : 'reject',
      approver: str(e.data.approver),
      groups: Array.isArray(e.data.groups) ? e.data.groups.map(str) : [],
      ...(note ? { note } : {}),
    });
  }
  return votes;
}

/**
 * Builds a golden case from a finished run: its model answers (the conversation's assistant
 * messages with the trail's per-turn usage), what its tools returned, its decisions, votes and
 * outcome, and `expect` defaults taken from what happened. Throws `EvalCaseError` for a run the
 * store does not know or that has not finished.
 */
export async function recordCase(store: RunStore, runId: string, trail: readonly AuditEvent[]): Promise<GoldenCase> {
  if (trail.length === 0) throw new EvalCaseError(`run ${runId} has no audit trail in the run store (is WARDEN_STORE the store its worker wrote?)`);
  const started = trail.find((e) => e.type === 'run_started');
  const finished = [...trail].reverse().find((e) => e.type === 'run_finished');
  if (!started) throw new EvalCaseError(`run ${runId}: the trail has no run_started event`);
  if (!finished) throw new EvalCaseError(`run ${runId} has not finished; record it once it has an outcome`);
  const delegated = trail.filter((e) => e.type === 'delegation_started').map((e) => str(e.data.runId));
  if (delegated.length > 0) {
    // Its delegates' answers, tool results and votes would have to be replayed too: not recorded yet.
    throw new EvalCaseError(`run ${runId} delegated to ${delegated.join(', ')}: golden cases and replays of delegating runs are not supported yet (record a delegate's own run instead)`);
  }
  const rows = await readConversation(store, runId, trail);
  const goal = rows[0]?.role === 'user' && typeof rows[0].content === 'string' ? rows[0].content : str(started.data.goal);
  const usageByTurn = trail.filter((e) => e.type === 'model_turn');
  const turns = rows.filter((r) => r.role === 'assistant').map((r, i) => turnOf(r, usageByTurn[i]));

  const resultRows = new Map<string, unknown>();
  for (const row of rows) {
    if (row.role !== 'tool' || !Array.isArray(row.content)) continue;
    for (const p of row.content as Part[]) if (p.type === 'tool-result' && p.output?.type === 'json') resultRows.set(str(p.toolCallId), p.output.value);
  }
  const toolResults: GoldenCase['toolResults'] = [];
  for (const e of trail) {
    if (e.type === 'tool_succeeded') toolResults.push({ callId: str(e.data.callId), tool: str(e.data.tool), result: resultRows.get(str(e.data.callId)) ?? null });
    if (e.type === 'tool_failed') toolResults.push({ callId: str(e.data.callId), tool: str(e.data.tool), error: str(e.data.error) });
  }

  const usage = (finished.data.usage ?? {}) as Record<string, unknown>;
  const outcome = {
    status: str(finished.data.status) as GoldenCase['outcome']['status'],
    reason: str(finished.data.reason),
    steps: num(finished.data.steps),
    toolCalls: num(finished.data.toolCalls),
    usage: { inputTokens: num(usage.inputTokens), outputTokens: num(usage.outputTokens), costUsd: num(usage.costUsd) },
  };
  const called = [...new Set(toolResults.filter((r) => r.error === undefined).map((r) => r.tool))];
  const proposed = new Set(decisionsOf(trail).map((d) => d.tool));
  const golden = {
    version: 1,
    agent: str(started.data.agent),
    goal,
    requester: str(started.data.requester),
    requesterVerified: started.data.requesterVerified === true,
    requesterChannel: typeof started.data.requesterChannel === 'string' ? started.data.requesterChannel : null,
    recordedFrom: { runId, at: finished.at, policyVersion: str(started.data.policyVersion) },
    turns,
    toolResults,
    decisions: decisionsOf(trail),
    votes: votesOf(trail),
    outcome,
    expect: {
      outcome: outcome.status,
      toolsCalled: called,
      // Tools the model asked for that never ran: the calls the policy is there to stop.
      toolsNotCalled: [...proposed].filter((t) => !called.includes(t)),
      // Twice what the run cost, so a small change in pricing does not fail the case.
      maxCostUsd: Math.round(outcome.usage.costUsd * 2 * 1e6) / 1e6,
    },
  };
  // The same check a reader applies: a case this writes can always be read back.
  return parseGoldenCase(golden, `recorded from ${runId}`);
}
