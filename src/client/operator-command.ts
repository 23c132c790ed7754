import type { OperatorAction, SignedDecision } from '../governance/signing/signed-decision';
import { errorMarker, WardenError } from '../errors';
import type { OperatorInput } from '../workflows/messages';

/** What signs an operator command: a channel key (`DecisionSigner`) whose grant has the role the action needs. */
export interface OperatorSigner {
  signOperator(claims: { action: OperatorAction; runId: string; by: string; channel: string }): SignedDecision;
}

/** An operator command: who and why (both in the audit trail), signed by `signer` when given. */
export interface OperatorCommand {
  by?: string;
  reason?: string;
  signer?: OperatorSigner;
  /** The channel `signer` signs for (default `cli`). */
  channel?: string;
  /** A command signed already (`OperatorSigner.signOperator`); `signer` is not asked then. */
  signature?: SignedDecision;
}

/** An operator command the client cannot send as asked (a signed command without `by`). */
export class OperatorCommandError extends WardenError {
  static override readonly marker = errorMarker('OperatorCommandError');
  override name = 'OperatorCommandError';
}

/** The signal input for `action` on `runId`: the command as given, signed by its `signer` unless it carries a signature already. */
export function operatorInput(action: OperatorAction, runId: string, command: OperatorCommand): OperatorInput {
  const { signer, channel, ...input } = command;
  if (!signer || input.signature) return input;
  if (!input.by) throw new OperatorCommandError(`a signed ${action} needs "by": the operator the key vouches for`);
  return { ...input, signature: signer.signOperator({ action, runId, by: input.by, channel: channel ?? 'cli' }) };
}
