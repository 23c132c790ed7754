import { createHmac, randomBytes } from 'node:crypto';
import { isLoopbackHost, listen } from '../listen';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { PayloadCodec } from '@temporalio/common';
import pino, { type Logger } from 'pino';
import type { PendingApprovalsListing, WardenClient } from '../../client';
import { ignoredApprovalsLines } from '../../client/run-memo';
import type { RunStore } from '../../store/types';
import { createCodecHandler } from '../../codec/endpoint';
import { AuthError, type Authenticator } from '../auth/authenticator';
import { decideApproval, type DecisionResult } from '../decide';
import type { DecisionSigner } from '../keys';
import { QUERY_TIMEOUT_MS, describeFailure, readVerifiedTrail, within } from '../run-reads';
import { STYLE_HASH } from './html';
import {
  HISTORY_OUTCOMES,
  decisionPage,
  historyPage,
  historyRows,
  inboxPage,
  loginPage,
  messagePage,
  runPage,
  type HistoryOutcome,
  type InboxItem,
  type Viewer,
} from './pages';
import { SessionStore, sameSecret } from './sessions';
import { LoginLimiter, type LoginCheck, type LoginLimits } from './login-limiter';
import { HttpError } from '../http-error';
import { readBodyWithin } from '../read-body';
import { errorMarker, WardenError } from '../../errors';

export interface InboxServerOptions {
  client: WardenClient;
  /** The run store: audit trails of finished runs are read from it without querying their workflows. */
  store?: RunStore;
  /** Signs each decision as channel `web`; workers must trust its public key. */
  signer: DecisionSigner;
  auth: Authenticator;
  /**
   * Default 127.0.0.1. Any other address (not 127.0.0.0/8, ::1 or localhost) needs `tls`, or
   * `insecureHttp` when a TLS-terminating proxy on a trusted network is in front.
   */
  host?: string;
  /** Default 0: any free port (see `url`). */
  port?: number;
  /** The origin people's browsers use (`https://warden.example.com`) when a proxy is in front; Origin checks compare with it. */
  publicOrigin?: string;
  /** Session lifetime for password logins. Default 8 hours. */
  sessionTtlMs?: number;
  /** Mark the session cookie `Secure`. Default: when `publicOrigin` is https. Always with `tls`. */
  secureCookies?: boolean;
  /** Serve HTTPS with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Serve plain HTTP on a non-loopback `host` anyway (a TLS proxy in front); logged as a warning at start. */
  insecureHttp?: boolean;
  /** Failed password logins allowed per username and address, per address, per username from new browsers and per browser (`LoginLimiter`). */
  loginLimits?: LoginLimits;
  /** How many recent runs `/history` reads. Default 50. */
  historyRuns?: number;
  /** How long a decision waits for the run to confirm it. Default 3 s. */
  confirmWithinMs?: number;
  logger?: Logger;
  /**
   * Serve Temporal's remote codec protocol at `/codec/encode` and `/codec/decode` for people signed
   * in here, so the Temporal UI at `uiOrigin` shows decrypted payloads (`createCodecHandler`).
   * Decoding is for the members of `decodeGroups` (default operators, approvers), encoding for those
   * of `encodeGroups` (default operators: the UI encodes the signals it sends, a pause say).
   */
  codec?: { codec: PayloadCodec; uiOrigin: string; maxBodyBytes?: number; decodeGroups?: readonly string[]; encodeGroups?: readonly string[] };
}

export interface InboxServer {
  /** `http://host:port` the server listens on (`https://` with `tls`). */
  url: string;
  close(): Promise<void>;
}

const COOKIE = 'warden_session';
/** A browser that signed in as someone holds a device token for them: their own failed guesses aside, it is never locked out (`LoginLimiter`). */
const DEVICE_COOKIE = 'warden_device';
const DEVICE_COOKIE_MAX_AGE_SEC = 30 * 24 * 3600;
const MAX_BODY = 64 * 1024;
/** Listing runs through visibility can take longer than one query on a busy server. */
const LIST_TIMEOUT_MS = 10_000;

/** The inbox's options cannot be served as given; the message says what to change. */
export class InboxConfigError extends WardenError {
  static override readonly marker = errorMarker('InboxConfigError');
  override name = 'InboxConfigError';
}

function cookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  if (!(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    throw new HttpError(415, 'Forms are sent as application/x-www-form-urlencoded.');
  }
  const body = await readBodyWithin(req, MAX_BODY);
  if (!body) throw new HttpError(413, 'The request is too large.');
  return new URLSearchParams(body.toString('utf8'));
}

/** Only `safeNext` resolves against it: the origin a local path keeps. */
const NEXT_BASE = new URL('http://inbox.invalid/');

/**
 * A local path to return to after login; anything else goes to the inbox. Browsers drop tabs and
 * newlines inside a URL and read `\` as `/`, so prefix tests let `/\t/evil.example` through (it
 * becomes `//evil.example`). Resolving it as a URL parser does, and returning what was resolved,
 * means the browser follows exactly the path that was checked.
 */
function safeNext(next: string | null): string {
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
 * The web inbox: pending approvals across runs, a page per run, the decisions history, and
 * approve/reject forms that send signed decisions. Server-side HTML, no script, no external assets.
 * Every POST must come from the inbox's own pages (Origin / Sec-Fetch-Site) and carry the
 * session's CSRF token.
 */
export async function createInboxServer(options: InboxServerOptions): Promise<InboxServer> {
  const { client, store, signer, auth } = options;
  const logger = options.logger ?? pino({ name: 'warden-inbox', level: 'info' });
  const host = options.host ?? '127.0.0.1';
  if (!options.tls && !isLoopbackHost(host)) {
    if (!options.insecureHttp) {
      throw new InboxConfigError(
        `the web inbox will not serve ${host} over plain HTTP: it is not a loopback address, so passwords and session cookies would cross the network in clear. ` +
          'Give it a TLS certificate and key (option tls; warden inbox --tls-cert FILE --tls-key FILE), or listen on 127.0.0.1 behind an HTTPS proxy, ' +
          'or, only if a TLS-terminating proxy reaches it over a network you trust, pass insecureHttp: true (--insecure-http).',
      );
    }
    logger.warn({ host }, `INSECURE: the web inbox serves ${host} over plain HTTP (insecureHttp); passwords and session cookies cross the network in clear unless a TLS proxy is in front`);
  }
  const sessions = new SessionStore(options.sessionTtlMs ?? 8 * 3600_000);
  const limiter = new LoginLimiter(options.loginLimits);
  const secure = options.tls !== undefined || (options.secureCookies ?? options.publicOrigin?.startsWith('https://') ?? false);
  // Bearer sign-in has no server session: its CSRF token is a keyed digest of the person's id.
  const csrfKey = randomBytes(32);
  const bearerCsrf = (id: string) => createHmac('sha256', csrfKey).update(`csrf:${id}`).digest('base64url');

  function send(res: ServerResponse, status: number, body: string, headers: Record<string, string | string[]> = {}): void {
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': `default-src 'none'; style-src '${STYLE_HASH}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'same-origin',
      'cache-control': 'no-store',
      ...headers,
    });
    res.end(body);
  }

  function redirect(res: ServerResponse, location: string, headers: Record<string, string | string[]> = {}): void {
    res.writeHead(303, { location, 'cache-control': 'no-store', ...headers });
    res.end();
  }

  function sessionCookie(value: string, maxAgeSec: number): string {
    return `${COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSec}${secure ? '; Secure' : ''}`;
  }

  /** Sent with sign-ins only (Path=/login): it matters to the limiter and to nothing else. */
  function deviceCookie(token: string): string {
    return `${DEVICE_COOKIE}=${token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=${DEVICE_COOKIE_MAX_AGE_SEC}${secure ? '; Secure' : ''}`;
  }

  async function viewerOf(req: IncomingMessage): Promise<{ viewer: Viewer; sessionId?: string } | { refused: string }> {
    if (auth.kind === 'password') {
      const session = sessions.get(cookies(req).get(COOKIE));
      if (!session) return { refused: 'not signed in' };
      return { viewer: { identity: session.identity, csrf: session.csrf, session: true }, sessionId: session.id };
    }
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
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

  /** A page needs a person: the login page for a browser session, 401 for bearer clients. */
  async function requireViewer(req: IncomingMessage, res: ServerResponse, path: string): Promise<Viewer | null> {
    const found = await viewerOf(req);
    if ('viewer' in found) return found.viewer;
    if (auth.kind === 'password') redirect(res, `/login?next=${encodeURIComponent(path)}`);
    else send(res, 401, loginPage({ next: '/', bearer: true, error: 'Your request carries no valid token.' }), { 'www-authenticate': 'Bearer realm="warden", error="invalid_token"' });
    return null;
  }

  /** Cross-site requests are refused before anything else: browsers say where a POST comes from. */
  function checkSameOrigin(req: IncomingMessage): void {
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new HttpError(403, `Cross-site request refused (Sec-Fetch-Site: ${site}).`);
    const origin = req.headers.origin;
    const expected = options.publicOrigin ?? `${options.tls ? 'https' : 'http'}://${req.headers.host ?? ''}`;
    if (origin !== undefined && origin !== expected) throw new HttpError(403, 'Request from another origin refused.');
  }

  /** A state-changing request: same origin, a signed-in person, and their CSRF token in the form. */
  async function requirePost(req: IncomingMessage): Promise<{ viewer: Viewer; sessionId?: string; form: URLSearchParams }> {
    checkSameOrigin(req);
    const found = await viewerOf(req);
    if ('refused' in found) throw new HttpError(401, 'Sign in first: this request carries no valid session or token. Nothing was done.');
    const form = await readForm(req);
    if (!sameSecret(form.get('csrf') ?? undefined, found.viewer.csrf)) throw new HttpError(403, 'The form is missing its security token or it is stale. Reload the page and try again. Nothing was done.');
    return { ...found, form };
  }

  async function inbox(viewer: Viewer, res: ServerResponse): Promise<void> {
    // One visibility listing: each waiting run's memo holds its pending approvals (paused runs'
    // too: they still wait, and still count). Only runs from before that memo are queried.
    let listing: PendingApprovalsListing;
    try {
      listing = await within(client, LIST_TIMEOUT_MS, () => client.listPendingApprovals({ queryTimeoutMs: QUERY_TIMEOUT_MS }));
    } catch (err) {
      send(res, 200, inboxPage(viewer, [], [{ runId: '', message: `Could not list the runs waiting for approval: ${describeFailure(err)}` }], Date.now()));
      return;
    }
    // The most urgent first, as the listing orders them.
    const items: InboxItem[] = listing.runs.map(({ run, approvals }) => ({ run, approvals }));
    const failures = listing.failures.map(({ runId, error }) => ({ runId, message: describeFailure(error) }));
    // Counted, not linked: a forged run's id is the forger's words.
    for (const message of ignoredApprovalsLines(listing.refused)) failures.push({ runId: '', message: `${message}.` });
    send(res, 200, inboxPage(viewer, items, failures, Date.now()));
  }

  async function runDetail(viewer: Viewer, res: ServerResponse, runId: string): Promise<void> {
    const [status, pending] = await Promise.allSettled([
      within(client, QUERY_TIMEOUT_MS, () => client.status(runId)),
      within(client, QUERY_TIMEOUT_MS, () => client.pendingApprovals(runId)),
    ]);
    const current = status.status === 'fulfilled' ? status.value : null;
    const trail = await readVerifiedTrail(client, runId, store).catch((err: unknown) => ({ verified: false as const, problem: describeFailure(err) }));
    if (!current && !trail.verified) {
      send(res, 404, messagePage('No such run', `Run ${runId} was not found, or it does not answer (${describeFailure(status.status === 'rejected' ? status.reason : '')}).`, viewer));
      return;
    }
    send(
      res,
      200,
      runPage(
        viewer,
        {
          runId,
          status: current,
          statusError: status.status === 'rejected' ? describeFailure(status.reason) : undefined,
          pending: pending.status === 'fulfilled' ? pending.value : [],
          trail,
        },
        Date.now(),
      ),
    );
  }

  async function history(viewer: Viewer, res: ServerResponse, outcomeParam: string | null): Promise<void> {
    let outcome: HistoryOutcome | null = null;
    if (outcomeParam) {
      if (!(HISTORY_OUTCOMES as readonly string[]).includes(outcomeParam)) throw new HttpError(400, `Unknown outcome "${outcomeParam}": use ${HISTORY_OUTCOMES.join(', ')}.`);
      outcome = outcomeParam as HistoryOutcome;
    }
    const runs = (await within(client, QUERY_TIMEOUT_MS, () => client.listRuns({ open: false })))
      .sort((a, b) => b.startTime.getTime() - a.startTime.getTime())
      .slice(0, options.historyRuns ?? 50);
    const trails = await Promise.allSettled(runs.map((run) => readVerifiedTrail(client, run.runId, store)));
    // Only verified trails count: a decision read from a trail that fails verification is not a record.
    const rows = trails
      .flatMap((t, i) => (t.status === 'fulfilled' && t.value.verified && runs[i] ? historyRows(runs[i].runId, t.value.events) : []))
      .filter((r) => !outcome || r.outcome === outcome)
      .sort((a, b) => b.at.localeCompare(a.at));
    send(res, 200, historyPage(viewer, rows, outcome, trails.filter((t) => t.status === 'rejected' || !t.value.verified).length));
  }

  async function decide(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { viewer, form } = await requirePost(req);
    const runId = form.get('runId') ?? '';
    const approvalId = form.get('approvalId') ?? '';
    const decision = form.get('decision');
    if (!runId || !approvalId || (decision !== 'approve' && decision !== 'reject')) throw new HttpError(400, 'A decision needs a run, an approval and approve or reject.');
    const result: DecisionResult = await decideApproval(
      { client, store, signer, confirmWithinMs: options.confirmWithinMs },
      { runId, approvalId, decision, identity: viewer.identity, note: form.get('note') ?? undefined, channel: 'web' },
    );
    logger.info({ runId, approvalId, decision, approver: viewer.identity.id, status: result.status }, 'web decision');
    const code = result.status === 'not_pending' ? 409 : result.status === 'unavailable' ? 503 : 200;
    send(res, code, decisionPage(viewer, decision, runId, approvalId, result));
  }

  async function login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (auth.kind !== 'password') throw new HttpError(404, 'This inbox signs people in through the identity provider.');
    checkSameOrigin(req);
    const form = await readForm(req);
    const next = safeNext(form.get('next'));
    const username = (form.get('username') ?? '').trim();
    const client = req.socket.remoteAddress ?? 'unknown';
    const device = limiter.deviceOf(cookies(req).get(DEVICE_COOKIE), username);
    // Checked before the password: a locked-out attempt costs no hash and tells nothing.
    const gate = limiter.check(username, client, device);
    if (!gate.allowed) {
      const seconds = Math.max(1, Math.ceil((gate.retryAt - Date.now()) / 1000));
      logger.warn({ client, scope: gate.scope, retryAfterSec: seconds }, 'login refused: too many failed logins');
      send(res, 429, loginPage({ next, bearer: false, error: tooManyFailures(gate, seconds) }), { 'retry-after': String(seconds) });
      return;
    }
    const identity = username ? await auth.verify(username, form.get('password') ?? '') : null;
    if (!identity) {
      const failures = limiter.recordFailure(username, client, device);
      // No username in the log: people type their password into it by mistake.
      logger.info({ client, failuresForUser: failures }, 'login refused');
      send(res, 401, loginPage({ next, bearer: false, error: 'Wrong user or password.' }));
      return;
    }
    limiter.recordSuccess(username, client, device);
    // A fresh id at every login: a session id planted before login is worth nothing.
    const old = cookies(req).get(COOKIE);
    if (old) sessions.delete(old);
    const session = sessions.create(identity);
    logger.info({ user: identity.id }, 'signed in');
    redirect(res, next, { 'set-cookie': [sessionCookie(session.id, Math.floor((options.sessionTtlMs ?? 8 * 3600_000) / 1000)), deviceCookie(limiter.issueDevice(username))] });
  }

  async function logout(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { sessionId } = await requirePost(req);
    if (sessionId) sessions.delete(sessionId);
    redirect(res, '/login', { 'set-cookie': sessionCookie('', 0) });
  }

  // Decoding hands out clear payloads: only to people signed in here (the same session cookie or bearer token) whose groups may.
  const codecHandler = options.codec
    ? createCodecHandler({
        ...options.codec,
        authenticate: async (req) => {
          const found = await viewerOf(req);
          return 'viewer' in found ? found.viewer.identity : null;
        },
        logger,
      })
    : null;

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://inbox.invalid');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    // Before the page routes: the codec speaks JSON and CORS (the UI is another origin), not pages and forms.
    if (codecHandler && (path === '/codec' || path.startsWith('/codec/'))) return codecHandler(req, res);
    if (method === 'POST') {
      if (path === '/decide') return decide(req, res);
      if (path === '/login') return login(req, res);
      if (path === '/logout') return logout(req, res);
      throw new HttpError(404, 'Not found.');
    }
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'Method not allowed.');
    if (path === '/login') {
      const found = await viewerOf(req);
      if ('viewer' in found && auth.kind === 'password') return redirect(res, safeNext(url.searchParams.get('next')));
      return send(res, 200, loginPage({ next: safeNext(url.searchParams.get('next')), bearer: auth.kind === 'bearer' }));
    }
    const isRun = path.startsWith('/runs/');
    if (path !== '/' && path !== '/history' && !isRun) throw new HttpError(404, 'Not found.');
    const viewer = await requireViewer(req, res, path + url.search);
    if (!viewer) return;
    if (path === '/') return inbox(viewer, res);
    if (path === '/history') return history(viewer, res, url.searchParams.get('outcome'));
    let runId: string;
    try {
      // Run ids contain slashes: links encode them (`/runs/warden%2Fagent%2Fkey`), typed paths may not.
      runId = decodeURIComponent(path.slice('/runs/'.length));
    } catch {
      throw new HttpError(400, 'Malformed run id in the address.');
    }
    if (!runId) throw new HttpError(404, 'Not found.');
    return runDetail(viewer, res, runId);
  }

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    route(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.end();
        return;
      }
      if (HttpError.isInstance(err)) {
        // The rest of a body over the limit is never read, so the connection cannot carry another request.
        const close: Record<string, string> = err.status === 413 ? { connection: 'close' } : {};
        send(res, err.status, messagePage(err.status === 401 ? 'Not signed in' : err.status === 403 ? 'Refused' : 'Cannot do that', err.message), close);
        return;
      }
      logger.error({ err, url: req.url }, 'inbox request failed');
      send(res, 500, messagePage('Something went wrong', 'The inbox could not complete this request; the error is in its log. Nothing was sent unless the page said so.'));
    });
  };

  let server: Server | HttpsServer;
  if (options.tls) {
    try {
      server = createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handle);
    } catch (err) {
      throw new InboxConfigError(`the inbox's TLS certificate or key cannot be used: ${err instanceof Error ? err.message : String(err)}`);
    }
  } else server = createServer(handle);

  const url = await listen(server, host, options.port);
  logger.info({ url }, 'web inbox listening');
  return {
    url,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
