import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listen } from '../listen';
import { readBodyWithin, refuseTooLarge } from '../read-body';
import { format } from 'node:util';
import { App, HTTPReceiver, LogLevel, type BlockAction, type ButtonAction, type Logger as BoltLogger } from '@slack/bolt';
import pino, { type Logger } from 'pino';
import type { WardenClient } from '../../client';
import type { RunStore } from '../../store/run-store';
import { decideApproval, type DecisionResult } from '../decide';
import type { Identity } from '../identity';
import type { DecisionSigner } from '../signing-keys';
import { APPROVE_ACTION, REJECT_ACTION, decodeButtonValue, escapeMrkdwn, withStatus } from './blocks';
import type { SlackIdentityMap } from './identities';
import { SlackConfigError } from './slack-config-error';

export interface SlackAppOptions {
  /** The app's signing secret: every request's `X-Slack-Signature` is checked with it. */
  signingSecret: string;
  botToken: string;
  client: WardenClient;
  /** Signs each decision as channel `slack`; workers must trust its public key. */
  signer: DecisionSigner;
  /** Slack user id → Warden identity (`loadSlackIdentities`). Unmapped people decide nothing. */
  identities: SlackIdentityMap;
  store?: RunStore;
  /** The Web API base (`https://slack.com/api/` by default); tests point it at a local stand-in. */
  slackApiUrl?: string;
  /** HTTP mode: default 127.0.0.1; a proxy forwards Slack's requests to it. */
  host?: string;
  /** HTTP mode: default 0, any free port (see `url`). */
  port?: number;
  /** HTTP mode: the Request URL path configured in Slack. Default `/slack/events`. */
  path?: string;
  /** Socket Mode: the app connects out to Slack (no inbound HTTP); needs `appToken` (`xapp-…`). */
  socketMode?: boolean;
  appToken?: string;
  /** How long a click waits for the run to confirm the decision. Default 3 s. */
  confirmWithinMs?: number;
  logger?: Logger;
}

export interface SlackApp {
  app: App;
  /** HTTP mode: the Request URL to configure in Slack (behind your proxy). Null in Socket Mode. */
  url: string | null;
  close(): Promise<void>;
}

/** Slack's replay window: a request signed more than five minutes away from now is refused. */
const MAX_SKEW_SEC = 5 * 60;
const MAX_BODY = 1024 * 1024;

function boltLogger(log: Logger): BoltLogger {
  let level = LogLevel.INFO;
  const line = (msg: unknown[]) => format(...msg);
  return {
    debug: (...msg: unknown[]) => log.debug(line(msg)),
    info: (...msg: unknown[]) => log.info(line(msg)),
    warn: (...msg: unknown[]) => log.warn(line(msg)),
    error: (...msg: unknown[]) => log.error(line(msg)),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}

/** The status line a click leaves on the message, and whether the buttons stay for the next person. */
function statusOf(result: DecisionResult, slackUser: string, identity: Identity, kind: 'approve' | 'reject'): { text: string; keepButtons: boolean } {
  const who = `<@${slackUser}> (${escapeMrkdwn(identity.id)})`;
  const at = `<!date^${Math.floor(Date.now() / 1000)}^{date_short_pretty} {time}|${new Date().toISOString()}>`;
  switch (result.status) {
    case 'accepted':
      if (kind === 'reject') return { text: `:no_entry: Rejected by ${who} ${at}. The call will not run.`, keepButtons: false };
      if (result.decided) return { text: `:white_check_mark: Approved by ${who} ${at}. The call runs.`, keepButtons: false };
      return { text: `:ballot_box_with_check: ${who} approved ${at}; more approvals are needed.`, keepButtons: true };
    case 'refused':
      return { text: `:warning: ${who} tried to ${kind}: refused (${escapeMrkdwn(result.reason)}). The approval still waits.`, keepButtons: true };
    case 'not_pending':
      return { text: `:information_source: ${escapeMrkdwn(result.message)}`, keepButtons: false };
    case 'unconfirmed':
      return { text: `:hourglass: ${who}'s decision was sent; the run has not confirmed it yet.`, keepButtons: true };
    case 'unavailable':
      return { text: `:x: ${escapeMrkdwn(result.message)}`, keepButtons: true };
  }
}

function registerApprovalActions(app: App, options: SlackAppOptions, log: Logger): void {
  app.action<BlockAction<ButtonAction>>({ type: 'block_actions', action_id: new RegExp(`^(${APPROVE_ACTION}|${REJECT_ACTION})$`) }, async ({ ack, body, action, client: slack }) => {
    // Slack wants the ack within 3 s; the decision (signal + read-back) takes longer.
    await ack();
    const kind = action.action_id === APPROVE_ACTION ? 'approve' : 'reject';
    const target = decodeButtonValue(action.value);
    const channel = body.channel?.id ?? (body.container.channel_id as string | undefined);
    const ts = body.message?.ts ?? (body.container.message_ts as string | undefined);
    const slackUser = body.user.id;
    if (!target || !channel || !ts || !/^[A-Z0-9]+$/.test(slackUser)) {
      log.warn({ value: action.value, channel, ts }, 'Slack click without a usable approval reference; ignored');
      return;
    }
    const identity = options.identities.get(slackUser);
    if (!identity) {
      log.info({ slackUser, ...target }, 'Slack click by an unmapped user; nothing sent');
      await slack.chat.postEphemeral({
        channel,
        user: slackUser,
        text: `You are not mapped to a Warden identity, so your ${kind} was not sent. Ask an administrator to add your Slack id ${slackUser} to Warden's Slack identities.`,
      });
      return;
    }
    let result: DecisionResult;
    try {
      result = await decideApproval(
        { client: options.client, signer: options.signer, store: options.store, confirmWithinMs: options.confirmWithinMs },
        { ...target, decision: kind, identity, channel: 'slack' },
      );
    } catch (err) {
      // The person must not be left guessing: say it failed, and whether anything was sent is on the run page.
      log.error({ err, ...target, approver: identity.id }, 'Slack decision failed');
      await slack.chat.postEphemeral({ channel, user: slackUser, text: `Warden could not send your ${kind} for approval ${target.approvalId}; check the run before trying again.` });
      return;
    }
    log.info({ ...target, decision: kind, approver: identity.id, slackUser, status: result.status }, 'Slack decision');
    const status = statusOf(result, slackUser, identity, kind);
    const blocks = withStatus(body.message?.blocks, status.text, status.keepButtons);
    await slack.chat.update({ channel, ts, text: `${body.message?.text ?? 'Approval'} — ${status.text}`, blocks });
  });
  app.error(async (err) => {
    log.error({ err }, 'Slack handler failed');
  });
}

/** Bolt checks the signature on the raw body but only refuses timestamps too far in the past. */
function outsideWindow(req: IncomingMessage): boolean {
  const header = req.headers['x-slack-request-timestamp'];
  if (typeof header !== 'string') return false; // Bolt refuses it: no timestamp, no valid signature.
  const ts = Number(header);
  return !Number.isFinite(ts) || Math.abs(Date.now() / 1000 - ts) > MAX_SKEW_SEC;
}

/**
 * The Slack app: Approve/Reject buttons on approval messages (posted by `notifyApprovalSlack`)
 * become signed decisions for the run, and the message is updated with the outcome. HTTP mode
 * (default) verifies Slack's v0 signature on the raw body with Bolt's HTTPReceiver behind a
 * timestamp check both ways; Socket Mode needs no inbound port.
 */
export async function createSlackApp(options: SlackAppOptions): Promise<SlackApp> {
  const log = options.logger ?? pino({ name: 'warden-slack', level: 'info' });
  const logger = boltLogger(log);
  const base = options.slackApiUrl ? (options.slackApiUrl.endsWith('/') ? options.slackApiUrl : `${options.slackApiUrl}/`) : undefined;
  const clientOptions = { ...(base ? { slackApiUrl: base } : {}), retryConfig: { retries: 2, maxRetryTime: 10_000 } };

  if (options.socketMode) {
    if (!options.appToken) throw new SlackConfigError('Socket Mode needs an app-level token (appToken, xapp-…)');
    const app = new App({ token: options.botToken, appToken: options.appToken, socketMode: true, logger, clientOptions, deferInitialization: true });
    registerApprovalActions(app, options, log);
    await app.init();
    await app.start();
    return { app, url: null, close: () => app.stop().then(() => undefined) };
  }

  const path = options.path ?? '/slack/events';
  const receiver = new HTTPReceiver({ signingSecret: options.signingSecret, endpoints: [path], logger, processBeforeResponse: false });
  const app = new App({ token: options.botToken, receiver, logger, clientOptions, deferInitialization: true });
  registerApprovalActions(app, options, log);
  // auth.test now, so a wrong token fails here rather than at the first click.
  await app.init();

  const refuse = (res: ServerResponse, status: number) => {
    res.writeHead(status).end();
  };
  const handOver = (req: IncomingMessage, res: ServerResponse, rawBody: Buffer) => {
    // Bolt buffers the body itself, without a limit, unless it finds it already read: it takes a
    // Buffer in `rawBody` as the request's bytes and verifies the signature over exactly those.
    Object.assign(req, { rawBody });
    try {
      receiver.requestListener(req, res);
    } catch {
      // The receiver throws for paths it does not serve.
      refuse(res, 404);
    }
  };
  const server = createServer((req, res) => {
    if (outsideWindow(req)) {
      log.warn({ timestamp: req.headers['x-slack-request-timestamp'] }, 'Slack request outside the 5-minute window; refused');
      return refuse(res, 401);
    }
    readBodyWithin(req, MAX_BODY).then(
      (rawBody) => {
        if (rawBody) return handOver(req, res, rawBody);
        log.warn({ limit: MAX_BODY }, 'Slack request body over the limit; refused before its signature was checked');
        refuseTooLarge(res);
      },
      (err: unknown) => {
        log.info({ err }, 'Slack request body not received');
        if (!res.headersSent) refuse(res, 400);
      },
    );
  });
  const url = `${await listen(server, options.host, options.port)}${path}`;
  log.info({ url }, 'Slack app listening');
  return {
    app,
    url,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
