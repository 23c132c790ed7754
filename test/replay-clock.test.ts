/**
 * A run's audit events carry the workflow's clock. A local activity (the worker's check of a signed
 * decision or operator command, a local tool) resolves in an activation of its own whose time is
 * not the same on replay, so an event stamped right after one would differ when another worker
 * replays the run: its trail, checked against the run store, would fail to verify. These runs are
 * replayed (a closed run's query, a worker started anew) and their trails must still verify.
 */
import { DecisionSigner } from '../src/approvals/signing-keys';
import { generateSigningKey, type Keyring } from '../src/governance';
import { createTestBed, eventually, financeApprovalPolicy, type TestBed } from './helpers';

const opsKey = generateSigningKey();
const webKey = generateSigningKey();
const ops = new DecisionSigner({ keyId: 'ops', ...opsKey });
const web = new DecisionSigner({ keyId: 'web', ...webKey });
const keyring: Keyring = {
  ops: { publicKey: opsKey.publicKey, channel: 'cli', people: { olga: [] }, roles: ['operator'], revoked: false },
  web: { publicKey: webKey.publicKey, channel: 'web', people: { fiona: ['finance'] }, revoked: false },
};

/** The worker reads its keyring in the local activity that checks a signature: slowly here, so the activity resolves well after it was called. */
const slowKeyring = (): Keyring => {
  const until = Date.now() + 50;
  while (Date.now() < until);
  return keyring;
};

let bed: TestBed;
beforeAll(async () => {
  bed = await createTestBed({ keyring: slowKeyring });
});
afterAll(async () => bed?.close());

test('a run paused, resumed and approved by signed commands verifies after a worker replays it', async () => {
  const runId = await bed.client.startRun({
    agent: 'test-agent',
    goal: 'pay bob',
    requester: 'carol',
    policy: financeApprovalPolicy(),
    script: [{ toolCalls: [{ name: 'transfer', args: { amount: 500, to: 'bob' } }] }, { text: 'done' }],
  });
  const approval = await eventually(async () => (await bed.client.pendingApprovals(runId))[0], 20_000, 'a pending approval');
  await bed.client.pause(runId, { by: 'olga', signer: ops });
  await eventually(async () => (await bed.client.status(runId)).paused, 10_000, 'the pause');
  await bed.client.resume(runId, { by: 'olga', signer: ops });
  await eventually(async () => !(await bed.client.status(runId)).paused, 10_000, 'the resume');
  const signature = web.sign({ approvalId: approval.approvalId, runId, decision: 'approve', approver: 'fiona', groups: ['finance'], channel: 'web' });
  await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'fiona', signature });
  expect(await bed.client.result(runId)).toMatchObject({ status: 'completed' });

  // A worker with nothing cached replays the run to answer the query the check makes.
  await bed.stopWorker();
  await bed.startWorker();
  const check = await bed.client.verifyAuditTrail(runId);
  expect(check.problem).toBeUndefined();
  expect(check.ok).toBe(true);
  const types = check.events.map((e) => e.type);
  expect(types).toEqual(expect.arrayContaining(['paused', 'resumed', 'approval_decided']));
}, 120_000);

test('a run rolled back by a signed command verifies after a worker replays it', async () => {
  const runId = await bed.client.startRun({
    agent: 'test-agent',
    goal: 'pay bob, then wait',
    requester: 'carol',
    policy: financeApprovalPolicy(),
    script: [{ toolCalls: [{ name: 'echo', args: { text: 'first' } }] }, { toolCalls: [{ name: 'transfer', args: { amount: 500, to: 'bob' } }] }, { text: 'done' }],
  });
  await eventually(async () => (await bed.client.pendingApprovals(runId))[0], 20_000, 'a pending approval');
  await bed.client.pause(runId, { by: 'olga', signer: ops });
  await eventually(async () => (await bed.client.status(runId)).paused, 10_000, 'the pause');
  await bed.client.rollback(runId, { by: 'olga', reason: 'wrong customer', signer: ops });
  expect(await bed.client.result(runId)).toMatchObject({ status: 'rolled_back' });
  await bed.stopWorker();
  await bed.startWorker();
  const check = await bed.client.verifyAuditTrail(runId);
  expect(check.problem).toBeUndefined();
  expect(check.ok).toBe(true);
}, 120_000);
