import { ApplicationFailure } from '@temporalio/common';
import { webApi } from '@slack/bolt';
import { errorMarker, WardenError } from '../../errors';
import { approvalMessage, type ApprovalForSlack } from './blocks';

// The Web API client as Bolt re-exports it: one copy of @slack/web-api, the one Bolt uses.
type WebClient = webApi.WebClient;

/** What the workflow passes when a rule with `approval.notify.slack` asks for a decision. Plain JSON. */
export interface SlackApprovalNotice {
  /** `approval.notify.slack.channel` of the rule: a channel id (`C0123…`) or name (`#payments`). */
  channel: string;
  agent: string;
  /** The approval as the `pendingApprovals` query shows it (arguments already redacted). */
  approval: ApprovalForSlack;
}

/** Where the message went: keep it to update the message when the approval is decided elsewhere. */
export interface SlackMessageRef {
  channel: string;
  ts: string;
}

export interface SlackNotifyOptions {
  botToken: string;
  /** The Web API base (`https://slack.com/api/` by default); tests point it at a local stand-in. */
  slackApiUrl?: string;
  /** A ready client instead of `botToken` + `slackApiUrl`. */
  client?: WebClient;
}

/**
 * Slack answered in a way Warden cannot use (a posted message without its channel or ts). Not a
 * `SlackNotifyError`: Temporal retries the activity.
 */
export class SlackReplyError extends WardenError {
  static override readonly marker = errorMarker('SlackReplyError');
  override name = 'SlackReplyError';
}

/** Slack errors that a retry cannot fix: the activity fails at once instead of retrying. */
const PERMANENT = new Set(['channel_not_found', 'not_in_channel', 'is_archived', 'invalid_auth', 'not_authed', 'account_inactive', 'token_revoked', 'missing_scope', 'invalid_blocks', 'msg_too_long']);

export function slackWebClient(options: { botToken: string; slackApiUrl?: string }): WebClient {
  const base = options.slackApiUrl ? (options.slackApiUrl.endsWith('/') ? options.slackApiUrl : `${options.slackApiUrl}/`) : undefined;
  // Temporal retries the activity; the client's own half-hour retry schedule would only hide failures.
  return new webApi.WebClient(options.botToken, { ...(base ? { slackApiUrl: base } : {}), retryConfig: { retries: 0 } });
}

/**
 * Posts a plain notice (a quota threshold reached) to a channel. Best effort for the caller: it
 * throws what Slack answered, and the quota activity logs it without failing the booking.
 */
export async function notifySlackText(notice: { channel: string; text: string }, options: SlackNotifyOptions): Promise<void> {
  const client = options.client ?? slackWebClient(options);
  await client.chat.postMessage({ channel: notice.channel, text: notice.text, unfurl_links: false, unfurl_media: false });
}

/**
 * Posts an approval request with Approve/Reject buttons to the rule's Slack channel and returns
 * the message's channel and ts. Runs as an activity (see `slackNotifyActivity`); a retried
 * attempt may post a second message, whose buttons act on the same approval.
 */
export async function notifyApprovalSlack(notice: SlackApprovalNotice, options: SlackNotifyOptions): Promise<SlackMessageRef> {
  const client = options.client ?? slackWebClient(options);
  const { text, blocks } = approvalMessage(notice.agent, notice.approval);
  try {
    const posted = await client.chat.postMessage({
      channel: notice.channel,
      text,
      blocks,
      unfurl_links: false,
      unfurl_media: false,
      metadata: { event_type: 'warden_approval_requested', event_payload: { runId: notice.approval.runId, approvalId: notice.approval.approvalId } },
    });
    if (!posted.ts || !posted.channel) throw new SlackReplyError(`chat.postMessage to ${notice.channel} answered without channel or ts`);
    return { channel: posted.channel, ts: posted.ts };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === webApi.ErrorCode.PlatformError) {
      const slackError = (err as webApi.WebAPIPlatformError).data.error;
      if (PERMANENT.has(slackError)) {
        throw ApplicationFailure.nonRetryable(`Slack refused the approval message for ${notice.channel}: ${slackError}`, 'SlackNotifyError');
      }
    }
    throw err;
  }
}

/**
 * The activity a worker registers (as `notifyApproval`): binds the bot token, takes the notice.
 * `activities: { notifyApproval: slackNotifyActivity({ botToken: process.env.SLACK_BOT_TOKEN }) }`.
 */
export function slackNotifyActivity(options: SlackNotifyOptions): (notice: SlackApprovalNotice) => Promise<SlackMessageRef> {
  const client = options.client ?? slackWebClient(options);
  return (notice) => notifyApprovalSlack(notice, { ...options, client });
}
