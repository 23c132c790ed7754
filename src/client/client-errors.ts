import { errorMarker, WardenError } from '../errors';

/** A run cannot start as asked (no goal, no requester); the message names the field. */
export class RunInputError extends WardenError {
  static override readonly marker = errorMarker('RunInputError');
  override name = 'RunInputError';
}

/**
 * What Temporal holds under a run id was not written by a Warden run: the latest execution is not
 * an `agentRun`, or a memo field the run writes about itself is in clear (to a client holding a
 * payload key), or names another run or an earlier execution. Nothing from it is shown as the
 * run's. `reason` is the short form a listing counts (`memo not encrypted`).
 */
export class UntrustedRunError extends WardenError {
  static override readonly marker = errorMarker('UntrustedRunError');
  override name = 'UntrustedRunError';

  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}
