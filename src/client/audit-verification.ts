import { optionalTsToDate } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { verifyAuditChain, type AuditEvent, type AuditHead } from '../governance/signing/audit-chain';
import { AGENT_RUN_WORKFLOW } from '../config';
import type { RunStore } from '../store/run-store';
import { auditTrailQuery } from '../workflows/messages';
import { AUDIT_ANCHOR_MEMO } from '../workflows/audit-log';
import { auditHeadOf, type RunWords } from './run-memo';
import type { RawExecution, RunReader } from './run-reader';

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

const { WorkflowExecutionStatus } = temporal.api.enums.v1;

/** How a closed execution ended, in words, for what Warden's own end (`finish`) did not get to do. */
const CUT_OFF: ReadonlyMap<number, string> = new Map([
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED, 'terminated'],
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, 'timed out'],
  [WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_FAILED, 'failed'],
]);

const countEvents = (n: number) => `${n} ${n === 1 ? 'event' : 'events'}`;

/** The stored events with the run's own (`auditTrail` query) merged in; `liveHead`: the run's head, when it answered. */
export async function readTrail(reader: RunReader, runId: string, fromStore: AuditEvent[]): Promise<{ events: AuditEvent[]; mismatch: number | null; liveHead: number | null }> {
  // A run whose worker is down never answers: the store alone is the trail then (and is checked against the anchor).
  const live = await reader.client.connection
    .withDeadline(Date.now() + LIVE_QUERY_MS, () => reader.handle(runId).query(auditTrailQuery))
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

/** Reads and verifies a run's trail against what Temporal holds, as `WardenClient.verifyAuditTrail` says. */
export async function verifyAuditTrail(reader: RunReader, runId: string, store?: RunStore): Promise<AuditTrailCheck> {
  const [info, fromStore] = await Promise.all([reader.describeRaw(runId), store ? store.readAudit(runId) : Promise.resolve([])]);
  const execution = await ownExecution(reader, runId, info);
  if (!execution.ok) {
    const last = fromStore[fromStore.length - 1];
    return { events: fromStore, ok: false, problem: execution.problem, problemSeq: 0, anchor: null, head: last ? { seq: last.seq, hash: last.hash } : null, unanchored: 0 };
  }
  const { anchor } = execution;
  const { events, mismatch, liveHead } = await readTrail(reader, runId, fromStore);
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
async function ownExecution(reader: RunReader, runId: string, info: RawExecution): Promise<{ ok: true; anchor: AuditHead | null; end: string | null } | { ok: false; problem: string }> {
  const execution = `Temporal run ${info.execution?.runId ?? 'unknown'}`;
  const type = info.type?.name ?? '';
  if (type !== AGENT_RUN_WORKFLOW) {
    return { ok: false, problem: `the latest execution under this run id (${execution}) is a "${type}" workflow, not an ${AGENT_RUN_WORKFLOW}: it was started under the run's id by someone else, and holds no anchor of the run's` };
  }
  let field: RunWords;
  try {
    field = await reader.runMemoField(runId, info, AUDIT_ANCHOR_MEMO);
  } catch (err) {
    return { ok: false, problem: `the audit anchor of the latest execution (${execution}) does not decrypt with this client's payload keys: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (!field.ok) return { ok: false, problem: `${field.detail} (${execution})` };
  const earlier = await earlierRunUnder(reader, runId, info);
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
async function earlierRunUnder(reader: RunReader, runId: string, info: RawExecution): Promise<string | null> {
  const latest = info.execution?.runId;
  const query = `WorkflowId = '${runId.replace(/'/g, "''")}' AND ExecutionStatus != 'ContinuedAsNew' AND ExecutionStatus != 'Running'`;
  const page = await reader.client.workflowService.listWorkflowExecutions({ namespace: reader.client.options.namespace, query, pageSize: 10 });
  const earlier = page.executions.find((e) => e.execution?.workflowId === runId && e.execution.runId !== latest);
  if (!earlier) return null;
  const ended = CUT_OFF.get(earlier.status ?? 0) ?? 'ended';
  const when = optionalTsToDate(earlier.closeTime)?.toISOString() ?? 'an unknown time';
  return `the run id was used again: an earlier execution under it (Temporal run ${earlier.execution?.runId ?? 'unknown'}) ${ended} at ${when}, and the latest (Temporal run ${latest ?? 'unknown'}) began after it; a Warden run never reuses its id, so the latest execution is not this run's and its anchor proves nothing`;
}
