import type { WardenClient } from '../client';
import type { AuditEvent } from '../governance';
import type { RunStore } from '../store/run-store';
import type { DecisionReply } from '../workflows/messages';
import type { PendingApproval } from '../workflows/run-types';
import type { Identity } from './identity';
import type { DecisionSigner } from './signing-keys';
import { QUERY_TIMEOUT_MS, describeFailure, within } from './run-reads';

export type DecisionKind = 'approve' | 'reject';

/** One person's decision on one pending approval, as a channel received it. */
export interface DecisionRequest {
  runId: string;
  approvalId: string;
  decision: DecisionKind;
  identity: Identity;
  /** The approval comment or the rejection reason (the model reads a rejection reason). */
  note?: string;
  /** The channel that authenticated the person: `web`, `slack`, `cli`. */
  channel: string;
}

export interface DecisionDeps {
  client: WardenClient;
  signer: DecisionSigner;
  store?: RunStore;
  /** How long to wait for the run's answer to the decision. Default 3 s. */
  confirmWithinMs?: number;
}

/** Why an approval is no longer waiting, read from the run's audit trail. */
export type NotPendingState = 'approved' | 'rejected' | 'expired' | 'closed' | 'unknown';

/** What became of a decision. Only `accepted`, `refused` and `unconfirmed` sent anything to the run. */
export type DecisionResult =
  | { status: 'not_pending'; state: NotPendingState; by?: string; message: string }
  | { status: 'unavailable'; message: string }
  /** `decided`: the approval is settled (`state` says how, `by` whom); otherwise it waits for more approvals. */
  | { status: 'accepted'; decided: boolean; state?: 'approved' | 'rejected'; by?: string; message: string }
  | { status: 'refused'; reason: string; message: string }
  | { status: 'unconfirmed'; message: string };

function ofApproval(e: AuditEvent, approvalId: string): boolean {
  return e.data.approvalId === approvalId;
}

/** The state of an approval that is not pending, from the audit trail. */
export function whyNotPending(trail: readonly AuditEvent[], runId: string, approvalId: string): { state: NotPendingState; by?: string; message: string } {
  const events = trail.filter((e) => ofApproval(e, approvalId));
  const decided = events.find((e) => e.type === 'approval_decided');
  if (decided) {
    const state = decided.data.decision === 'rejected' ? 'rejected' : 'approved';
    const by = typeof decided.data.by === 'string' ? decided.data.by : undefined;
    return { state, by, message: `Approval ${approvalId} was already ${state}${by ? ` by ${by}` : ''}. Nothing was sent.` };
  }
  if (events.some((e) => e.type === 'approval_expired')) {
    return { state: 'expired', message: `Approval ${approvalId} expired with no decision; the call did not run. Nothing was sent.` };
  }
  if (events.some((e) => e.type === 'approval_requested')) {
    return { state: 'closed', message: `Approval ${approvalId} is no longer pending (the run ended or is rolling back). Nothing was sent.` };
  }
  return { state: 'unknown', message: `Run ${runId} has no approval ${approvalId}. Nothing was sent.` };
}

/**
 * Sends one person's decision the governed way, for any channel that authenticated them: checks
 * the approval is still pending (otherwise sends nothing and says why), signs the claims (the note
 * with them), and sends them as the run's `approve`/`reject` Update, whose answer is the run's
 * verdict (accepted or refused, and why). The run stays the authority: a race with another
 * decision is refused there.
 */
export async function decideApproval(deps: DecisionDeps, request: DecisionRequest): Promise<DecisionResult> {
  const { client } = deps;
  const { runId, approvalId, identity } = request;
  try {
    // The memo answers without a workflow task; the trail (a query) is read only to say why an
    // approval is not pending, with the store: one settled before a continue-as-new is still explained.
    const pending: PendingApproval[] = await within(client, QUERY_TIMEOUT_MS, () => client.pendingApprovals(runId));
    if (!pending.some((p) => p.approvalId === approvalId)) {
      const trail: AuditEvent[] = await within(client, QUERY_TIMEOUT_MS, () => client.auditTrail(runId, deps.store));
      return { status: 'not_pending', ...whyNotPending(trail, runId, approvalId) };
    }
  } catch (err) {
    // A finished run no longer answers when its worker is gone; its store may still say why.
    const stored = deps.store ? await deps.store.readAudit(runId).catch(() => []) : [];
    if (stored.some((e) => ofApproval(e, approvalId))) return { status: 'not_pending', ...whyNotPending(stored, runId, approvalId) };
    return { status: 'unavailable', message: `Could not read run ${runId}: ${describeFailure(err)}. Nothing was sent.` };
  }

  // The note is signed exactly as it travels as the comment or reason, so the run can tell a
  // person's own words from words someone else put in the message.
  const note = request.note?.trim() ? request.note.trim() : undefined;
  const signature = deps.signer.sign({ approvalId, runId, decision: request.decision, approver: identity.id, groups: identity.groups, channel: request.channel, ...(note ? { note } : {}) });
  const base = { approvalId, approver: identity.id, groups: identity.groups, channel: request.channel, signature };
  let reply: DecisionReply;
  try {
    // An Update: the run verifies and judges the decision and answers in the same round trip.
    reply = await within(client, deps.confirmWithinMs ?? 3000, () =>
      request.decision === 'approve' ? client.approve(runId, { ...base, ...(note ? { comment: note } : {}) }) : client.reject(runId, { ...base, ...(note ? { reason: note } : {}) }),
    );
  } catch (err) {
    // The run took the Update but no worker answered within the deadline: it may still count it.
    if (isDeadline(err)) return { status: 'unconfirmed', message: 'The decision was sent, but the run has not confirmed it yet; check the run page in a moment.' };
    // Typically the run ended between the check and the Update, and Temporal refused it.
    return { status: 'unavailable', message: `Could not send the decision to run ${runId}: ${describeFailure(err)}. Check the run page before trying again.` };
  }
  if (reply.status === 'refused') return { status: 'refused', reason: reply.reason, message: `Refused: ${reply.reason}` };
  const message =
    request.decision === 'reject'
      ? 'Rejected. The call will not run; the agent is told why.'
      : reply.decided
        ? 'Approved. The call runs now.'
        : 'Your approval is recorded; the call waits for more approvals (quorum).';
  return { status: 'accepted', decided: reply.decided, ...(reply.state ? { state: reply.state } : {}), ...(reply.by ? { by: reply.by } : {}), message };
}

function isDeadline(err: unknown): boolean {
  // gRPC DEADLINE_EXCEEDED is code 4, on the error or on its cause.
  const code = (err as { code?: unknown } | null)?.code ?? ((err as { cause?: { code?: unknown } } | null)?.cause?.code);
  return code === 4 || (err instanceof Error && /deadline/i.test(err.message));
}
