import { errorMarker, WardenError } from '../errors';

/**
 * A payload could not be encrypted or decrypted. The message names the key id and what went
 * wrong, never key material or payload contents.
 */
export class PayloadCodecError extends WardenError {
  static override readonly marker = errorMarker('PayloadCodecError');
  override name = 'PayloadCodecError';
}

/** A payload key file or keyset is unusable, or a payload names a key this process does not hold. */
export class PayloadKeyError extends PayloadCodecError {
  static override readonly marker = errorMarker('PayloadKeyError');
  override name = 'PayloadKeyError';
}
