/**
 * The web inbox and delegation, in a real browser: an approval a delegate waits for names the run
 * that delegated it, approving it there finishes the tree, and the run pages link parent and child.
 */
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './browser';
import pino from 'pino';
import { DecisionSigner, createInboxServer, loadUsersFile, localUsersAuthenticator, type InboxServer } from '../src/approvals';
import { generateSigningKey, parseKeyring, parsePolicy } from '../src/governance';
import { delegatingAgent, effects } from './fixtures/test-agents';
import { createTestBed, eventually, financeApprovalPolicy, type TestBed } from './helpers';

const webKey = { keyId: 'test-web', ...generateSigningKey() };

let bed: TestBed;
let inbox: InboxServer;
let browser: Browser;

beforeAll(async () => {
  // The delegate (test-agent) runs under the worker's policy: transfers wait for finance.
  bed = await createTestBed({
    agents: [delegatingAgent],
    policies: [financeApprovalPolicy()],
    keyring: parseKeyring({ [webKey.keyId]: { publicKey: webKey.publicKey, channel: 'web', people: '*' } }, 'inbox test keyring'),
  });
  inbox = await createInboxServer({
    client: bed.client,
    store: bed.store,
    signer: new DecisionSigner(webKey),
    auth: localUsersAuthenticator(loadUsersFile(path.join(__dirname, 'fixtures/approvals/users.yaml'))),
    logger: pino({ level: 'silent' }),
  });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await inbox?.close();
  await bed?.close();
});

async function signIn(user: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${inbox.url}/`);
  await page.fill('#username', user);
  await page.fill('#password', `${user}-pw-123`);
  await Promise.all([page.waitForURL(`${inbox.url}/`), page.click('form.login button[type=submit]')]);
  return page;
}

test("a delegate's approval names its delegating run in the inbox; approving it there finishes both; the run pages link the tree", async () => {
  effects.reset();
  const policy = parsePolicy({ agent: 'test-boss', tools: { echo: {}, 'agent:test-agent': {} }, rules: [{ id: 'delegate', decision: 'allow' }] }, 'boss policy');
  const runId = await bed.client.startRun({
    agent: 'test-boss',
    goal: 'get the supplier paid',
    requester: 'carol',
    policy,
    script: [
      { toolCalls: [{ name: 'agent__test-agent', id: 'd1', args: { goal: 'pay the supplier 250' }, script: [{ toolCalls: [{ name: 'transfer', args: { amount: 250, to: 'acct-9', pin: '4321' } }] }, { text: 'paid' }] }] },
      { text: 'the supplier is paid' },
    ],
  });
  const childId = `${runId.replace('warden/test-boss/', 'warden/test-agent/')}.d2`;
  const [pending] = await eventually(async () => {
    const list = await bed.client.pendingApprovals(childId);
    return list.length > 0 ? list : null;
  });
  if (!pending) throw new Error('no approval');
  await eventually(async () => (await bed.client.listRuns({ status: 'awaiting_approval' })).some((r) => r.runId === childId), 15_000, 'the delegate listed as awaiting approval');

  const page = await signIn('alice');
  const card = page.locator(`article[data-approval-id="${pending.approvalId}"]`);
  expect(await card.count()).toBe(1);
  const delegated = card.locator('dd.delegated-by');
  expect(await delegated.innerText()).toBe(`agent test-boss · ${runId}`);
  expect(await delegated.locator('a').getAttribute('href')).toBe(`/runs/${encodeURIComponent(runId)}`);
  expect(await card.innerText()).not.toContain('4321');

  await Promise.all([page.waitForURL(`${inbox.url}/decide`), card.locator('button:text-is("Approve")').click()]);
  await expect(page.locator('.result h1').innerText()).resolves.toBe('Approved');
  await expect(bed.client.result(runId)).resolves.toMatchObject({ status: 'completed', text: 'the supplier is paid', toolCalls: 2 });
  expect(effects.count('transfer')).toBe(1);

  // The delegating run's page lists its delegation, linked; the delegate's page links back.
  await page.goto(`${inbox.url}/runs/${encodeURIComponent(runId)}`);
  const row = page.locator(`table.delegations tr[data-delegate-run="${childId}"]`);
  expect(await row.innerText()).toMatch(new RegExp(`d1\\s+test-agent\\s+${childId.replace(/[.]/g, '\\.')}\\s+completed`));
  await Promise.all([page.waitForURL(`${inbox.url}/runs/${encodeURIComponent(childId)}`), row.locator('a').click()]);
  expect(await page.locator('dd.delegated-by').innerText()).toBe(`agent test-boss · ${runId} (call d1)`);
  expect(await page.locator('main').innerText()).toContain('approval_accepted');
});
