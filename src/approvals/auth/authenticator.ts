import type { Identity } from '../identity';
import { errorMarker, WardenError } from '../../errors';

/** Checks a user name and password (form login with a server-side session). */
export interface PasswordAuthenticator {
  readonly kind: 'password';
  /** The identity, or null for an unknown user or a wrong password (the caller cannot tell which). */
  verify(username: string, password: string): Promise<Identity | null>;
}

/** Checks a bearer token on every request (an OIDC provider or a proxy in front of the inbox issues it). */
export interface BearerAuthenticator {
  readonly kind: 'bearer';
  /** The identity the token carries; throws `AuthError` saying why a token is refused. */
  verify(token: string): Promise<Identity>;
}

/** How the web inbox learns who a person is. */
export type Authenticator = PasswordAuthenticator | BearerAuthenticator;

/** A credential was refused. The message is safe to log; the inbox shows people only "not signed in". */
export class AuthError extends WardenError {
  static override readonly marker = errorMarker('AuthError');
  override name = 'AuthError';
}
