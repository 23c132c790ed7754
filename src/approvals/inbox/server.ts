import { getRequestListener } from '@hono/node-server';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { PayloadCodec } from '@temporalio/common';
import { Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import pino, { type Logger } from 'pino';
import type { WardenClient } from '../../client';
import type { RunStore } from '../../store/run-store';
import { codecRoutes } from '../../codec/endpoint';
import { errorMarker, WardenError } from '../../errors';
import type { Authenticator } from '../auth/authenticator';
import { HttpError } from '../http-error';
import type { DecisionSigner } from '../signing-keys';
import { isLoopbackHost, listen } from '../listen';
import { consoleRoutes, type ConsoleOptions } from '../console';
import { approvalRoutes } from './approval-routes';
import { quotaRoutes } from './quota-routes';
import { inboxGuards, type InboxEnv } from './inbox-guards';
import { LoginLimiter, type LoginLimits } from './login-limiter';
import { loginRoutes } from './login-routes';
import { messagePage } from './pages';
import { pageHeaders, sendPage } from './page-headers';
import { SessionStore } from './sessions';

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
   * in here, so the Temporal UI at `uiOrigin` shows decrypted payloads (`codecRoutes`).
   * Decoding is for the members of `decodeGroups` (default operators, approvers), encoding for those
   * of `encodeGroups` (default operators: the UI encodes the signals it sends, a pause say).
   */
  codec?: { codec: PayloadCodec; uiOrigin: string; maxBodyBytes?: number; decodeGroups?: readonly string[]; encodeGroups?: readonly string[] };
  /** The operations console under `/console` (runs, timelines, fleet charts, operator controls): who operates, the Temporal UI's address. */
  console?: ConsoleOptions;
}

export interface InboxServer {
  /** `http://host:port` the server listens on (`https://` with `tls`). */
  url: string;
  close(): Promise<void>;
}

/** The inbox's options cannot be served as given; the message says what to change. */
export class InboxConfigError extends WardenError {
  static override readonly marker = errorMarker('InboxConfigError');
  override name = 'InboxConfigError';
}

const DEFAULT_SESSION_TTL_MS = 8 * 3600_000;

/** What a log line names of a request: its path and query, as sent, never the host it named. */
const pathAndQuery = (url: string) => {
  const { pathname, search } = new URL(url);
  return pathname + search;
};

/** Plain HTTP only on loopback, unless the deployment says a TLS proxy is in front. */
function checkTransport(options: InboxServerOptions, host: string, logger: Logger): void {
  if (options.tls || isLoopbackHost(host)) return;
  if (!options.insecureHttp) {
    throw new InboxConfigError(
      `the web inbox will not serve ${host} over plain HTTP: it is not a loopback address, so passwords and session cookies would cross the network in clear. ` +
        'Give it a TLS certificate and key (option tls; warden inbox --tls-cert FILE --tls-key FILE), or listen on 127.0.0.1 behind an HTTPS proxy, ' +
        'or, only if a TLS-terminating proxy reaches it over a network you trust, pass insecureHttp: true (--insecure-http).',
    );
  }
  logger.warn({ host }, `INSECURE: the web inbox serves ${host} over plain HTTP (insecureHttp); passwords and session cookies cross the network in clear unless a TLS proxy is in front`);
}

/**
 * The web inbox: pending approvals across runs, a page per run, the decisions history, and
 * approve/reject forms that send signed decisions. Server-side HTML, no script, no external assets.
 * Every POST must come from the inbox's own pages (Origin / Sec-Fetch-Site) and carry the
 * session's CSRF token. A Hono app on Node's own HTTP(S) server (`@hono/node-server`).
 */
export async function createInboxServer(options: InboxServerOptions): Promise<InboxServer> {
  const { client, store, signer, auth } = options;
  const logger = options.logger ?? pino({ name: 'warden-inbox', level: 'info' });
  const host = options.host ?? '127.0.0.1';
  checkTransport(options, host, logger);
  const sessionTtlMs = options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  const sessions = new SessionStore(sessionTtlMs);
  const limiter = new LoginLimiter(options.loginLimits);
  const secure = options.tls !== undefined || (options.secureCookies ?? options.publicOrigin?.startsWith('https://') ?? false);
  const guards = inboxGuards({ auth, sessions, logger, publicOrigin: options.publicOrigin, tls: options.tls !== undefined });

  const app = new Hono<InboxEnv>();
  // Before the pages and their headers: the codec speaks JSON and CORS (the UI is another origin),
  // and answers every request under /codec itself. Decoding hands out clear payloads: only to people
  // signed in here (the same session cookie or bearer token) whose groups may.
  if (options.codec) app.route('/', codecRoutes({ ...options.codec, basePath: '/codec', authenticate: guards.identityOf, logger }));
  // Before the pages' headers too: the console's own allow its scripts and stylesheets from this server (the charts).
  app.route('/', consoleRoutes({ ...options.console, client, store, signer, guards, logger }));
  app.use(pageHeaders);
  app.route('/', loginRoutes({ auth, sessions, sessionTtlMs, limiter, secure, guards, logger }));
  app.route('/', approvalRoutes({ client, store, signer, guards, logger, historyRuns: options.historyRuns ?? 50, confirmWithinMs: options.confirmWithinMs }));
  app.route('/', quotaRoutes({ store, guards }));
  app.notFound((c) => {
    const known = ['GET', 'HEAD', 'POST'].includes(c.req.method);
    return sendPage(c, known ? 404 : 405, messagePage('Cannot do that', known ? 'Not found.' : 'Method not allowed.'));
  });
  app.onError((err, c) => {
    if (HttpError.isInstance(err)) {
      // The rest of a body over the limit is never read, so the connection cannot carry another request.
      const close: Record<string, string> = err.status === 413 ? { connection: 'close' } : {};
      const title = err.status === 401 ? 'Not signed in' : err.status === 403 ? 'Refused' : 'Cannot do that';
      return sendPage(c, err.status as ContentfulStatusCode, messagePage(title, err.message), close);
    }
    logger.error({ err, url: pathAndQuery(c.req.url) }, 'inbox request failed');
    return sendPage(c, 500, messagePage('Something went wrong', 'The inbox could not complete this request; the error is in its log. Nothing was sent unless the page said so.'));
  });

  // Routing needs a URL; a request without a Host header (HTTP/1.0, some health checks) still gets one.
  // The same-origin check reads the Host header itself, never this name.
  const listener = getRequestListener(app.fetch, { hostname: 'inbox.invalid' });
  // The listener answers every request itself, errors included (`onError`): its promise never rejects.
  const handle = (req: IncomingMessage, res: ServerResponse) => void listener(req, res);
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
