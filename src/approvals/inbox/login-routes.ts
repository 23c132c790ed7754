import { getConnInfo } from '@hono/node-server/conninfo';
import { Hono, type Context } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/authenticator';
import { HttpError } from '../http-error';
import { SESSION_COOKIE, type InboxEnv, type InboxGuards } from './inbox-guards';
import type { LoginCheck, LoginLimiter } from './login-limiter';
import { loginPage } from './pages';
import { seeOther, sendPage } from './page-headers';
import type { SessionStore } from './sessions';

/** A browser that signed in as someone holds a device token for them: their own failed guesses aside, it is never locked out (`LoginLimiter`). */
const DEVICE_COOKIE = 'warden_device';
const DEVICE_COOKIE_MAX_AGE_SEC = 30 * 24 * 3600;

export interface LoginRouteOptions {
  auth: Authenticator;
  sessions: SessionStore;
  sessionTtlMs: number;
  limiter: LoginLimiter;
  /** Cookies carry `Secure`. */
  secure: boolean;
  guards: InboxGuards;
  logger: Logger;
}

/** Only `safeNext` resolves against it: the origin a local path keeps. */
const NEXT_BASE = new URL('http://inbox.invalid/');

/**
 * A local path to return to after login; anything else goes to the inbox. Browsers drop tabs and
 * newlines inside a URL and read `\` as `/`, so prefix tests let `/\t/evil.example` through (it
 * becomes `//evil.example`). Resolving it as a URL parser does, and returning what was resolved,
 * means the browser follows exactly the path that was checked.
 */
export function safeNext(next: string | null | undefined): string {
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  if (!next || /[\u0000-\u001f\u007f-\u009f]/.test(next)) return '/';
  let url: URL;
  try {
    url = new URL(next, NEXT_BASE);
  } catch {
    return '/';
  }
  if (url.origin !== NEXT_BASE.origin) return '/';
  const local = `${url.pathname}${url.search}${url.hash}`;
  // Dot segments can leave a path that starts with `//` (`/.//evil.example`): protocol-relative again.
  return local.startsWith('/') && !local.startsWith('//') ? local : '/';
}

/** What a refused login is told: who is locked out, and when to come back. */
function tooManyFailures(check: Extract<LoginCheck, { allowed: false }>, seconds: number): string {
  const who = { 'user-address': 'for this user from your address', address: 'from your address', user: 'for this user from new browsers', device: 'for this user in this browser' }[check.scope];
  const minutes = Math.ceil(seconds / 60);
  const at = new Date(check.retryAt).toISOString().slice(11, 16);
  const elsewhere = check.scope === 'user' ? ' A browser you have signed in with before still gets you in.' : '';
  return `Too many failed sign-ins ${who}. Try again in ${minutes} minute${minutes === 1 ? '' : 's'} (after ${at} UTC).${elsewhere}`;
}

/**
 * `GET /login`, `POST /login` and `POST /logout`. A password login is checked against the limiter
 * before the password, gets a fresh session id, and returns to a local path only (`safeNext`).
 */
export function loginRoutes(options: LoginRouteOptions): Hono<InboxEnv> {
  const { auth, sessions, limiter, secure, guards, logger } = options;
  const routes = new Hono<InboxEnv>();

  const sessionCookie = (c: Context, value: string, maxAge: number) =>
    setCookie(c, SESSION_COOKIE, value, { path: '/', httpOnly: true, sameSite: 'Strict', maxAge, secure });

  routes.get('/login', async (c) => {
    const next = safeNext(c.req.query('next'));
    const found = await guards.viewerOf(c);
    if ('viewer' in found && auth.kind === 'password') return seeOther(c, next);
    return sendPage(c, 200, loginPage({ next, bearer: auth.kind === 'bearer' }));
  });

  if (auth.kind !== 'password') {
    routes.post('/login', () => {
      throw new HttpError(404, 'This inbox signs people in through the identity provider.');
    });
  } else {
    const passwords = auth;
    routes.post('/login', guards.sameOrigin, guards.form, async (c) => {
      const form = c.get('form');
      const next = safeNext(form.get('next'));
      const username = (form.get('username') ?? '').trim();
      const client = getConnInfo(c).remote.address ?? 'unknown';
      const device = limiter.deviceOf(getCookie(c, DEVICE_COOKIE), username);
      // Checked before the password: a locked-out attempt costs no hash and tells nothing.
      const gate = limiter.check(username, client, device);
      if (!gate.allowed) {
        const seconds = Math.max(1, Math.ceil((gate.retryAt - Date.now()) / 1000));
        logger.warn({ client, scope: gate.scope, retryAfterSec: seconds }, 'login refused: too many failed logins');
        return sendPage(c, 429, loginPage({ next, bearer: false, error: tooManyFailures(gate, seconds) }), { 'retry-after': String(seconds) });
      }
      const identity = username ? await passwords.verify(username, form.get('password') ?? '') : null;
      if (!identity) {
        const failures = limiter.recordFailure(username, client, device);
        // No username in the log: people type their password into it by mistake.
        logger.info({ client, failuresForUser: failures }, 'login refused');
        return sendPage(c, 401, loginPage({ next, bearer: false, error: 'Wrong user or password.' }));
      }
      limiter.recordSuccess(username, client, device);
      // A fresh id at every login: a session id planted before login is worth nothing.
      const old = getCookie(c, SESSION_COOKIE);
      if (old) sessions.delete(old);
      const session = sessions.create(identity);
      logger.info({ user: identity.id }, 'signed in');
      sessionCookie(c, session.id, Math.floor(options.sessionTtlMs / 1000));
      // Sent with sign-ins only (Path=/login): it matters to the limiter and to nothing else.
      setCookie(c, DEVICE_COOKIE, limiter.issueDevice(username), { path: '/login', httpOnly: true, sameSite: 'Strict', maxAge: DEVICE_COOKIE_MAX_AGE_SEC, secure });
      return seeOther(c, next);
    });
  }

  routes.post('/logout', guards.post, (c) => {
    const sessionId = c.get('sessionId');
    if (sessionId) sessions.delete(sessionId);
    sessionCookie(c, '', 0);
    return seeOther(c, '/login');
  });

  return routes;
}
