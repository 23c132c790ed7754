import { errorMarker, WardenError } from '../../errors';

/** The Slack app's options or its identities file cannot be used as given; the message says what to change. */
export class SlackConfigError extends WardenError {
  static override readonly marker = errorMarker('SlackConfigError');
  override name = 'SlackConfigError';
}
