import { errorMarker, WardenError } from '../errors';

/** The dev server could not be found, built, started or stopped; the message says which and why. */
export class DevServerError extends WardenError {
  static override readonly marker = errorMarker('DevServerError');
  override name = 'DevServerError';
}

/**
 * No Temporal CLI binary was found or built locally. `tried` lists every place looked at and why it
 * did not work, so a caller can fall back to the SDK's download or print the list.
 */
export class TemporalBinaryNotFoundError extends DevServerError {
  static override readonly marker = errorMarker('TemporalBinaryNotFoundError');
  override name = 'TemporalBinaryNotFoundError';

  constructor(readonly tried: readonly string[]) {
    super(`No Temporal CLI binary found. Tried:\n${tried.map((t) => `  - ${t}`).join('\n')}`);
  }
}
