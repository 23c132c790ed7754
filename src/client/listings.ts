import { decodeTypedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes';
import { optionalTsToDate } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import { AGENT_RUN_WORKFLOW } from '../config';
import { APPROVALS_MEMO, readApprovalsMemo } from '../workflows/approvals-memo';
import { agentSearchAttribute, requesterSearchAttribute, statusSearchAttribute } from '../workflows/search-attributes';
import type { PendingApproval } from '../workflows/run-types';
import { foreignApprovals, type RunWords } from './run-memo';
import type { RawExecution, RunReader } from './run-reader';

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

/** The runs `filter` selects, as `WardenClient.listRuns` lists them. */
export async function listRuns(client: Client, filter: RunFilter = {}): Promise<RunSummary[]> {
  const out: RunSummary[] = [];
  for await (const raw of listRaw(client, filter)) out.push(summaryOf(raw));
  return out;
}

/**
 * The raw listing, not `workflow.list()`: that one decodes every run's memo, and a single run
 * written under a payload key this client lacks would make the whole listing fail. A listing
 * needs only the search attributes, which Temporal keeps in clear; memo fields are decoded one
 * by one where a caller needs them.
 */
async function* listRaw(client: Client, filter: RunFilter): AsyncGenerator<RawExecution> {
  const clauses = [`WorkflowType = '${AGENT_RUN_WORKFLOW}'`];
  if (filter.agent) clauses.push(`WardenAgent = '${filter.agent.replace(/'/g, '')}'`);
  if (filter.status) clauses.push(`WardenStatus IN (${filter.status.split(',').map((st) => `'${st.trim().replace(/'/g, '')}'`).join(', ')})`);
  if (filter.open ?? true) clauses.push(`ExecutionStatus = 'Running'`);
  if (filter.idPrefix) clauses.push(`WorkflowId STARTS_WITH '${filter.idPrefix.replace(/'/g, '')}'`);
  if (filter.startedAfter) clauses.push(`StartTime > '${filter.startedAfter.toISOString()}'`);
  if (filter.query) clauses.push(`(${filter.query})`);
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await client.workflowService.listWorkflowExecutions({ namespace: client.options.namespace, query: clauses.join(' AND '), nextPageToken });
    yield* page.executions;
    nextPageToken = page.nextPageToken && page.nextPageToken.length > 0 ? page.nextPageToken : undefined;
  } while (nextPageToken);
}

function summaryOf(raw: RawExecution): RunSummary {
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

/** Every open run's own pending approvals, as `WardenClient.listPendingApprovals` lists them. */
export async function listPendingApprovals(reader: RunReader, options: { queryTimeoutMs?: number } = {}): Promise<PendingApprovalsListing> {
  const listing: PendingApprovalsListing = { approvals: [], runs: [], failures: [], refused: [], queried: [] };
  const asked: Promise<void>[] = [];
  const add = (run: RunSummary, approvals: PendingApproval[]) => {
    const foreign = foreignApprovals(approvals, run.runId, run.startTime);
    if (foreign) listing.refused.push({ runId: run.runId, reason: foreign.reason });
    else if (approvals.length > 0) listing.runs.push({ run, approvals });
  };
  const ask = (run: RunSummary) => {
    listing.queried.push(run.runId);
    const query = () => reader.askPendingApprovals(run.runId);
    const answer = options.queryTimeoutMs === undefined ? query() : reader.client.connection.withDeadline(Date.now() + options.queryTimeoutMs, query);
    const take = (read: Awaited<typeof answer>) => (read.ok ? add(run, read.approvals) : void listing.refused.push({ runId: run.runId, reason: read.reason }));
    asked.push(answer.then(take, (error: unknown) => void listing.failures.push({ runId: run.runId, error })));
  };
  // `listRaw` lists agentRun executions only.
  for await (const raw of listRaw(reader.client, { status: 'awaiting_approval,paused' })) {
    const run = summaryOf(raw);
    let field: RunWords;
    try {
      // This field alone: another field under a key this client lacks must not hide the approvals.
      field = await reader.runMemoField(run.runId, raw, APPROVALS_MEMO);
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
