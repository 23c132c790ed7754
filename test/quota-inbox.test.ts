/**
 * Quota usage in the web inbox: an approval a quota asked for shows where that quota stands now
 * (used and reserved against the threshold the call crossed, from the run's verified trail and
 * the run store), on the inbox and on the run's page; `/quotas` lists every counter. A real
 * worker, real runs booking real reservations, the inbox over real HTTP.
 */
import pino from 'pino';
import { DecisionSigner, createInboxServer, loadUsersFile, localUsersAuthenticator, type InboxServer } from '../src/approvals';
import { generateSigningKey, parseKeyring, parsePolicy } from '../src/governance';
import { effects } from './fixtures/test-agents';
import { createTestBed, eventually, type TestBed } from './helpers';
import path from 'node:path';

const USERS_FILE = path.join(__dirname, 'fixtures/approvals/users.yaml');
const webKey = { keyId: 'test-web', ...generateSigningKey() };

const policy = parsePolicy(
  {
    agent: 'test-agent',
    tools: { transfer: {}, echo: {} },
    rules: [{ id: 'allow-all', decision: 'allow' }],
    quotas: [
      {
        id: 'transfers-per-day',
        count: 'calls',
        tools: ['transfer'],
        window: { calendar: 'day' },
        thresholds: [
          { above: 1, action: 'require_approval', reason: 'a second transfer today needs finance', approval: { approvers: ['group:finance'] } },
          { above: 10, action: 'deny', reason: 'the daily transfer limit' },
        ],
      },
    ],
  },
  'quota inbox test',
);

let bed: TestBed;
let inbox: InboxServer;

beforeAll(async () => {
  bed = await createTestBed({ keyring: parseKeyring({ [webKey.keyId]: { publicKey: webKey.publicKey, channel: 'web', people: '*' } }, 'quota inbox keyring') });
  inbox = await createInboxServer({ client: bed.client, store: bed.store, signer: new DecisionSigner(webKey), auth: localUsersAuthenticator(loadUsersFile(USERS_FILE)), logger: pino({ level: 'silent' }) });
});
afterAll(async () => {
  await inbox?.close();
  await bed?.close();
});
beforeEach(() => effects.reset());

async function signedIn(): Promise<string> {
  const login = await fetch(`${inbox.url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: 'alice', password: 'alice-pw-123', next: '/' }).toString(),
  });
  expect(login.status).toBe(303);
  return (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
}

test("an approval a quota asked for shows the quota's used and reserved against its limit, on the inbox and the run page; /quotas lists the counter", async () => {
  const transfer = (amount: number) => ({ toolCalls: [{ name: 'transfer', args: { amount, to: 'acct-1' } }] });
  const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'pay twice', requester: 'carol', policy, script: [transfer(10), transfer(20), { text: 'done' }] });
  const pending = await eventually(async () => (await bed.client.pendingApprovals(runId))[0], 30_000, 'the quota approval');
  expect(pending.ruleId).toBe('quota:test-agent/transfers-per-day');

  const cookie = await signedIn();
  const home = await eventually(
    async () => {
      const text = await (await fetch(`${inbox.url}/`, { headers: { cookie } })).text();
      return text.includes('class="quota-usage"') ? text : undefined;
    },
    30_000,
    'the inbox showing the quota',
  );
  // The first transfer ran and is committed; the second asks past 1.
  expect(home).toContain('data-quota="test-agent/transfers-per-day"');
  expect(home).toMatch(/<strong>1 of 1<\/strong> — 1 used, 0 reserved now; this call adds 1 \(1 when it asked\)/);
  expect(home).toContain('href="/quotas?quota=test-agent%2Ftransfers-per-day"');
  expect(home).toContain('<a href="/quotas">Quotas</a>');

  const runPageHtml = await (await fetch(`${inbox.url}/runs/${encodeURIComponent(runId)}`, { headers: { cookie } })).text();
  expect(runPageHtml).toMatch(/class="quota-usage"[^>]*>.*<strong>1 of 1<\/strong>/s);

  const quotas = await (await fetch(`${inbox.url}/quotas?quota=${encodeURIComponent('test-agent/transfers-per-day')}`, { headers: { cookie } })).text();
  expect(quotas).toMatch(/<tr data-quota="test-agent\/transfers-per-day" data-counter="test-agent\/transfers-per-day"><td><code>test-agent\/transfers-per-day<\/code><\/td><td>all runs<\/td><td>day:[^<]+<\/td><td>1<\/td><td>0<\/td>/);
  // Signed in only.
  expect((await fetch(`${inbox.url}/quotas`, { redirect: 'manual' })).status).toBe(303);

  await bed.client.cancel(runId);
  await expect(bed.client.result(runId)).resolves.toMatchObject({ status: 'cancelled' });
});

test('an approval of a rule, not a quota, shows no quota line; /quotas says when nothing is counted under a name', async () => {
  const cookie = await signedIn();
  const none = await (await fetch(`${inbox.url}/quotas?quota=nobody%2Fnothing`, { headers: { cookie } })).text();
  expect(none).toContain('No quota has counted anything under this name.');
  const ruled = parsePolicy({ agent: 'test-agent', tools: { transfer: {} }, rules: [{ id: 'transfers-wait', decision: 'require_approval', approval: { approvers: ['group:finance'] } }] }, 'rule approval');
  const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'pay', requester: 'carol', policy: ruled, script: [{ toolCalls: [{ name: 'transfer', args: { amount: 5, to: 'acct-2' } }] }, { text: 'done' }] });
  await eventually(async () => (await bed.client.pendingApprovals(runId))[0], 30_000, 'the rule approval');
  const page = await (await fetch(`${inbox.url}/runs/${encodeURIComponent(runId)}`, { headers: { cookie } })).text();
  expect(page).toContain('transfers-wait');
  expect(page).not.toContain('quota-usage');
  await bed.client.cancel(runId);
  await expect(bed.client.result(runId)).resolves.toMatchObject({ status: 'cancelled' });
});
