/**
 * The approvals listing (`listPendingApprovals`, `pendingApprovals`, `warden approvals`, the web
 * inbox) shows only approvals a Warden run wrote about itself: runs of type `agentRun` whose
 * approvals memo decrypts with the client's payload key and names the run's own id, in this
 * execution. The attacker holds a plain Temporal client (no payload key).
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import pino from 'pino';
import { DecisionSigner, createInboxServer, loadUsersFile, localUsersAuthenticator, type InboxServer } from '../../src/approvals';
import { allPendingApprovals } from '../../src/cli/approvals';
import { UntrustedRunError } from '../../src/client';
import { generateSigningKey } from '../../src/governance';
import { APPROVALS_MEMO, type ApprovalsMemo } from '../../src/workflows/approvals-memo';
import { statusSearchAttribute } from '../../src/workflows/search-attributes';
import type { PendingApproval } from '../../src/workflows/run-types';
import { FORGED_BY_QUERY } from '../fixtures/forged-run-workflow';
import { createTestBed, eventually, financeApprovalPolicy, settings, type TestBed } from '../helpers';

const USERS_FILE = path.join(__dirname, '../fixtures/approvals/users.yaml');
const webKey = { keyId: 'test-web', ...generateSigningKey() };

let bed: TestBed;
let inbox: InboxServer;
let connection: Connection;
/** What anyone with namespace access holds: the plain SDK, no codec, no Warden secret. */
let attacker: Client;
const forgedRuns: string[] = [];

beforeAll(async () => {
  bed = await createTestBed();
  inbox = await createInboxServer({ client: bed.client, store: bed.store, signer: new DecisionSigner(webKey), auth: localUsersAuthenticator(loadUsersFile(USERS_FILE)), logger: pino({ level: 'silent' }) });
  connection = await Connection.connect({ address: settings().address });
  attacker = new Client({ connection, namespace: settings().namespace });
});
afterAll(async () => {
  // The forged runs wait on a task queue nobody serves, as "awaiting_approval": other files list runs too.
  await Promise.all(forgedRuns.map((id) => attacker.workflow.getHandle(id).terminate('test over').catch(() => undefined)));
  await inbox?.close();
  await connection?.close();
  await bed?.close();
});

function forgedApproval(runId: string): PendingApproval {
  const now = Date.now();
  return {
    approvalId: `forged-${randomUUID()}`,
    runId,
    callId: 'call-1',
    tool: 'transfer',
    args: { amount: 9000, to: 'acct-mallory' },
    ruleId: 'transfers-need-finance',
    reason: 'money leaves the company',
    approvers: ['group:finance'],
    quorum: 1,
    requester: 'mallory',
    createdAt: new Date(now + 1000).toISOString(),
    expiresAt: new Date(now + 3_600_000).toISOString(),
    escalated: false,
    approvals: [],
    paused: false,
  };
}

/** A raw `agentRun` on a task queue no worker serves, that says it awaits approval; `memo` as the attacker writes it. */
async function startForged(memo: { plain: ApprovalsMemo } | { raw: Payload }, runId = `warden/test-agent/forged-${randomUUID()}`): Promise<string> {
  const taskQueue = `nobody-${randomUUID()}`;
  const typedSearchAttributes = [{ key: statusSearchAttribute, value: 'awaiting_approval' }];
  if ('plain' in memo) {
    await attacker.workflow.start('agentRun', { workflowId: runId, taskQueue, args: [], memo: { [APPROVALS_MEMO]: memo.plain }, typedSearchAttributes });
  } else {
    const handle = await attacker.workflow.start('agentRun', { workflowId: runId, taskQueue, args: [], typedSearchAttributes });
    // A memo field can only be given raw at start: terminate and start again with the same id and the raw field.
    await handle.terminate('restart with a raw memo');
    const { searchAttributes } = (await attacker.workflowService.describeWorkflowExecution({ namespace: settings().namespace, execution: { workflowId: runId } })).workflowExecutionInfo ?? {};
    await attacker.workflowService.startWorkflowExecution({
      namespace: settings().namespace,
      workflowId: runId,
      workflowType: { name: 'agentRun' },
      taskQueue: { name: taskQueue },
      memo: { fields: { [APPROVALS_MEMO]: memo.raw } },
      searchAttributes,
      requestId: randomUUID(),
    });
  }
  forgedRuns.push(runId);
  await eventually(async () => (await bed.client.listRuns({ idPrefix: runId, status: 'awaiting_approval' })).length === 1, 10_000, 'the forged run in visibility');
  return runId;
}

async function startWaiting(): Promise<{ runId: string; approvalId: string }> {
  const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'pay', requester: 'carol', policy: financeApprovalPolicy(), script: [{ toolCalls: [{ name: 'transfer', args: { amount: 250, to: 'acct-1' } }] }, { text: 'done' }] });
  const approval = await eventually(async () => (await bed.client.pendingApprovals(runId))[0], 20_000, 'a pending approval');
  await eventually(async () => (await bed.client.listPendingApprovals()).runs.some((r) => r.run.runId === runId), 10_000, 'the run listed');
  return { runId, approvalId: approval.approvalId };
}

async function rawApprovalsMemo(runId: string): Promise<Payload> {
  const desc = await attacker.workflowService.describeWorkflowExecution({ namespace: settings().namespace, execution: { workflowId: runId } });
  const field = desc.workflowExecutionInfo?.memo?.fields?.[APPROVALS_MEMO];
  if (!field) throw new Error(`run ${runId} has no approvals memo`);
  return field;
}

async function inboxPage(): Promise<string> {
  const login = await fetch(`${inbox.url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: inbox.url },
    body: new URLSearchParams({ username: 'alice', password: 'alice-pw-123', next: '/' }).toString(),
  });
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  return (await fetch(`${inbox.url}/`, { headers: { cookie } })).text();
}

test('a raw agentRun with WardenStatus awaiting_approval and an approvals memo in clear is listed nowhere', async () => {
  const genuine = await startWaiting();
  const forgedId = `warden/test-agent/forged-${randomUUID()}`;
  const forged = forgedApproval(forgedId);
  await startForged({ plain: { count: 1, approvals: [forged] } }, forgedId);

  const listing = await bed.client.listPendingApprovals({ queryTimeoutMs: 1000 });
  expect(listing.approvals.map((a) => a.approvalId)).toContain(genuine.approvalId);
  expect(listing.approvals.map((a) => a.approvalId)).not.toContain(forged.approvalId);
  expect(listing.refused).toContainEqual({ runId: forgedId, reason: 'memo not encrypted' });
  await expect(bed.client.pendingApprovals(forgedId)).rejects.toThrow(UntrustedRunError);

  const page = await inboxPage();
  expect(page).toContain(`data-approval-id="${genuine.approvalId}"`);
  expect(page).not.toContain(forged.approvalId);
  expect(page).not.toContain('acct-mallory');
  expect(page).toMatch(/1 run&#39;s approvals ignored: memo not encrypted|1 run's approvals ignored: memo not encrypted/);

  // `warden approvals`: the forged one is left out, and a note says how many were ignored and why.
  const notes: string[] = [];
  const write = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    notes.push(String(chunk));
    return true;
  });
  try {
    const listed = await allPendingApprovals(bed.client);
    expect(listed.map((a) => a.approvalId)).toContain(genuine.approvalId);
    expect(listed.map((a) => a.approvalId)).not.toContain(forged.approvalId);
  } finally {
    write.mockRestore();
  }
  expect(notes.join('')).toContain("note: 1 run's approvals ignored: memo not encrypted\n");

  await bed.client.cancel(genuine.runId);
  await bed.client.result(genuine.runId);
});

test("a genuine run's encrypted approvals memo copied into another run is refused: it names another run", async () => {
  const genuine = await startWaiting();
  const forgedId = await startForged({ raw: await rawApprovalsMemo(genuine.runId) });
  const listing = await bed.client.listPendingApprovals({ queryTimeoutMs: 1000 });
  expect(listing.runs.map((r) => r.run.runId)).not.toContain(forgedId);
  expect(listing.refused).toContainEqual({ runId: forgedId, reason: 'memo names another run' });
  await expect(bed.client.pendingApprovals(forgedId)).rejects.toThrow(UntrustedRunError);
  await bed.client.cancel(genuine.runId);
  await bed.client.result(genuine.runId);
});

test("a finished run's encrypted approvals memo, in a new execution under its own id, is refused: it predates the execution", async () => {
  const genuine = await startWaiting();
  const copied = await rawApprovalsMemo(genuine.runId);
  await bed.client.cancel(genuine.runId);
  await bed.client.result(genuine.runId);
  await startForged({ raw: copied }, genuine.runId);
  const listing = await bed.client.listPendingApprovals({ queryTimeoutMs: 1000 });
  expect(listing.runs.map((r) => r.run.runId)).not.toContain(genuine.runId);
  expect(listing.refused).toContainEqual({ runId: genuine.runId, reason: 'memo written before this execution started' });
  await expect(bed.client.pendingApprovals(genuine.runId)).rejects.toThrow(UntrustedRunError);
});

test("a forged run with no memo, whose own worker answers the pendingApprovals query in clear, is not listed", async () => {
  const taskQueue = `attacker-${randomUUID()}`;
  const worker = await Worker.create({
    connection: await NativeConnection.connect({ address: settings().address }),
    namespace: settings().namespace,
    taskQueue,
    workflowsPath: require.resolve('../fixtures/forged-run-workflow'),
  });
  await worker.runUntil(async () => {
    const runId = `warden/test-agent/forged-${randomUUID()}`;
    await attacker.workflow.start('agentRun', { workflowId: runId, taskQueue, args: [], typedSearchAttributes: [{ key: statusSearchAttribute, value: 'awaiting_approval' }] });
    forgedRuns.push(runId);
    await eventually(async () => (await bed.client.listRuns({ idPrefix: runId, status: 'awaiting_approval' })).length === 1, 10_000, 'the forged run in visibility');
    // The attacker's worker does answer: the plain SDK reads its approval.
    expect((await attacker.workflow.getHandle(runId).query<PendingApproval[]>('pendingApprovals'))[0]?.approvalId).toBe(FORGED_BY_QUERY);

    const listing = await bed.client.listPendingApprovals({ queryTimeoutMs: 3000 });
    expect(listing.queried).toContain(runId);
    expect(listing.approvals.map((a) => a.approvalId)).not.toContain(FORGED_BY_QUERY);
    expect(listing.refused).toContainEqual({ runId, reason: 'answer not encrypted' });
    await expect(bed.client.pendingApprovals(runId)).rejects.toThrow(UntrustedRunError);
    await attacker.workflow.getHandle(runId).terminate('test over');
  });
});

test('a client without a payload key lists approvals memos in clear, as before', async () => {
  const plain = await createTestBed({ payloadCodec: null });
  try {
    const forgedId = `warden/test-agent/forged-${randomUUID()}`;
    const approval = forgedApproval(forgedId);
    await startForged({ plain: { count: 1, approvals: [approval] } }, forgedId);
    const listing = await plain.client.listPendingApprovals({ queryTimeoutMs: 1000 });
    expect(listing.approvals.map((a) => a.approvalId)).toContain(approval.approvalId);
    expect(await plain.client.pendingApprovals(forgedId)).toEqual([approval]);
  } finally {
    await plain.close();
  }
});
