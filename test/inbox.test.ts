import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './browser';
import pino from 'pino';
import {
  AuthError,
  DecisionSigner,
  createInboxServer,
  hashPassword,
  loadUsersFile,
  localUsersAuthenticator,
  oidcBearerAuthenticator,
  verifyPassword,
  type InboxServer,
} from '../src/approvals';
import { loadJose } from '../src/approvals/auth/oidc';
import { REDACTED, generateSigningKey, parseKeyring } from '../src/governance';
import { effects } from './fixtures/test-agents';
import { createTestBed, financeApprovalPolicy, eventually, type TestBed } from './helpers';

const USERS_FILE = path.join(__dirname, 'fixtures/approvals/users.yaml');
const webKey = { keyId: 'test-web', ...generateSigningKey() };
const silent = pino({ level: 'silent' });

const policy = financeApprovalPolicy();

let bed: TestBed;
let inbox: InboxServer;
let browser: Browser;

beforeAll(async () => {
  // The inbox authenticates people itself (users file, OIDC), so its key may assert anyone.
  bed = await createTestBed({ keyring: parseKeyring({ [webKey.keyId]: { publicKey: webKey.publicKey, channel: 'web', people: '*' } }, 'inbox test keyring') });
  inbox = await createInboxServer({
    client: bed.client,
    store: bed.store,
    signer: new DecisionSigner(webKey),
    auth: localUsersAuthenticator(loadUsersFile(USERS_FILE)),
    logger: silent,
  });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await inbox?.close();
  await bed?.close();
});
beforeEach(() => effects.reset());

/** A run by carol whose transfer waits for finance. */
async function waitingRun(args: Record<string, unknown> = { amount: 250, to: 'acct-9', pin: '4321' }) {
  const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'pay the supplier', requester: 'carol', policy, script: [{ toolCalls: [{ name: 'transfer', args }] }, { text: 'done' }] });
  const pending = await eventually(async () => (await bed.client.pendingApprovals(runId))[0], 20_000, 'a pending approval');
  return { runId, approvalId: pending.approvalId };
}

/** Cancels a run and waits for it to end, so no run is left waiting without a worker for later tests. */
async function cancelRun(runId: string) {
  await bed.client.cancel(runId);
  await expect(bed.client.result(runId)).resolves.toMatchObject({ status: 'cancelled' });
}

/** Decisions the run took in: signals and accepted Updates (an Update its validator refused leaves no event). */
const decisionsSent = async (runId: string) =>
  ((await bed.client.handle(runId).fetchHistory()).events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes || e.workflowExecutionUpdateAcceptedEventAttributes).length;

async function signIn(user: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${inbox.url}/`);
  expect(new URL(page.url()).pathname).toBe('/login');
  await page.fill('#username', user);
  await page.fill('#password', `${user}-pw-123`);
  await Promise.all([page.waitForURL(`${inbox.url}/`), page.click('form.login button[type=submit]')]);
  return page;
}

/** The approval's card on the inbox page, once visibility lists the run as awaiting approval (it lags the workflow a little). */
async function openCard(page: Page, runId: string, approvalId: string) {
  await eventually(async () => (await bed.client.listRuns({ status: 'awaiting_approval' })).some((r) => r.runId === runId), 15_000, 'the run listed as awaiting approval');
  await page.goto(`${inbox.url}/`);
  const card = page.locator(`article[data-approval-id="${approvalId}"]`);
  expect(await card.count()).toBe(1);
  return card;
}

async function decide(page: Page, approvalId: string, decision: 'Approve' | 'Reject', note?: string) {
  const card = page.locator(`article[data-approval-id="${approvalId}"]`);
  if (note) await card.locator('textarea[name=note]').fill(note);
  await Promise.all([page.waitForURL(`${inbox.url}/decide`), card.locator(`button:text-is("${decision}")`).click()]);
  return page.locator('.result');
}

describe('web inbox', () => {
  test('a finance user signs in, sees the waiting call with redacted arguments, approves it, and the run completes', async () => {
    const { runId, approvalId } = await waitingRun();
    const page = await signIn('alice');
    const card = await openCard(page, runId, approvalId);
    const text = await card.innerText();
    expect(text).toContain('transfer');
    expect(text).toContain('test-agent');
    expect(text).toContain('transfers-need-finance');
    expect(text).toContain('money leaves the company');
    expect(text).toContain('carol');
    expect(text).toMatch(/\d+m \d+s left/);
    expect(text).toContain(REDACTED);
    expect(text).not.toContain('4321');
    await page.screenshot({ path: '/tmp/inbox.png', fullPage: true });

    const result = await decide(page, approvalId, 'Approve', 'invoice checked');
    await expect(result.locator('h1').innerText()).resolves.toBe('Approved');
    expect(await result.innerText()).toContain('The call runs now.');

    await expect(bed.client.result(runId)).resolves.toMatchObject({ status: 'completed', text: 'done', toolCalls: 1 });
    expect(effects.count('transfer')).toBe(1);
    const accepted = (await bed.store.readAudit(runId)).find((e) => e.type === 'approval_accepted');
    expect(accepted?.data).toMatchObject({ approvalId, approver: 'alice', groups: ['finance'], channel: 'web', signed: true, note: 'invoice checked' });

    // The run page: status, budgets and the audit trail with the decision.
    await page.goto(`${inbox.url}/runs/${encodeURIComponent(runId)}`);
    const runText = await page.locator('main').innerText();
    expect(runText).toContain('completed');
    expect(runText).toContain('Budgets');
    expect(runText).toContain('approval_decided');
    expect(runText).toContain('tool_succeeded');
  });

  test('a rejection with a reason reaches the model, the tool never runs, and history lists it', async () => {
    const { runId, approvalId } = await waitingRun();
    const page = await signIn('bob');
    await openCard(page, runId, approvalId);
    const result = await decide(page, approvalId, 'Reject', 'over the monthly limit');
    await expect(result.locator('h1').innerText()).resolves.toBe('Rejected');

    await expect(bed.client.result(runId)).resolves.toMatchObject({ status: 'completed', toolCalls: 0 });
    expect(effects.count('transfer')).toBe(0);
    const messages = (await bed.store.readMessages(runId, 3)) as { content: { output: { value: string } }[] }[];
    expect(messages[2]?.content[0]?.output.value).toBe(`not run: approval ${approvalId} was rejected by bob: over the monthly limit`);

    await page.goto(`${inbox.url}/history?outcome=rejected`);
    const row = page.locator(`tr[data-approval-id="${approvalId}"]`);
    await expect(row.innerText()).resolves.toContain('over the monthly limit');
    await page.goto(`${inbox.url}/history?outcome=approved`);
    expect(await page.locator(`tr[data-approval-id="${approvalId}"]`).count()).toBe(0);
  });

  test('without a session pages redirect to login, and forged POSTs are refused and send the run nothing', async () => {
    const { runId, approvalId } = await waitingRun();
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${inbox.url}/runs/${encodeURIComponent(runId)}`);
    expect(new URL(page.url()).pathname).toBe('/login');

    const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
    const post = (body: string, headers: Record<string, string> = {}) =>
      fetch(`${inbox.url}/decide`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
    const decision = { runId, approvalId, decision: 'approve' };

    expect((await fetch(`${inbox.url}/`, { redirect: 'manual' })).status).toBe(303);
    expect((await post(form(decision))).status).toBe(401);

    // A real session, but a form without its CSRF token, or from another site.
    const login = await fetch(`${inbox.url}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ username: 'alice', password: 'alice-pw-123', next: '/' }) });
    expect(login.status).toBe(303);
    const setCookie = login.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    const cookie = setCookie.split(';')[0] ?? '';
    const csrf = /name="csrf" value="([^"]+)"/.exec(await (await fetch(`${inbox.url}/`, { headers: { cookie } })).text())?.[1] ?? '';
    expect(csrf).not.toBe('');
    expect((await post(form(decision), { cookie })).status).toBe(403);
    expect((await post(form({ ...decision, csrf: 'forged' }), { cookie })).status).toBe(403);
    expect((await post(form({ ...decision, csrf }), { cookie, origin: 'http://evil.example' })).status).toBe(403);
    expect((await post(form({ ...decision, csrf }), { cookie, 'sec-fetch-site': 'cross-site' })).status).toBe(403);

    expect(await decisionsSent(runId)).toBe(0);
    expect(await bed.client.pendingApprovals(runId)).toHaveLength(1);
    await cancelRun(runId);
  });

  test('a decision on an approval decided meanwhile says so and sends nothing', async () => {
    const { runId, approvalId } = await waitingRun();
    const alice = await signIn('alice');
    await openCard(alice, runId, approvalId);
    // Bob approves first, from his own session.
    const bob = await signIn('bob');
    await openCard(bob, runId, approvalId);
    await expect((await decide(bob, approvalId, 'Approve')).locator('h1').innerText()).resolves.toBe('Approved');
    await expect(bed.client.result(runId)).resolves.toMatchObject({ status: 'completed', toolCalls: 1 });

    // Alice's page still shows the form.
    const result = await decide(alice, approvalId, 'Reject', 'too late?');
    await expect(result.locator('h1').innerText()).resolves.toBe('No longer pending');
    expect(await result.innerText()).toContain(`Approval ${approvalId} was already approved by bob. Nothing was sent.`);
    expect(await decisionsSent(runId)).toBe(1);
  });

  test('the requester cannot approve her own run: the inbox shows the refusal read back from the audit trail', async () => {
    const { runId, approvalId } = await waitingRun();
    const page = await signIn('carol');
    const card = await openCard(page, runId, approvalId);
    expect(await card.innerText()).toContain('four-eyes');
    const result = await decide(page, approvalId, 'Approve');
    await expect(result.locator('h1').innerText()).resolves.toBe('Refused');
    expect(await result.innerText()).toContain('four-eyes: carol requested this run and cannot decide its approvals');
    expect(await bed.client.pendingApprovals(runId)).toHaveLength(1);
    expect(effects.count('transfer')).toBe(0);
    await cancelRun(runId);
  });
});

describe('local users', () => {
  test('passwords are scrypt hashes; a wrong password or an unknown user signs no one in', async () => {
    const hash = await hashPassword('s3cret');
    expect(hash).toMatch(/^scrypt\$32768\$8\$1\$/);
    await expect(verifyPassword('s3cret', hash)).resolves.toBe(true);
    await expect(verifyPassword('s3cret ', hash)).resolves.toBe(false);
    const auth = localUsersAuthenticator(loadUsersFile(USERS_FILE));
    await expect(auth.verify('alice', 'alice-pw-123')).resolves.toEqual({ id: 'alice', name: 'Alice Adams', groups: ['finance'] });
    await expect(auth.verify('alice', 'bob-pw-123')).resolves.toBeNull();
    await expect(auth.verify('mallory', 'alice-pw-123')).resolves.toBeNull();
  });
});

describe('OIDC bearer sign-in', () => {
  const jose = loadJose();
  const issuer = 'https://idp.test';
  const audience = 'warden-inbox';
  let jwksServer: Server;
  let jwksUri: string;
  let privateKey: Awaited<ReturnType<typeof jose.generateKeyPair>>['privateKey'];

  beforeAll(async () => {
    const pair = await jose.generateKeyPair('RS256');
    privateKey = pair.privateKey;
    const jwk = { ...(await jose.exportJWK(pair.publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
    jwksServer = createServer((req, res) => {
      if (req.url !== '/jwks') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
  });
  afterAll(async () => {
    await new Promise((resolve) => jwksServer?.close(resolve));
  });

  const token = (options: { aud?: string; exp?: number } = {}) =>
    new jose.SignJWT({ preferred_username: 'alice', groups: ['finance', 'staff'] })
      .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
      .setIssuer(issuer)
      .setAudience(options.aud ?? audience)
      .setSubject('u-1234')
      .setIssuedAt()
      .setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 600)
      .sign(privateKey);

  test('a valid token gives the identity; a wrong audience or an expired token is refused', async () => {
    const auth = oidcBearerAuthenticator({ issuer, audience, jwksUri, idClaim: 'preferred_username' });
    await expect(auth.verify(await token())).resolves.toEqual({ id: 'alice', name: 'alice', groups: ['finance', 'staff'] });
    await expect(oidcBearerAuthenticator({ issuer, audience, jwksUri }).verify(await token())).resolves.toMatchObject({ id: 'u-1234' });

    const wrongAudience = auth.verify(await token({ aud: 'another-app' }));
    await expect(wrongAudience).rejects.toThrow(AuthError);
    await expect(wrongAudience).rejects.toThrow(/aud/);
    await expect(auth.verify(await token({ exp: Math.floor(Date.now() / 1000) - 600 }))).rejects.toThrow('token expired');
    await expect(auth.verify('not.a.jwt')).rejects.toThrow(AuthError);
  });

  test('the inbox serves bearer clients and answers 401 without a valid token', async () => {
    const server = await createInboxServer({
      client: bed.client,
      store: bed.store,
      signer: new DecisionSigner(webKey),
      auth: oidcBearerAuthenticator({ issuer, audience, jwksUri, idClaim: 'preferred_username' }),
      logger: silent,
    });
    try {
      const ok = await fetch(`${server.url}/history`, { headers: { authorization: `Bearer ${await token()}` } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('Decisions');
      const none = await fetch(`${server.url}/`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toContain('Bearer');
      const expired = await fetch(`${server.url}/`, { headers: { authorization: `Bearer ${await token({ exp: Math.floor(Date.now() / 1000) - 600 })}` } });
      expect(expired.status).toBe(401);
    } finally {
      await server.close();
    }
  });
});
