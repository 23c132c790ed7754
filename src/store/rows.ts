import { errorMarker, WardenError } from '../errors';

/** A run store failure: a missing row, an unreadable file, a value that cannot be stored. */
export class StoreError extends WardenError {
  static override readonly marker = errorMarker('StoreError');
  override name = 'StoreError';
}

/** A value as the stores keep it: JSON text, or a `StoreError` naming `what` could not be stored. */
export function toJson(value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new StoreError(`${what} is not JSON-serialisable: ${(err as Error).message}`);
  }
  // JSON.stringify(undefined) and of a function return undefined, which would store nothing.
  if (text === undefined) throw new StoreError(`${what} is not JSON-serialisable (got ${typeof value})`);
  return text;
}

export function checkSeq(seq: number, what: string): void {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new StoreError(`${what}: seq must be a non-negative integer, got ${String(seq)}`);
}
