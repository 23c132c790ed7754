import path from 'node:path';
import pino from 'pino';
import { DecisionSigner, createSlackApp, loadSlackIdentities, type SlackApp } from '../src/approvals';
import { REDACTED, generateSigningKey, parseKeyring } from '../src/governance';
import { effects } from './fixtures/test-agents';
import { slackSignature, startFakeSlack, type SlackCall } from './fixtures/approvals/fake-slack';
import { createTestBed, financeApprovalPolicy, eventually, type TestBed } from './helpers';

const SIGNING_SECRET = 'test-signing-secret-0123456789abcdef';
const BOT_TOKEN = 'xoxb-test-token';
const slackKey = { keyId: 'test-slack', ...generateSigningKey() };

const policy = financeApprovalPolicy({ notify: { slack: { channel: '#payments' } } });

let bed: TestBed;
let fake: Awaited<ReturnType<typeof startFakeSlack>>;
let slack: SlackApp;

beforeAll(async () => {
  fake = await startFakeSlack();
  // The Slack app authenticates people itself (its identity map), so its key may assert anyone.
  const keyring = parseKeyring({ [slackKey.keyId]: { publicKey: slackKey.publicKey, channel: 'slack', people: '*' } }, 'slack test keyring');
  bed = await createTestBed({ keyring, slack: { botToken: BOT_TOKEN, slackApiUrl: fake.url } });
  slack = await createSlackApp({
    signingSecret: SIGNING_SECRET,
    botToken: BOT_TOKEN,
    client: bed.client,
    signer: new DecisionSigner(slackKey),
    identities: loadSlackIdentities(path.join(__dirname, 'fixtures/approvals/slack-identities.json')),
    slackApiUrl: fake.url,
    logger: pino({ level: 'silent' }),
  });
});
afterAll(async () => {
  await slack?.close();
  await bed?.close();
  await fake?.close();
});
beforeEach(() => effects.reset());

/** Cancels a run and waits for it to end, so no run is left waiting without a worker for later tests. */
async function cancelRun(runId: string) {
  await bed.client.cancel(runId);
  await expect(bed.client.result(runId)).resolves.toMatchObject({ status: 'cancelled' });
}

/** Decisions the run took in: signals and accepted Updates (an Update its validator refused leaves no event). */
const decisionsSent = async (runId: string) =>
  ((await bed.client.handle(runId).fetchHistory()).events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes || e.workflowExecutionUpdateAcceptedEventAttributes).length;

interface Posted {
  runId: string;
  approvalId: string;
  channel: string;
  ts: string;
  message: SlackCall['args'];
}

/** A run by carol whose transfer waits for finance, announced in the policy's Slack channel. */
async function announcedRun(): Promise<Posted> {
  const runId = await bed.client.startRun({
    agent: 'test-agent',
    goal: 'pay the supplier',
    requester: 'carol',
    policy,
    script: [{ toolCalls: [{ name: 'transfer', args: { amount: 250, to: 'acct-9', pin: '4321' } }] }, { text: 'done' }],
  });
  const approval = await eventually(async () => (await bed.client.pendingApprovals(runId))[0], 20_000, 'a pending approval');
  // The run itself posts the notification (the worker's notifyApproval activity) and audits where.
  const notified = await eventually(
    async () => (await bed.client.auditTrail(runId)).find((e) => e.type === 'approval_notified' && e.data.approvalId === approval.approvalId),
    20_000,
    'the Slack notification',
  );
  const ref = { channel: String(notified.data.channel), ts: String(notified.data.ts) };
  const posted = fake.calls.filter((c) => c.method === 'chat.postMessage' && JSON.stringify(c.args.blocks).includes(approval.approvalId)).at(-1);
  if (!posted) throw new Error('nothing was posted');
  return { runId, approvalId: approval.approvalId, channel: ref.channel, ts: ref.ts, message: posted.args };
}

/** The interaction payload Slack sends when someone clicks a button of the posted message. */
function clickPayload(posted: Posted, slackUser: string, action: 'warden_approve' | 'warden_reject'): string {
  const blocks = posted.message.blocks as { block_id?: string; elements?: { action_id: string; value: string }[] }[];
  const button = blocks.find((b) => b.block_id === 'warden_actions')?.elements?.find((e) => e.action_id === action);
  const payload = {
    type: 'block_actions',
    user: { id: slackUser, username: slackUser.toLowerCase(), name: slackUser.toLowerCase(), team_id: 'T0001' },
    api_app_id: 'A0001',
    token: 'legacy-token',
    container: { type: 'message', message_ts: posted.ts, channel_id: posted.channel, is_ephemeral: false },
    trigger_id: '1.2.3',
    team: { id: 'T0001', domain: 'example' },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: posted.channel, name: 'payments' },
    message: { type: 'message', user: 'UBOT0001', bot_id: 'BBOT0001', ts: posted.ts, text: posted.message.text, blocks },
    response_url: `${fake.url}response`,
    actions: [{ type: 'button', action_id: action, block_id: 'warden_actions', text: { type: 'plain_text', text: 'x' }, value: button?.value, action_ts: '1700000002.000001' }],
  };
  return `payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

function send(body: string, options: { timestamp?: number; secret?: string; signature?: string } = {}) {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  return fetch(slack.url ?? '', {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': options.signature ?? slackSignature(options.secret ?? SIGNING_SECRET, timestamp, body),
    },
    body,
  });
}

const updatesOf = (ts: string) => fake.calls.filter((c) => c.method === 'chat.update' && c.args.ts === ts);
const statusText = (call: SlackCall | undefined) =>
  ((call?.args.blocks ?? []) as { block_id?: string; elements?: { text: string }[] }[]).find((b) => b.block_id === 'warden_status')?.elements?.[0]?.text ?? '';
const hasButtons = (call: SlackCall | undefined) => ((call?.args.blocks ?? []) as { block_id?: string }[]).some((b) => b.block_id === 'warden_actions');

describe('Slack approvals', () => {
  test('the notification posts tool, redacted arguments, rule, requester, deadline and two buttons to the policy channel', async () => {
    const posted = await announcedRun();
    expect(posted.channel).toBe('C0PAYMENTS');
    expect(posted.ts).toMatch(/^\d+\.\d+$/);
    const call = fake.calls.filter((c) => c.method === 'chat.postMessage').at(-1);
    expect(call?.token).toBe(BOT_TOKEN);
    expect(call?.args.channel).toBe('#payments');
    const rendered = JSON.stringify(call?.args.blocks);
    for (const part of ['transfer', 'test-agent', 'transfers-need-finance', 'money leaves the company', 'carol', 'group:finance', REDACTED, 'acct-9', '<!date^']) {
      expect(rendered).toContain(part);
    }
    expect(rendered).not.toContain('4321');
    const buttons = (call?.args.blocks as { block_id?: string; elements?: { action_id: string; value: string }[] }[]).find((b) => b.block_id === 'warden_actions')?.elements ?? [];
    expect(buttons.map((b) => b.action_id)).toEqual(['warden_approve', 'warden_reject']);
    for (const b of buttons) expect(JSON.parse(b.value)).toEqual({ runId: posted.runId, approvalId: posted.approvalId });
    await cancelRun(posted.runId);
  });

  test('a correctly signed Approve click continues the run to completion and updates the message', async () => {
    const posted = await announcedRun();
    const res = await send(clickPayload(posted, 'UALICE01', 'warden_approve'));
    expect(res.status).toBe(200);
    const update = await eventually(async () => updatesOf(posted.ts)[0], 10_000, 'chat.update');
    expect(update.args.channel).toBe(posted.channel);
    expect(statusText(update)).toContain('Approved by <@UALICE01> (alice)');
    expect(hasButtons(update)).toBe(false);

    await expect(bed.client.result(posted.runId)).resolves.toMatchObject({ status: 'completed', toolCalls: 1 });
    expect(effects.count('transfer')).toBe(1);
    const accepted = (await bed.store.readAudit(posted.runId)).find((e) => e.type === 'approval_accepted');
    expect(accepted?.data).toMatchObject({ approvalId: posted.approvalId, approver: 'alice', groups: ['finance'], channel: 'slack', signed: true });
  });

  test('a replay of the same signed request after the decision sends the run nothing; the message says it is decided', async () => {
    const posted = await announcedRun();
    const click = clickPayload(posted, 'UALICE01', 'warden_approve');
    const timestamp = Math.floor(Date.now() / 1000);
    expect((await send(click, { timestamp })).status).toBe(200);
    await eventually(async () => updatesOf(posted.ts)[0], 10_000, 'the first chat.update');
    await bed.client.result(posted.runId);
    expect(await decisionsSent(posted.runId)).toBe(1);

    expect((await send(click, { timestamp })).status).toBe(200);
    const second = await eventually(async () => updatesOf(posted.ts)[1], 10_000, 'the second chat.update');
    expect(statusText(second)).toContain(`Approval ${posted.approvalId} was already approved by alice. Nothing was sent.`);
    expect(hasButtons(second)).toBe(false);
    expect(await decisionsSent(posted.runId)).toBe(1);
    expect(effects.count('transfer')).toBe(1);
  });

  test('a badly signed request is refused with 401 and sends the run nothing', async () => {
    const posted = await announcedRun();
    const click = clickPayload(posted, 'UALICE01', 'warden_approve');
    const timestamp = Math.floor(Date.now() / 1000);
    expect((await send(click, { secret: 'not-the-secret' })).status).toBe(401);
    // A valid signature of another body: the raw body is what is signed.
    expect((await send(click, { timestamp, signature: slackSignature(SIGNING_SECRET, timestamp, `${click}&x=1`) })).status).toBe(401);
    expect((await send(click, { signature: 'v0=' })).status).toBe(401);
    await new Promise((r) => setTimeout(r, 300));
    expect(await decisionsSent(posted.runId)).toBe(0);
    expect(updatesOf(posted.ts)).toHaveLength(0);
    expect(await bed.client.pendingApprovals(posted.runId)).toHaveLength(1);
    await cancelRun(posted.runId);
  });

  test('a request signed more than five minutes ago (or ahead) is refused and sends the run nothing', async () => {
    const posted = await announcedRun();
    const click = clickPayload(posted, 'UALICE01', 'warden_approve');
    const now = Math.floor(Date.now() / 1000);
    expect((await send(click, { timestamp: now - 6 * 60 })).status).toBe(401);
    expect((await send(click, { timestamp: now + 6 * 60 })).status).toBe(401);
    await new Promise((r) => setTimeout(r, 300));
    expect(await decisionsSent(posted.runId)).toBe(0);
    expect(updatesOf(posted.ts)).toHaveLength(0);
    await cancelRun(posted.runId);
  });

  test('a Slack user with no Warden identity is told so privately and nothing is sent', async () => {
    const posted = await announcedRun();
    expect((await send(clickPayload(posted, 'UNOBODY1', 'warden_approve'))).status).toBe(200);
    const ephemeral = await eventually(async () => fake.calls.find((c) => c.method === 'chat.postEphemeral' && c.args.user === 'UNOBODY1'), 10_000, 'an ephemeral message');
    expect(ephemeral.args.channel).toBe(posted.channel);
    expect(ephemeral.args.text).toContain('not mapped to a Warden identity');
    expect(await decisionsSent(posted.runId)).toBe(0);
    expect(updatesOf(posted.ts)).toHaveLength(0);
    await cancelRun(posted.runId);
  });

  test("the requester's own click is refused by the run; the message shows the reason and keeps the buttons", async () => {
    const posted = await announcedRun();
    expect((await send(clickPayload(posted, 'UCAROL01', 'warden_approve'))).status).toBe(200);
    const update = await eventually(async () => updatesOf(posted.ts)[0], 10_000, 'chat.update');
    expect(statusText(update)).toContain('<@UCAROL01> (carol) tried to approve: refused (four-eyes: carol requested this run and cannot decide its approvals)');
    expect(hasButtons(update)).toBe(true);
    expect(await bed.client.pendingApprovals(posted.runId)).toHaveLength(1);
    expect(effects.count('transfer')).toBe(0);
    await cancelRun(posted.runId);
  });
});
