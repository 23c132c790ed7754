import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Payload, PayloadCodec } from '@temporalio/common';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Identity } from '../approvals/identity';
import { HttpError } from '../approvals/http-error';
import { readBodyWithin } from '../approvals/read-body';
import { normalizeIdentity } from '../governance/identity';
import { PayloadCodecError } from './errors';
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

/** Who may decode when the deployment does not say: the people who operate runs or decide approvals. */
export const DEFAULT_CODEC_DECODE_GROUPS: readonly string[] = ['operators', 'approvers'];
/** Who may encode when the deployment does not say: operators only (an encode is an encryption oracle). */
export const DEFAULT_CODEC_ENCODE_GROUPS: readonly string[] = ['operators'];

/** Handles one request under `basePath`; answers every request itself and never rejects. */
export type CodecRequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

const DEFAULT_MAX_BODY = 8 * 1024 * 1024;
// What the Temporal UI sends: JSON, the namespace, and (with "pass the user access token") its tokens.
const ALLOWED_HEADERS = 'content-type,x-namespace,authorization,authorization-extras';

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

/** Why `identity` may not `op`, or null when one of its groups is in `allowed` (normalised names). */
function refusal(identity: Identity, op: 'encode' | 'decode', allowed: readonly string[]): string | null {
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

/**
 * A request handler for Temporal's remote codec protocol: `POST <basePath>/encode` and
 * `POST <basePath>/decode` take and answer `{"payloads": [{"metadata": {k: base64}, "data": base64}]}`.
 * The Temporal UI calls it to show decrypted payloads (and to encrypt what people send from it);
 * the Temporal CLI calls it with `--codec-endpoint`. Mount it on a server that already knows who
 * people are (the web inbox does) and pass that check as `authenticate`: a decode hands out clear
 * payloads, so no request is answered without a person, and only to the members of `decodeGroups`;
 * an encode only to those of `encodeGroups`. Every use and every refusal is logged with who and
 * which route.
 */
export function createCodecHandler(options: CodecEndpointOptions): CodecRequestHandler {
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

  function corsHeaders(origin: string | undefined): Record<string, string> {
    if (origin === undefined || origin !== uiOrigin) return {};
    return { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', vary: 'Origin' };
  }

  function answer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers });
    res.end(JSON.stringify(body));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const origin = req.headers.origin;
    const cors = corsHeaders(origin);
    const pathname = new URL(req.url ?? '/', 'http://codec.invalid').pathname;
    const op = pathname === `${base}/encode` ? 'encode' : pathname === `${base}/decode` ? 'decode' : null;
    if (!op) throw new HttpError(404, `no such codec route; use POST ${base}/encode or ${base}/decode`);

    // Browsers ask before a cross-origin JSON POST; only the configured UI gets a yes.
    if (req.method === 'OPTIONS') {
      if (!cors['access-control-allow-origin']) throw new HttpError(403, `origin ${origin ?? '(none)'} may not call the codec endpoint`);
      res.writeHead(204, { ...cors, 'access-control-allow-methods': 'POST', 'access-control-allow-headers': ALLOWED_HEADERS, 'access-control-max-age': '600' });
      res.end();
      return;
    }
    if (req.method !== 'POST') throw new HttpError(405, `${req.method ?? 'this method'} is not allowed; use POST`);
    if (origin !== undefined && !cors['access-control-allow-origin']) throw new HttpError(403, `origin ${origin} may not call the codec endpoint`);

    const identity = await options.authenticate(req);
    if (!identity) {
      logger?.info({ op, refused: 'not signed in', namespace: req.headers['x-namespace'] }, 'codec request refused');
      throw new HttpError(401, 'sign in first: this request carries no valid inbox session or bearer token');
    }
    // Before the body is read: a person who may not use the route costs no parsing.
    const refused = refusal(identity, op, allowed[op]);
    if (refused) {
      logger?.warn({ user: identity.id, op, refused, namespace: req.headers['x-namespace'] }, 'codec request refused');
      throw new HttpError(403, refused, { requiredGroups: [...allowed[op]] });
    }
    // A JSON content type also makes browsers preflight, so another site cannot post here unasked.
    if (!(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json')) throw new HttpError(415, 'send the payloads as application/json');

    const raw = await readBodyWithin(req, max);
    if (!raw) throw new HttpError(413, `the request body is over ${max} bytes`);
    let doc: unknown;
    try {
      doc = JSON.parse(raw.toString('utf8'));
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
    logger?.info({ user: identity.id, op, payloads: payloads.length, namespace: req.headers['x-namespace'] }, 'codec request');
    answer(res, 200, { payloads: out.map(toJson) }, cors);
  }

  return async (req, res) => {
    try {
      await handle(req, res);
    } catch (err) {
      if (res.headersSent) {
        res.end();
        return;
      }
      const cors = corsHeaders(req.headers.origin);
      if (HttpError.isInstance(err)) {
        // After a refused body the rest of the upload is not worth reading.
        const close: Record<string, string> = err.status === 413 ? { connection: 'close' } : {};
        const auth: Record<string, string> = err.status === 401 ? { 'www-authenticate': 'Bearer realm="warden"' } : {};
        answer(res, err.status, { error: err.message, ...err.fields }, { ...cors, ...close, ...auth });
        return;
      }
      logger?.error({ err, url: req.url }, 'codec request failed');
      answer(res, 500, { error: 'the codec endpoint could not complete this request; the error is in its log' }, cors);
    }
  };
}
