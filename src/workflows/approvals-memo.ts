// Types only: the client imports this module, and it must load nothing of the workflow or the policy engine.
import type { PendingApproval } from './run-types';

/**
 * The memo field that holds a run's pending approvals, exactly as its `pendingApprovals` query
 * answers, so that clients read them through `describe` or a visibility listing instead of a
 * query (a query on a run out of the worker's cache replays the whole run).
 */
export const APPROVALS_MEMO = 'wardenApprovals';

/** The run writes the approvals memo only under this patch: histories recorded before it replay unchanged. */
export const APPROVALS_MEMO_PATCH = 'warden-approvals-memo';

/** At most this many approvals are written to the memo; a run with more leaves readers to its query. */
export const MEMO_MAX_APPROVALS = 20;

/**
 * At most this many characters of JSON (arguments already redacted): a memo travels with every
 * visibility listing and every describe, and Temporal warns about memos larger than a few KB.
 */
export const MEMO_MAX_CHARS = 8_192;

/**
 * The memo's value. `approvals` holds all `count` approvals, or none when they do not fit the
 * limits above: readers then ask the run (`readApprovalsMemo` returns null).
 */
export interface ApprovalsMemo {
  count: number;
  approvals: PendingApproval[];
}

/** The memo value for a list of pending approvals, within the limits. */
export function approvalsMemo(pending: PendingApproval[]): ApprovalsMemo {
  if (pending.length > MEMO_MAX_APPROVALS || JSON.stringify(pending).length > MEMO_MAX_CHARS) return { count: pending.length, approvals: [] };
  return { count: pending.length, approvals: pending };
}

/**
 * The pending approvals a memo value holds, or null when it holds no complete list (a run
 * started before the memo existed, a run that never asked for approval, or more than fits):
 * the run's `pendingApprovals` query is then the only answer.
 */
export function readApprovalsMemo(value: unknown): PendingApproval[] | null {
  if (typeof value !== 'object' || value === null) return null;
  const { count, approvals } = value as Partial<ApprovalsMemo>;
  if (typeof count !== 'number' || !Array.isArray(approvals) || approvals.length !== count) return null;
  return approvals;
}
