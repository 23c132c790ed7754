import { WardenError, errorMarker } from '../errors';

/** An approve/reject Update refused by its validator: malformed, for no pending approval, or too late. The caller reads why. */
export class DecisionRefusedError extends WardenError {
  static override readonly marker = errorMarker('DecisionRefusedError');
  override name = 'DecisionRefusedError';
}

/** An Update whose input arrived unencrypted although the worker holds a payload key. */
export class PlaintextUpdateError extends WardenError {
  static override readonly marker = errorMarker('PlaintextUpdateError');
  override name = 'PlaintextUpdateError';
}
