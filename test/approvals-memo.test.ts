import path from 'node:path';
import { Worker } from '@temporalio/worker';
import pino from 'pino';
import { DecisionSigner, createInboxServer, loadUsersFile, localUsersAuthenticator, type InboxServer } from '../src/approvals';
import { ENCRYPTED_ENCODING } from '../src/codec/encryption-codec';
import { REDACTED, generateSigningKey, parseKeyring } from '../src/governance';
import { APPROVALS_MEMO, MEMO_MAX_CHARS, type ApprovalsMemo } from '../src/workflows/approvals-memo';
import { effects } from './fixtures/test-agents';
import { createTestBed, eventually, financeApprovalPolicy, settings, testPayloadCodec, type TestBed } from './helpers';

/**
 * A waiting run writes its pending approvals into its memo, so clients read them through
 * `describe` or one visibility listing instead of a query per run (a query on a run out of the
 * worker's cache replays the whole run).
 */
const USERS_FILE = path.join(__dirname, 'fixtures/approvals/users.yaml');
const webKey = { keyId: 'test-web', ...generateSigningKey() };
const SECRET_PIN = '98765';

let bed: TestBed;
let inbox: InboxServer;

beforeAll(async () => {
  bed = await createTestBed({
    allowUnsignedDecisions: true,
    allowUnsignedOperators: true,
    keyring: parseKeyring({ [webKey.keyId]: { publicKey: webKey.publicKey, channel: 'web', people: '*' } }, 'approvals memo keyring'),
  });
  inbox = await createInboxServer({ client: bed.client, store: bed.store, signer: new DecisionSigner(webKey), auth: localUsersAuthenticator(loadUsersFile(USERS_FILE)), logger: pino({ level: 'silent' }) });
});
afterAll(async () => {
  await inbox?.close();
  await bed?.close();
});
beforeEach(() => effects.reset());

async function startWaiting(policy = financeApprovalPolicy(), args: Record<string, unknown> = { amount: 250, to: 'acct-memo', pin: SECRET_PIN }): Promise<{ runId: string; approvalId: string }> {
  const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'pay', requester: 'carol', policy, script: [{ toolCalls: [{ name: 'transfer', args }] }, { text: 'done' }] });
  const approval = await eventually(async () => (await bed.client.queryPendingApprovals(runId))[0], 20_000, 'a pending approval');
  return { runId, approvalId: approval.approvalId };
}

/** The run's memo field as Temporal holds it: the raw payload, and its value decoded with the suite's key. */
async function rawMemo(runId: string): Promise<{ encoding: string; bytes: Buffer; value: ApprovalsMemo | undefined }> {
  const desc = await bed.client.client.workflowService.describeWorkflowExecution({ namespace: settings().namespace, execution: { workflowId: runId } });
  const payload = desc.workflowExecutionInfo?.memo?.fields?.[APPROVALS_MEMO];
  const decoded = (await bed.client.handle(runId).describe()).memo?.[APPROVALS_MEMO] as ApprovalsMemo | undefined;
  return { encoding: Buffer.from(payload?.metadata?.encoding ?? []).toString('utf8'), bytes: Buffer.from(payload?.data ?? []), value: decoded };
}

async function replays(runId: string): Promise<void> {
  const history = await bed.client.handle(runId).fetchHistory();
  const codePath = process.env.WARDEN_TEST_WORKFLOW_BUNDLE;
  const bundle = codePath ? { workflowBundle: { codePath } } : { workflowsPath: require.resolve('../src/workflows') };
  await Worker.runReplayHistory({ ...bundle, dataConverter: { failureConverterPath: require.resolve('../src/codec/failure-converter'), payloadCodecs: [testPayloadCodec()] } }, history, runId);
}

test('a waiting run answers pendingApprovals from its memo with no worker running; the memo is cleared once decided', async () => {
  const { runId, approvalId } = await startWaiting();
  const asked = await bed.client.queryPendingApprovals(runId);
  await eventually(async () => (await rawMemo(runId)).value?.count === 1, 10_000, 'the approvals memo');
  expect((await rawMemo(runId)).value).toEqual({ count: 1, approvals: asked });

  await bed.stopWorker();
  try {
    // The query needs a worker to replay the run; the memo does not.
    await expect(bed.client.client.connection.withDeadline(Date.now() + 1500, () => bed.client.queryPendingApprovals(runId))).rejects.toThrow();
    expect(await bed.client.pendingApprovals(runId)).toEqual(asked);
  } finally {
    await bed.startWorker();
  }

  expect(await bed.client.approve(runId, { approvalId, approver: 'alice', groups: ['finance'] })).toMatchObject({ status: 'accepted', decided: true });
  // The decision and the memo's update are one workflow task: nothing is pending once the Update answers.
  expect((await rawMemo(runId)).value).toEqual({ count: 0, approvals: [] });
  expect(await bed.client.pendingApprovals(runId)).toEqual([]);
  expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 1 });
  expect(effects.count('transfer')).toBe(1);
  await replays(runId);
});

test('the memo holds arguments redacted, and encrypted by the payload codec', async () => {
  const { runId } = await startWaiting();
  const memo = await eventually(async () => {
    const read = await rawMemo(runId);
    return read.value?.count === 1 ? read : undefined;
  }, 10_000, 'the approvals memo');
  expect(memo.value?.approvals[0]?.args).toEqual({ amount: 250, to: 'acct-memo', pin: REDACTED });
  expect((await bed.client.pendingApprovals(runId))[0]?.args).toEqual({ amount: 250, to: 'acct-memo', pin: REDACTED });
  expect(memo.encoding).toBe(ENCRYPTED_ENCODING);
  expect(memo.bytes.includes('acct-memo')).toBe(false);
  expect(memo.bytes.includes(SECRET_PIN)).toBe(false);
  await bed.client.cancel(runId);
  await bed.client.result(runId);
  expect((await rawMemo(runId)).value).toEqual({ count: 0, approvals: [] });
});

test('votes so far and the paused flag reach the memo as they change; its history replays', async () => {
  const { runId, approvalId } = await startWaiting(financeApprovalPolicy({ quorum: 2 }));
  expect(await bed.client.approve(runId, { approvalId, approver: 'alice', groups: ['finance'] })).toMatchObject({ status: 'accepted', decided: false });
  const [voted] = await bed.client.pendingApprovals(runId);
  expect(voted?.approvals.map((v) => v.approver)).toEqual(['alice']);
  expect(voted).toEqual((await bed.client.queryPendingApprovals(runId))[0]);

  await bed.client.pause(runId, { by: 'ops' });
  await eventually(async () => (await bed.client.pendingApprovals(runId))[0]?.paused, 10_000, 'the paused flag in the memo');
  await bed.client.resume(runId, { by: 'ops' });
  await eventually(async () => (await bed.client.pendingApprovals(runId))[0]?.paused === false, 10_000, 'the run resumed in the memo');

  expect(await bed.client.approve(runId, { approvalId, approver: 'bob', groups: ['finance'] })).toMatchObject({ status: 'accepted', decided: true });
  expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 1 });
  expect(await bed.client.pendingApprovals(runId)).toEqual([]);
  await replays(runId);
});

test('approvals larger than the memo allows are left to the query', async () => {
  const { runId } = await startWaiting(financeApprovalPolicy(), { amount: 1, to: 'x'.repeat(MEMO_MAX_CHARS + 1) });
  const memo = await eventually(async () => (await rawMemo(runId)).value, 10_000, 'the approvals memo');
  expect(memo).toEqual({ count: 1, approvals: [] });
  const [approval] = await bed.client.pendingApprovals(runId);
  expect(approval?.args).toEqual({ amount: 1, to: 'x'.repeat(MEMO_MAX_CHARS + 1) });
  const listing = await bed.client.listPendingApprovals();
  expect(listing.queried).toContain(runId);
  expect(listing.runs.find((r) => r.run.runId === runId)?.approvals).toHaveLength(1);
  await bed.client.cancel(runId);
  await bed.client.result(runId);
});

test('one listing returns every waiting run with its approvals; a run without the memo field is asked by query', async () => {
  const waiting = await Promise.all([startWaiting(), startWaiting(), startWaiting()]);
  // Paused before any worker saw it: no approval, so no memo field; the listing must ask it.
  await bed.stopWorker();
  const pausedRun = await bed.client.startRun({ agent: 'test-agent', goal: 'later', requester: 'carol', policy: financeApprovalPolicy(), script: [{ text: 'done' }] });
  await bed.client.pause(pausedRun, { by: 'ops' });
  await bed.startWorker();
  await eventually(async () => (await bed.client.listRuns({ idPrefix: pausedRun, status: 'paused' })).length === 1, 10_000, 'the paused run');
  await eventually(async () => {
    const listed = (await bed.client.listPendingApprovals()).runs.map((r) => r.run.runId);
    return waiting.every((w) => listed.includes(w.runId));
  }, 10_000, 'every waiting run listed');

  const listing = await bed.client.listPendingApprovals();
  for (const { runId, approvalId } of waiting) {
    const entry = listing.runs.find((r) => r.run.runId === runId);
    expect(entry?.run).toMatchObject({ runId, agent: 'test-agent', status: 'awaiting_approval', requester: 'carol' });
    expect(entry?.approvals.map((a) => a.approvalId)).toEqual([approvalId]);
    expect(entry?.approvals).toEqual(await bed.client.queryPendingApprovals(runId));
    expect(listing.queried).not.toContain(runId);
  }
  expect(listing.queried).toContain(pausedRun);
  expect(listing.runs.some((r) => r.run.runId === pausedRun)).toBe(false);

  await bed.client.cancel(pausedRun);
  await Promise.all(waiting.map(async ({ runId }) => bed.client.cancel(runId)));
  await Promise.all([pausedRun, ...waiting.map((w) => w.runId)].map((runId) => bed.client.result(runId)));
});

test('the web inbox lists waiting runs from the listing, with arguments redacted, with no worker running', async () => {
  const { runId, approvalId } = await startWaiting();
  await eventually(async () => (await bed.client.listPendingApprovals()).runs.some((r) => r.run.runId === runId), 10_000, 'the run listed');
  const login = await fetch(`${inbox.url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: inbox.url },
    body: new URLSearchParams({ username: 'alice', password: 'alice-pw-123', next: '/' }).toString(),
  });
  expect(login.status).toBe(303);
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  await bed.stopWorker();
  try {
    const res = await fetch(`${inbox.url}/`, { headers: { cookie } });
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toContain(`data-approval-id="${approvalId}"`);
    expect(page).toContain('acct-memo');
    expect(page).toContain(REDACTED);
    expect(page).not.toContain(SECRET_PIN);
    expect(page).not.toContain(`Run <a href="/runs/${encodeURIComponent(runId)}">`);
  } finally {
    await bed.startWorker();
  }
  await bed.client.cancel(runId);
  await bed.client.result(runId);
});
