import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Identity } from '../approvals/identity';
import { HttpError } from '../approvals/http-error';
import { normalizeIdentity } from '../governance/signing/identity-folding';
import { PayloadCodecError } from './codec-errors';
import { formatZodError } from '../zod-error';

export interface CodecEndpointOptions {
  codec: PayloadCodec;
  /** Who sends the request, or null: every encode and decode needs a person (preflights carry no credentials and are exempt). */
  authenticate(req: IncomingMessage): Promise<Identity | null>;
  /**
   * The Temporal UI's origin (`http://127.0.0.1:8233`): browsers may call from there, with
   * credentials. Requests from any other origin are refused; requests without an Origin (the
   * Temporal CLI's `--codec-endpoint`) are not browser requests and are allowed.
   */
  uiOrigin?: string;
  /** The path the two routes sit under. Default `/codec` (`/codec/encode`, `/codec/decode`). */
  basePath?: string;
  /** Largest request body, counted on the bytes read. Default 8 MiB (Temporal refuses payloads over 2 MB; base64 adds a third). */
  maxBodyBytes?: number;
  /**
   * The groups whose members may decode: a decode shows clear run data (tool arguments, results,
   * decisions). Default `DEFAULT_CODEC_DECODE_GROUPS`. Names compare normalised (`Operators` is
   * `operators`); an empty list lets nobody decode.
   */
  decodeGroups?: readonly string[];
  /**
   * The groups whose members may encode: an encode makes ciphertext the workers take as coming from
   * a key holder (the Temporal UI encodes the input of a signal it sends, a pause say). Default
   * `DEFAULT_CODEC_ENCODE_GROUPS`; an empty list lets nobody encode.
   */
  encodeGroups?: readonly string[];
  logger?: Logger;
}

/** The codec routes as a Hono app that already knows who people are mounts them (`codecRoutes`). */
export interface CodecRoutesOptions extends Omit<CodecEndpointOptions, 'authenticate'> {
  /** Who sends the request, from its headers (the inbox's session cookie or bearer token), or null. */
  authenticate(c: Context<CodecEnv>): Promise<Identity | null>;
}

/** What a codec route sees beside the request: Node's own objects (`@hono/node-server`), and who asks once known. */
export type CodecEnv = { Bindings: HttpBindings; Variables: { identity: Identity } };

/** Who may decode when the deployment does not say: the people who operate runs or decide approvals. */
export const DEFAULT_CODEC_DECODE_GROUPS: readonly string[] = ['operators', 'approvers'];
/** Who may encode when the deployment does not say: operators only (an encode is an encryption oracle). */
export const DEFAULT_CODEC_ENCODE_GROUPS: readonly string[] = ['operators'];

/** Handles one request under `basePath`; answers every request itself and never rejects. */
export type CodecRequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

const DEFAULT_MAX_BODY = 8 * 1024 * 1024;
// What the Temporal UI sends: JSON, the namespace, and (with "pass the user access token") its tokens.
const ALLOWED_HEADERS = ['content-type', 'x-namespace', 'authorization', 'authorization-extras'];
const OP_ROUTE = '/:op{encode|decode}';

/** Payloads in proto JSON form: metadata values and data are base64. */
const bodySchema = z.strictObject({
  payloads: z.array(
    z.object({
      metadata: z.record(z.string(), z.string()).nullish(),
      data: z.string().nullish(),
    }),
  ),
});

type JsonPayload = z.output<typeof bodySchema>['payloads'][number];
type Op = 'encode' | 'decode';

/** Why `identity` may not `op`, or null when one of its groups is in `allowed` (normalised names). */
function refusal(identity: Identity, op: Op, allowed: readonly string[]): string | null {
  const wanted = new Set(allowed.map(normalizeIdentity));
  if (identity.groups.some((g) => wanted.has(normalizeIdentity(g)))) return null;
  const doing = op === 'encode' ? 'encoding' : 'decoding';
  if (wanted.size === 0) return `${identity.id} may not ${op} payloads: ${doing} is turned off here (no group may ${op})`;
  return `${identity.id} may not ${op} payloads: ${doing} needs a group of ${allowed.join(', ')} (${identity.id} is in ${identity.groups.join(', ') || 'no group'})`;
}

function fromJson(p: JsonPayload): Payload {
  return {
    metadata: p.metadata ? Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])) : undefined,
    data: p.data ? Buffer.from(p.data, 'base64') : undefined,
  };
}

function toJson(p: Payload): { metadata: Record<string, string>; data: string } {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    data: p.data ? Buffer.from(p.data).toString('base64') : '',
  };
}

function answer(c: Context, status: ContentfulStatusCode, body: unknown, headers: Record<string, string> = {}): Response {
  return c.body(JSON.stringify(body), status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers });
}

/** An `HttpError` as the JSON answer the UI and the CLI read; anything else is logged and answered 500. */
function refuse(err: Error, c: Context, logger: Logger | undefined): Response {
  if (HttpError.isInstance(err)) {
    // After a refused body the rest of the upload is not worth reading.
    const close: Record<string, string> = err.status === 413 ? { connection: 'close' } : {};
    const auth: Record<string, string> = err.status === 401 ? { 'www-authenticate': 'Bearer realm="warden"' } : {};
    return answer(c, err.status as ContentfulStatusCode, { error: err.message, ...err.fields }, { ...close, ...auth });
  }
  logger?.error({ err, url: c.req.path }, 'codec request failed');
  return answer(c, 500, { error: 'the codec endpoint could not complete this request; the error is in its log' });
}

/**
 * Temporal's remote codec protocol as Hono routes under `basePath`, to mount on an app (`app.route('/', …)`):
 * `POST <basePath>/encode` and `POST <basePath>/decode` take and answer `{"payloads": [{"metadata": {k: base64}, "data": base64}]}`.
 * For a server that already knows who people are (the web inbox); a server of its own is
 * `createCodecHandler`. In order: the origin (only the Temporal UI's, or none), the method, a
 * person, one of the route's groups, a JSON body within the limit; each refusal is a JSON answer.
 */
export function codecRoutes(options: CodecRoutesOptions): Hono<CodecEnv> {
  const base = (options.basePath ?? '/codec').replace(/\/+$/, '');
  const max = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const { codec, logger } = options;
  const allowed = { decode: options.decodeGroups ?? DEFAULT_CODEC_DECODE_GROUPS, encode: options.encodeGroups ?? DEFAULT_CODEC_ENCODE_GROUPS };
  // Browsers send an origin as scheme://host[:port]; `http://127.0.0.1:8233/` as configured would never match it.
  let uiOrigin: string | undefined;
  if (options.uiOrigin !== undefined) {
    if (!URL.canParse(options.uiOrigin)) throw new TypeError(`codec endpoint uiOrigin ${options.uiOrigin} is not a URL (e.g. http://127.0.0.1:8233)`);
    uiOrigin = new URL(options.uiOrigin).origin;
  }
  const opOf = (c: Context): Op => (c.req.param('op') === 'encode' ? 'encode' : 'decode');

  // Browsers ask before a cross-origin JSON POST; only the configured UI gets a yes. A request with
  // no Origin is no browser's (the Temporal CLI): refused as a preflight, served as a POST.
  const uiOnly: MiddlewareHandler<CodecEnv> = async (c, next) => {
    const origin = c.req.header('origin');
    const fromUi = origin !== undefined && origin === uiOrigin;
    if (c.req.method === 'OPTIONS' && !fromUi) throw new HttpError(403, `origin ${origin ?? '(none)'} may not call the codec endpoint`);
    if (c.req.method === 'POST' && origin !== undefined && !fromUi) throw new HttpError(403, `origin ${origin} may not call the codec endpoint`);
    await next();
  };
  const uiCors = cors({ origin: uiOrigin ? [uiOrigin] : [], credentials: true, allowMethods: ['POST'], allowHeaders: ALLOWED_HEADERS, maxAge: 600 });

  const signedIn: MiddlewareHandler<CodecEnv> = async (c, next) => {
    const op = opOf(c);
    const identity = await options.authenticate(c);
    if (!identity) {
      logger?.info({ op, refused: 'not signed in', namespace: c.req.header('x-namespace') }, 'codec request refused');
      throw new HttpError(401, 'sign in first: this request carries no valid inbox session or bearer token');
    }
    // Before the body is read: a person who may not use the route costs no parsing.
    const refused = refusal(identity, op, allowed[op]);
    if (refused) {
      logger?.warn({ user: identity.id, op, refused, namespace: c.req.header('x-namespace') }, 'codec request refused');
      throw new HttpError(403, refused, { requiredGroups: [...allowed[op]] });
    }
    c.set('identity', identity);
    await next();
  };

  // A JSON content type also makes browsers preflight, so another site cannot post here unasked.
  const json: MiddlewareHandler<CodecEnv> = async (c, next) => {
    if (!(c.req.header('content-type') ?? '').toLowerCase().startsWith('application/json')) throw new HttpError(415, 'send the payloads as application/json');
    await next();
  };
  const withinLimit = bodyLimit({
    maxSize: max,
    onError: () => {
      throw new HttpError(413, `the request body is over ${max} bytes`);
    },
  });

  async function serve(c: Context<CodecEnv>): Promise<Response> {
    const op = opOf(c);
    const identity = c.get('identity');
    let doc: unknown;
    try {
      doc = JSON.parse(await c.req.text());
    } catch {
      throw new HttpError(400, 'the body is not JSON');
    }
    const parsed = bodySchema.safeParse(doc);
    if (!parsed.success) throw new HttpError(400, `the body must be {"payloads": [{"metadata": {…}, "data": "<base64>"}]}: ${formatZodError(parsed.error)}`);
    const payloads = parsed.data.payloads.map(fromJson);
    let out: Payload[];
    try {
      out = op === 'encode' ? await codec.encode(payloads) : await codec.decode(payloads);
    } catch (err) {
      // Codec errors name a key id and what is wrong, never key material or payload contents.
      if (PayloadCodecError.isInstance(err)) throw new HttpError(422, err.message);
      throw err;
    }
    // Decoding shows people clear data: log who asked, never what.
    logger?.info({ user: identity.id, op, payloads: payloads.length, namespace: c.req.header('x-namespace') }, 'codec request');
    return answer(c, 200, { payloads: out.map(toJson) });
  }

  const routes = new Hono<CodecEnv>().basePath(base || '/');
  routes.use(OP_ROUTE, uiOnly, uiCors);
  routes.post(OP_ROUTE, signedIn, json, withinLimit, serve);
  routes.all(OP_ROUTE, (c) => {
    throw new HttpError(405, `${c.req.method} is not allowed; use POST`);
  });
  // An unknown route is 404 to everyone, a preflight too; the UI may still read why.
  const corsUnlessPreflight: MiddlewareHandler<CodecEnv> = (c, next) => (c.req.method === 'OPTIONS' ? next() : uiCors(c, next));
  routes.all('*', corsUnlessPreflight, () => {
    throw new HttpError(404, `no such codec route; use POST ${base}/encode or ${base}/decode`);
  });
  routes.onError((err, c) => refuse(err, c, logger));
  return routes;
}

/**
 * A request handler for Temporal's remote codec protocol on a server of your own (`codecRoutes`
 * says what it answers). The Temporal UI calls it to show decrypted payloads (and to encrypt what
 * people send from it); the Temporal CLI calls it with `--codec-endpoint`. Mount it on a server
 * that already knows who people are and pass that check as `authenticate`: a decode hands out
 * clear payloads, so no request is answered without a person, and only to the members of
 * `decodeGroups`; an encode only to those of `encodeGroups`. Every use and every refusal is logged
 * with who and which route.
 */
export function createCodecHandler(options: CodecEndpointOptions): CodecRequestHandler {
  const base = (options.basePath ?? '/codec').replace(/\/+$/, '');
  const app = new Hono<CodecEnv>();
  app.route('/', codecRoutes({ ...options, authenticate: (c) => options.authenticate(c.env.incoming) }));
  app.all('*', () => {
    throw new HttpError(404, `no such codec route; use POST ${base}/encode or ${base}/decode`);
  });
  app.onError((err, c) => refuse(err, c, options.logger));
  // Routing needs a URL; a request without a Host header (HTTP/1.0) still gets one.
  const listener = getRequestListener(app.fetch, { hostname: 'codec.invalid' });
  return async (req, res) => {
    await listener(req, res);
  };
}
