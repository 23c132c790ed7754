import type { types } from '@slack/bolt';
import { z } from 'zod';
import type { PendingApproval } from '../../workflows/run-types';

type KnownBlock = types.KnownBlock;

export const APPROVE_ACTION = 'warden_approve';
export const REJECT_ACTION = 'warden_reject';
/** Block ids the app owns in its messages: a decision replaces the buttons and the status line. */
export const ACTIONS_BLOCK = 'warden_actions';
export const STATUS_BLOCK = 'warden_status';

/** What a button carries back: which approval of which run. */
export interface ButtonValue {
  runId: string;
  approvalId: string;
}

/** The approval fields a Slack message shows; a `PendingApproval` has them all. */
export type ApprovalForSlack = Pick<PendingApproval, 'approvalId' | 'runId' | 'tool' | 'args' | 'ruleId' | 'reason' | 'requester' | 'approvers' | 'quorum' | 'expiresAt' | 'delegatedBy'>;

/** Slack's control characters: model-written arguments must not turn into mentions or links. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function encodeButtonValue(value: ButtonValue): string {
  return JSON.stringify({ runId: value.runId, approvalId: value.approvalId });
}

const buttonValueSchema = z.object({ runId: z.string().min(1), approvalId: z.string().min(1) });

/** The approval a clicked button names, or null for a value that is not ours (the click is then ignored). */
export function decodeButtonValue(value: string | undefined): ButtonValue | null {
  if (!value) return null;
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    return null;
  }
  const parsed = buttonValueSchema.safeParse(doc);
  return parsed.success ? { runId: parsed.data.runId, approvalId: parsed.data.approvalId } : null;
}

/** A time Slack shows in each reader's own time zone, with the ISO time as fallback. */
function slackDate(iso: string): string {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? `<!date^${Math.floor(t / 1000)}^{date_short_pretty} {time}|${iso}>` : escapeMrkdwn(iso);
}

/** The approval request: what, why, who asked, until when, and the two buttons. */
export function approvalMessage(agent: string, approval: ApprovalForSlack): { text: string; blocks: KnownBlock[] } {
  const value = encodeButtonValue({ runId: approval.runId, approvalId: approval.approvalId });
  const args = clip(JSON.stringify(approval.args, null, 2), 2500);
  const text = `Approval needed: ${approval.tool} (agent ${agent}), rule ${approval.ruleId}`;
  const blocks: KnownBlock[] = [
    {
      type: 'section',
      block_id: 'warden_summary',
      text: { type: 'mrkdwn', text: `:raised_hand: *Approval needed:* \`${escapeMrkdwn(approval.tool)}\` for agent *${escapeMrkdwn(agent)}*\n${escapeMrkdwn(clip(approval.reason, 500))}` },
      fields: [
        { type: 'mrkdwn', text: `*Rule*\n\`${escapeMrkdwn(approval.ruleId)}\`` },
        { type: 'mrkdwn', text: `*Requested by*\n${escapeMrkdwn(approval.requester)}` },
        { type: 'mrkdwn', text: `*Approvers*\n${escapeMrkdwn(approval.approvers.join(', '))}${approval.quorum > 1 ? ` (${approval.quorum} needed)` : ''}` },
        { type: 'mrkdwn', text: `*Deadline*\n${slackDate(approval.expiresAt)}` },
      ],
    },
    { type: 'section', block_id: 'warden_args', text: { type: 'mrkdwn', text: `*Arguments*\n\`\`\`${escapeMrkdwn(args)}\`\`\`` } },
    {
      type: 'context',
      block_id: 'warden_ids',
      elements: [
        {
          type: 'mrkdwn',
          text:
            `Run \`${escapeMrkdwn(approval.runId)}\` · approval \`${escapeMrkdwn(approval.approvalId)}\`` +
            (approval.delegatedBy ? ` · delegated by *${escapeMrkdwn(approval.delegatedBy.agent)}* run \`${escapeMrkdwn(approval.delegatedBy.runId)}\`` : ''),
        },
      ],
    },
    {
      type: 'actions',
      block_id: ACTIONS_BLOCK,
      elements: [
        { type: 'button', action_id: APPROVE_ACTION, style: 'primary', text: { type: 'plain_text', text: 'Approve' }, value },
        { type: 'button', action_id: REJECT_ACTION, style: 'danger', text: { type: 'plain_text', text: 'Reject' }, value },
      ],
    },
  ];
  return { text, blocks };
}

/**
 * The message after a click: the original blocks, a status line, and the buttons only while the
 * approval still waits (a refusal or a partial quorum leaves them for the next person).
 */
export function withStatus(original: unknown, status: string, keepButtons: boolean): KnownBlock[] {
  const blocks = (Array.isArray(original) ? original : []) as (KnownBlock & { block_id?: string })[];
  const kept = blocks.filter((b) => b.block_id !== STATUS_BLOCK && b.block_id !== ACTIONS_BLOCK);
  const actions = blocks.find((b) => b.block_id === ACTIONS_BLOCK);
  const statusBlock: KnownBlock = { type: 'context', block_id: STATUS_BLOCK, elements: [{ type: 'mrkdwn', text: clip(status, 2900) }] };
  return [...kept, statusBlock, ...(keepButtons && actions ? [actions] : [])];
}
