import { errorMarker, WardenError } from '../errors';

/**
 * A request the inbox or the codec endpoint answers with `status` and this message instead of
 * serving it. Thrown inside a route or its middleware; the app's `onError` turns it into the answer
 * (a page for the inbox, JSON for the codec endpoint).
 */
export class HttpError extends WardenError {
  static override readonly marker = errorMarker('HttpError');
  override name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    /** More fields of a JSON answer, beside `error`. */
    readonly fields: Record<string, unknown> = {},
  ) {
    super(message);
  }
}
