import type { WardenClient } from '../client';
import { sameIdentity, type AuditEvent } from '../governance';
import type { RunStore } from '../store/types';
import type { PendingApproval } from '../workflows/types';
import type { Identity } from './identity';
import type { DecisionSigner } from './keys';
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
  /** How long to wait for the run to audit the decision. Default 3 s. */
  confirmWithinMs?: number;
}

/** Why an approval is no longer waiting, read from the run's audit trail. */
export type NotPendingState = 'approved' | 'rejected' | 'expired' | 'closed' | 'unknown';

/** What became of a decision. Only `accepted`, `refused` and `unconfirmed` sent a signal. */
export type DecisionResult =
  | { status: 'not_pending'; state: NotPendingState; by?: string; message: string }
  | { status: 'unavailable'; message: string }
  /** `decided`: the approval is settled (`state` says how, `by` whom); otherwise it waits for more approvals. */
  | { status: 'accepted'; decided: boolean; state?: 'approved' | 'rejected'; by?: string; message: string }
  | { status: 'refused'; reason: string; message: string }
  | { status: 'unconfirmed'; message: string };

const POLL_MS = 150;

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
 * the approval is still pending (otherwise sends nothing and says why), signs the claims, signals
 * the run, then reads the audit trail back for the run's verdict (accepted or refused, and why).
 * The run stays the authority: a race with another decision is refused and audited there.
 */
export async function decideApproval(deps: DecisionDeps, request: DecisionRequest): Promise<DecisionResult> {
  const { client } = deps;
  const { runId, approvalId, identity } = request;
  let read: [PendingApproval[], AuditEvent[]];
  try {
    // The trail includes the store, so `head` below is the run's true head even right after a continue-as-new.
    read = await within(client, QUERY_TIMEOUT_MS, () => Promise.all([client.pendingApprovals(runId), client.auditTrail(runId, deps.store)]));
  } catch (err) {
    // A finished run no longer answers when its worker is gone; its store may still say why.
    const stored = deps.store ? await deps.store.readAudit(runId).catch(() => []) : [];
    if (stored.some((e) => ofApproval(e, approvalId))) return { status: 'not_pending', ...whyNotPending(stored, runId, approvalId) };
    return { status: 'unavailable', message: `Could not read run ${runId}: ${describeFailure(err)}. Nothing was sent.` };
  }
  const [pending, trail] = read;
  if (!pending.some((p) => p.approvalId === approvalId)) return { status: 'not_pending', ...whyNotPending(trail, runId, approvalId) };

  const head = trail.reduce((max, e) => Math.max(max, e.seq), 0);
  // The note is signed exactly as it travels as the comment or reason, so the run can tell a
  // person's own words from words someone else put in the signal.
  const note = request.note?.trim() ? request.note.trim() : undefined;
  const signature = deps.signer.sign({ approvalId, runId, decision: request.decision, approver: identity.id, groups: identity.groups, channel: request.channel, ...(note ? { note } : {}) });
  const base = { approvalId, approver: identity.id, groups: identity.groups, channel: request.channel, signature };
  try {
    if (request.decision === 'approve') await client.approve(runId, { ...base, ...(note ? { comment: note } : {}) });
    else await client.reject(runId, { ...base, ...(note ? { reason: note } : {}) });
  } catch (err) {
    // Typically the run ended between the check and the signal, and Temporal refused the signal.
    return { status: 'unavailable', message: `Could not send the decision to run ${runId}: ${describeFailure(err)}. Check the run page before trying again.` };
  }

  const deadline = Date.now() + (deps.confirmWithinMs ?? 3000);
  for (;;) {
    // With the store: events the run has flushed (before a continue-as-new, say) still count.
    const events = await within(client, QUERY_TIMEOUT_MS, () => client.auditTrail(runId, deps.store)).catch(() => [] as AuditEvent[]);
    const fresh = events.filter((e) => e.seq > head && ofApproval(e, approvalId));
    // The run may audit the approver normalised (`Alice` as `alice`), so compare the same way.
    const verdict = fresh.find((e) => (e.type === 'approval_accepted' || e.type === 'approval_refused') && typeof e.data.approver === 'string' && sameIdentity(e.data.approver, identity.id));
    if (verdict?.type === 'approval_refused') {
      const reason = typeof verdict.data.reason === 'string' ? verdict.data.reason : 'no reason given';
      return { status: 'refused', reason, message: `Refused: ${reason}` };
    }
    if (verdict) {
      const settled = fresh.find((e) => e.type === 'approval_decided');
      const decided = settled !== undefined;
      const message =
        request.decision === 'reject'
          ? 'Rejected. The call will not run; the agent is told why.'
          : decided
            ? 'Approved. The call runs now.'
            : 'Your approval is recorded; the call waits for more approvals (quorum).';
      const state = settled?.data.decision === 'approved' || settled?.data.decision === 'rejected' ? settled.data.decision : undefined;
      const by = typeof settled?.data.by === 'string' ? settled.data.by : undefined;
      return { status: 'accepted', decided, ...(state ? { state } : {}), ...(by ? { by } : {}), message };
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return { status: 'unconfirmed', message: 'The decision was sent, but the run has not confirmed it yet; check the run page in a moment.' };
}
