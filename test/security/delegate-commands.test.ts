/**
 * Signed operator commands reach a delegating run's delegates: a resume or rollback an operator
 * signed for the delegating run is passed on to its delegates, whose worker counts it because the
 * run it names is in the delegate's sealed lineage. On the code before, the delegate's worker
 * refused it ("activity input not made for this run": the verification named the delegating run),
 * so a signed resume left the delegate paused and a signed rollback left it running.
 */
import { DecisionSigner } from '../../src/approvals/signing-keys';
import { generateSigningKey, parsePolicy, type Keyring } from '../../src/governance';
import { delegatingAgent, effects } from '../fixtures/test-agents';
import { createTestBed, eventually, financeApprovalPolicy, type TestBed } from '../helpers';

const opsKey = generateSigningKey();
/** The operators' key: olga, with the operator role. */
const ops = new DecisionSigner({ keyId: 'ops', ...opsKey });
const keyring: Keyring = { ops: { publicKey: opsKey.publicKey, channel: 'cli', people: { olga: [] }, roles: ['operator'], revoked: false } };

/** test-boss delegates freely; its delegate (test-agent, under the worker's policy) moves $5 and waits for finance on $500. */
const bossPolicy = parsePolicy({ agent: 'test-boss', tools: { echo: {}, 'agent:test-agent': {} }, rules: [{ id: 'allow-all', decision: 'allow' }] }, 'boss policy');
const delegatePolicy = financeApprovalPolicy();
delegatePolicy.rules.unshift({ id: 'small-transfers', tools: ['transfer'], when: 'args.amount < 10', decision: 'allow', reason: 'small' });
const delegateScript = [{ toolCalls: [{ name: 'transfer', args: { amount: 5, to: 'bob' } }] }, { toolCalls: [{ name: 'transfer', args: { amount: 500, to: 'bob' } }] }, { text: 'paid' }];

let bed: TestBed;
beforeAll(async () => {
  bed = await createTestBed({ keyring, agents: [delegatingAgent], policies: [delegatePolicy] });
});
afterAll(async () => bed?.close());
beforeEach(() => effects.reset());

const trail = (runId: string) => bed.client.auditTrail(runId, bed.store);

/** A delegating run whose delegate moved $5 and waits for finance. */
async function delegating(): Promise<{ runId: string; childId: string }> {
  const runId = await bed.client.startRun({ agent: 'test-boss', goal: 'have bob paid', requester: 'carol', policy: bossPolicy, script: [{ toolCalls: [{ name: 'agent__test-agent', args: { goal: 'pay bob' }, script: delegateScript }] }, { text: 'done' }] });
  const childId = `${runId.replace('warden/test-boss/', 'warden/test-agent/')}.d2`;
  await eventually(async () => (await bed.client.pendingApprovals(childId))[0], 30_000, "the delegate's pending approval");
  return { runId, childId };
}

test('a resume signed for the delegating run resumes its delegate too', async () => {
  const { runId, childId } = await delegating();
  await bed.client.pause(runId, { by: 'olga', reason: 'looking', signer: ops });
  await eventually(async () => (await bed.client.status(childId)).paused, 20_000, 'the delegate to pause');
  await bed.client.resume(runId, { by: 'olga', signer: ops });
  await eventually(async () => !(await bed.client.status(childId)).paused, 20_000, 'the delegate to resume');
  expect((await trail(childId)).find((e) => e.type === 'resumed')?.data).toMatchObject({ by: 'olga' });
  expect((await trail(childId)).filter((e) => e.type === 'resume_refused')).toEqual([]);
  expect((await bed.client.status(runId)).paused).toBe(false);
  await bed.client.cancel(runId);
  expect(await bed.client.result(runId)).toMatchObject({ status: 'cancelled' });
}, 120_000);

test('a rollback signed for the delegating run rolls its running delegate back', async () => {
  const { runId, childId } = await delegating();
  await bed.client.rollback(runId, { by: 'olga', reason: 'wrong payee', signer: ops });
  await eventually(async () => (await bed.client.status(childId)).outcome, 30_000, 'the delegate to end');
  expect(await bed.client.result(childId)).toMatchObject({ status: 'rolled_back', rollback: { undone: [{ tool: 'transfer' }] } });
  expect(await bed.client.result(runId)).toMatchObject({ status: 'rolled_back' });
  expect(effects.compensated).toHaveLength(1);
  expect((await trail(childId)).filter((e) => e.type === 'operator_refused')).toEqual([]);
}, 120_000);
