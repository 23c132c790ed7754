import { decideApproval, type DecisionKind, type DecisionResult } from '../../approvals/decide';
import type { DecisionSigner } from '../../approvals/signing-keys';
import type { WardenClient } from '../../client';
import type { RunStore } from '../../store';
import { CliError } from '../cli-errors';
import { printable } from '../format';

/** How long `approve`/`reject` watch the run's audit trail for its answer. */
const CONFIRM_MS = 5_000;

/**
 * A decision typed at the terminal: the person `--as` names, vouched for by the CLI's key. The
 * worker counts it only if that key may assert that person, and takes their groups from the key's
 * directory; `groups` is what the person says they are in, refused if the key does not grant it.
 */
export interface CliDecision {
  runId: string;
  approvalId: string;
  kind: DecisionKind;
  approver: string;
  groups?: string[];
  /** The approver's comment (approve) or reason (reject). */
  note?: string;
}

/**
 * Sends a decision from the CLI through `decideApproval`, the path every channel takes (channel
 * `cli`): it checks the approval is pending, signs, signals, and reads the run's verdict back.
 * Used by `warden approve`, `warden reject` and the demo.
 */
export function sendDecision(client: WardenClient, store: RunStore, signer: DecisionSigner, req: CliDecision): Promise<DecisionResult> {
  return decideApproval(
    { client, store, signer, confirmWithinMs: CONFIRM_MS },
    { runId: req.runId, approvalId: req.approvalId, decision: req.kind, identity: { id: req.approver, groups: req.groups ?? [] }, note: req.note, channel: 'cli' },
  );
}

/** The line that tells what happened to a decision; throws (exit 1) when the run refused it, did not answer, or nothing was sent. */
export function reportDecision(req: Pick<CliDecision, 'runId' | 'approvalId' | 'kind' | 'approver'>, result: DecisionResult): string {
  // Reasons, states and names are read back from the run: printable, like all run data.
  const runId = printable(req.runId);
  const approvalId = printable(req.approvalId);
  const approver = printable(req.approver);
  switch (result.status) {
    case 'refused':
      throw new CliError(`${req.kind} refused by run ${runId}: ${printable(result.reason)}`);
    case 'unconfirmed':
      throw new CliError(`${req.kind} sent to ${runId}, but the run did not confirm it within ${CONFIRM_MS / 1000}s (is a worker running?); check 'warden audit ${runId}'`);
    case 'not_pending':
    case 'unavailable':
      throw new CliError(`${req.kind} not sent: ${printable(result.message)}`);
    case 'accepted': {
      const verb = req.kind === 'approve' ? 'approval' : 'rejection';
      if (!result.decided) return `${verb} of ${approvalId} accepted from ${approver}; more approvals are needed before the call runs`;
      const state = printable(result.state ?? (req.kind === 'approve' ? 'approved' : 'rejected'));
      return `${verb} of ${approvalId} accepted from ${approver}: the call is now ${state}${result.by ? ` (by ${printable(result.by)})` : ''}`;
    }
  }
}
