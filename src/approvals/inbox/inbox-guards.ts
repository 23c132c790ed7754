import { createHmac, randomBytes } from 'node:crypto';
import type { HttpBindings } from '@hono/node-server';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { every } from 'hono/combine';
import { getCookie } from 'hono/cookie';
import type { Logger } from 'pino';
import { AuthError, type Authenticator } from '../auth/authenticator';
import { HttpError } from '../http-error';
import type { Identity } from '../identity';
import { loginPage, type Viewer } from './pages';
import { seeOther, sendPage } from './page-headers';
import { sameSecret, type SessionStore } from './sessions';

/** What an inbox route sees beside the request: Node's own objects, and what the guards found. */
export type InboxEnv = {
  Bindings: HttpBindings;
  Variables: { viewer: Viewer; sessionId: string | undefined; form: URLSearchParams };
};

export const SESSION_COOKIE = 'warden_session';
const MAX_FORM_BYTES = 64 * 1024;

export interface GuardOptions {
  auth: Authenticator;
  sessions: SessionStore;
  logger: Logger;
  /** The origin browsers use when a proxy is in front; otherwise the request's Host with the inbox's own scheme. */
  publicOrigin?: string;
  tls: boolean;
}

type Found = { viewer: Viewer; sessionId?: string } | { refused: string };

/**
 * The request checks the inbox's routes share: who is asking (`viewerOf`), whether a page may be
 * shown (`page`), and what a state-changing request needs (`post`: same origin, a person, a form
 * within the size limit, the person's CSRF token in it).
 */
export function inboxGuards(options: GuardOptions) {
  const { auth, sessions, logger } = options;
  // Bearer sign-in has no server session: its CSRF token is a keyed digest of the person's id.
  const csrfKey = randomBytes(32);
  const bearerCsrf = (id: string) => createHmac('sha256', csrfKey).update(`csrf:${id}`).digest('base64url');

  /** The person behind a request: a password session's cookie, or a bearer token checked now. */
  async function viewerOf(c: Context): Promise<Found> {
    if (auth.kind === 'password') {
      const session = sessions.get(getCookie(c, SESSION_COOKIE));
      if (!session) return { refused: 'not signed in' };
      return { viewer: { identity: session.identity, csrf: session.csrf, session: true }, sessionId: session.id };
    }
    const m = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '');
    if (!m?.[1]) return { refused: 'no bearer token' };
    try {
      const identity = await auth.verify(m[1]);
      return { viewer: { identity, csrf: bearerCsrf(identity.id), session: false } };
    } catch (err) {
      if (AuthError.isInstance(err)) {
        logger.info({ reason: err.message }, 'bearer token refused');
        return { refused: err.message };
      }
      throw err;
    }
  }

  /** Who may use the codec endpoint: the same session cookie or bearer token as the pages. */
  async function identityOf(c: Context): Promise<Identity | null> {
    const found = await viewerOf(c);
    return 'viewer' in found ? found.viewer.identity : null;
  }

  /** A page needs a person: the login page for a browser session, 401 for bearer clients. */
  const page: MiddlewareHandler<InboxEnv> = async (c, next) => {
    const found = await viewerOf(c);
    if ('viewer' in found) {
      c.set('viewer', found.viewer);
      return next();
    }
    if (auth.kind === 'password') {
      const url = new URL(c.req.url);
      return seeOther(c, `/login?next=${encodeURIComponent(url.pathname + url.search)}`);
    }
    return sendPage(c, 401, loginPage({ next: '/', bearer: true, error: 'Your request carries no valid token.' }), { 'www-authenticate': 'Bearer realm="warden", error="invalid_token"' });
  };

  /**
   * Cross-site requests are refused before anything else: browsers say where a POST comes from.
   * Each header a browser sends must say this origin; a client that sends neither (curl, a script
   * with a bearer token) is no browser a third party could drive, and the CSRF token still applies.
   */
  const sameOrigin: MiddlewareHandler<InboxEnv> = async (c, next) => {
    const site = c.req.header('sec-fetch-site');
    if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new HttpError(403, `Cross-site request refused (Sec-Fetch-Site: ${site}).`);
    const origin = c.req.header('origin');
    // The Host header, not the request URL: an absolute-form request target would set that.
    const expected = options.publicOrigin ?? `${options.tls ? 'https' : 'http'}://${c.req.header('host') ?? ''}`;
    if (origin !== undefined && origin !== expected) throw new HttpError(403, 'Request from another origin refused.');
    await next();
  };

  const signedIn: MiddlewareHandler<InboxEnv> = async (c, next) => {
    const found = await viewerOf(c);
    if ('refused' in found) throw new HttpError(401, 'Sign in first: this request carries no valid session or token. Nothing was done.');
    c.set('viewer', found.viewer);
    c.set('sessionId', found.sessionId);
    await next();
  };

  /** A form as browsers post it, counted on the bytes read (a chunked body declares no length). */
  const form: MiddlewareHandler<InboxEnv> = every(
    async (c, next) => {
      if (!(c.req.header('content-type') ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
        throw new HttpError(415, 'Forms are sent as application/x-www-form-urlencoded.');
      }
      await next();
    },
    bodyLimit({
      maxSize: MAX_FORM_BYTES,
      onError: () => {
        throw new HttpError(413, 'The request is too large.');
      },
    }),
    async (c, next) => {
      c.set('form', new URLSearchParams(await c.req.text()));
      await next();
    },
  );

  const csrfToken: MiddlewareHandler<InboxEnv> = async (c, next) => {
    if (!sameSecret(c.get('form').get('csrf') ?? undefined, c.get('viewer').csrf)) {
      throw new HttpError(403, 'The form is missing its security token or it is stale. Reload the page and try again. Nothing was done.');
    }
    await next();
  };

  /** A state-changing request: same origin, a signed-in person, and their CSRF token in the form. */
  const post: MiddlewareHandler<InboxEnv> = every(sameOrigin, signedIn, form, csrfToken);

  return { viewerOf, identityOf, page, sameOrigin, form, post };
}

export type InboxGuards = ReturnType<typeof inboxGuards>;
