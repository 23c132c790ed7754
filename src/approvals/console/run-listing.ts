import { decodeTypedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes';
import { optionalTsToDate } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import type { WardenClient } from '../../client';
import { AGENT_RUN_WORKFLOW } from '../../config';
import type { RunDigest } from '../../store/fleet-queries';
import type { RunStore } from '../../store/run-store';
import { agentSearchAttribute, requesterSearchAttribute, statusSearchAttribute } from '../../workflows/search-attributes';
import { HttpError } from '../http-error';

/** The Warden statuses the list filters by: the `WardenStatus` values, and `terminated` (Temporal's own end). */
export const RUN_STATUSES = ['running', 'awaiting_approval', 'paused', 'completed', 'failed', 'budget_exhausted', 'cancelled', 'rolled_back', 'terminated'] as const;

/** The tenant search attribute, where the namespace has it registered. */
export const TENANT_ATTRIBUTE = 'WardenTenant';

export interface RunListFilter {
  agent?: string;
  status?: string;
  tenant?: string;
  requester?: string;
  /** ISO times or `YYYY-MM-DD`: runs started at or after `from`, before `to`. */
  from?: string;
  to?: string;
}

export interface RunListItem {
  runId: string;
  agent: string;
  status: string;
  requester: string;
  tenant: string;
  startTime: Date;
  closeTime: Date | null;
  /** The run's stored figures (one batched store read for the page), when the store has its events. */
  digest: RunDigest | null;
}

export interface RunListPage {
  runs: RunListItem[];
  /** The token of the next page (base64url), or null on the last page. */
  next: string | null;
  query: string;
}

/** One Temporal list-query value: single quotes cannot appear in it (ids and names never hold them). */
function literal(what: string, value: string): string {
  const v = value.trim();
  if (v.includes("'") || v.includes('\\')) throw new HttpError(400, `The ${what} filter cannot contain quotes or backslashes.`);
  if (v.length > 200) throw new HttpError(400, `The ${what} filter is too long (200 characters at most).`);
  return `'${v}'`;
}

function time(what: string, value: string): string {
  const ms = Date.parse(value.trim());
  if (!Number.isFinite(ms)) throw new HttpError(400, `The ${what} time "${value}" is not a date: use YYYY-MM-DD or an ISO time such as 2026-12-06T23:00:00Z.`);
  return `'${new Date(ms).toISOString()}'`;
}

/** A keyword search attribute's payload (JSON text), read without the converter: the attribute may be unknown to this SDK's typed keys. */
function keyword(data: Uint8Array): string {
  try {
    const value: unknown = JSON.parse(Buffer.from(data).toString('utf8'));
    return typeof value === 'string' ? value : '';
  } catch {
    return '';
  }
}

/** The Temporal list query for a filter; a bad filter is a 400 naming the field. */
export function listQuery(filter: RunListFilter): string {
  const clauses = [`WorkflowType = '${AGENT_RUN_WORKFLOW}'`];
  if (filter.agent) clauses.push(`WardenAgent = ${literal('agent', filter.agent)}`);
  if (filter.requester) clauses.push(`WardenRequester = ${literal('requester', filter.requester)}`);
  if (filter.tenant) clauses.push(`${TENANT_ATTRIBUTE} = ${literal('tenant', filter.tenant)}`);
  if (filter.status) {
    if (!(RUN_STATUSES as readonly string[]).includes(filter.status)) throw new HttpError(400, `Unknown status "${filter.status}": use one of ${RUN_STATUSES.join(', ')}.`);
    clauses.push(filter.status === 'terminated' ? `ExecutionStatus = 'Terminated'` : `WardenStatus = '${filter.status}'`);
  }
  if (filter.from) clauses.push(`StartTime >= ${time('from', filter.from)}`);
  if (filter.to) clauses.push(`StartTime < ${time('to', filter.to)}`);
  return clauses.join(' AND ');
}

/**
 * One page of runs from Temporal visibility: agent, status, requester and tenant from the search
 * attributes the listing returns; steps, tool calls, tokens and cost from one store read for the
 * whole page (`runDigests`). No query or describe per run: a page costs one listing and one SQL
 * statement whatever the fleet's size.
 */
export async function listRunPage(client: WardenClient, store: RunStore | undefined, filter: RunListFilter, pageToken: string | undefined, pageSize: number): Promise<RunListPage> {
  const query = listQuery(filter);
  let token: Uint8Array | undefined;
  if (pageToken) {
    if (!/^[A-Za-z0-9_-]+$/.test(pageToken)) throw new HttpError(400, 'The page token is malformed: follow the list\'s own "Next page" link.');
    token = Buffer.from(pageToken, 'base64url');
  }
  const raw = client.client;
  const page = await raw.workflowService.listWorkflowExecutions({ namespace: raw.options.namespace, query, pageSize, nextPageToken: token });
  const runs: RunListItem[] = page.executions.map((e) => {
    const attributes = decodeTypedSearchAttributes(e.searchAttributes?.indexedFields);
    const tenantPayload = e.searchAttributes?.indexedFields?.[TENANT_ATTRIBUTE];
    const tenant = tenantPayload?.data ? keyword(tenantPayload.data) : '';
    const terminated = e.status === temporal.api.enums.v1.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED;
    return {
      runId: e.execution?.workflowId ?? '',
      agent: attributes.get(agentSearchAttribute) ?? '',
      status: terminated ? 'terminated' : (attributes.get(statusSearchAttribute) ?? ''),
      requester: attributes.get(requesterSearchAttribute) ?? '',
      tenant,
      startTime: optionalTsToDate(e.startTime) ?? new Date(0),
      closeTime: optionalTsToDate(e.closeTime) ?? null,
      digest: null,
    };
  });
  if (store && runs.length > 0) {
    const digests = new Map((await store.runDigests(runs.map((r) => r.runId))).map((d) => [d.runId, d]));
    for (const r of runs) r.digest = digests.get(r.runId) ?? null;
  }
  const next = page.nextPageToken && page.nextPageToken.length > 0 ? Buffer.from(page.nextPageToken).toString('base64url') : null;
  return { runs, next, query };
}
