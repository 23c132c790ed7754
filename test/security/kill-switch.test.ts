/**
 * An agent's kill switch holds at the worker: the console refuses to resume a stopped agent's
 * runs, but a correctly signed resume sent straight through Temporal (`warden resume`, or the
 * signal with a signature) went past it and the run went on. The resume test ran that way on the
 * code before the worker checked the switch.
 */
import { DecisionSigner } from '../../src/approvals/signing-keys';
import { generateSigningKey, parsePolicy, type Keyring } from '../../src/governance';
import { delegatingAgent, effects } from '../fixtures/test-agents';
import { createTestBed, eventually, financeApprovalPolicy, type TestBed } from '../helpers';

const opsKey = generateSigningKey();
/** The operators' key: olga, with the operator role. */
const ops = new DecisionSigner({ keyId: 'ops', ...opsKey });
const keyring: Keyring = { ops: { publicKey: opsKey.publicKey, channel: 'cli', people: { olga: [] }, roles: ['operator'], revoked: false } };

let bed: TestBed;
beforeAll(async () => {
  // test-boss delegates to test-agent, whose policy (transfers wait for finance) the worker loads for its delegates.
  bed = await createTestBed({ keyring, agents: [delegatingAgent], policies: [financeApprovalPolicy()] });
});
afterAll(async () => bed?.close());
beforeEach(() => effects.reset());
// Each test starts its run with the switch lifted, whatever the test before left.
afterEach(async () => {
  if ((await bed.store.killSwitch('test-agent'))?.engaged) await bed.store.setKillSwitch('test-agent', { engaged: false, by: 'test', reason: 'test over' });
});

const trail = (runId: string) => bed.client.auditTrail(runId, bed.store);

/** A run that moved $5 (compensable) and waits for finance on $500, stopped as the console stops it: switch engaged, run paused. */
async function stoppedRun(): Promise<string> {
  const policy = financeApprovalPolicy();
  policy.rules.unshift({ id: 'small-transfers', tools: ['transfer'], when: 'args.amount < 10', decision: 'allow', reason: 'small' });
  const runId = await bed.client.startRun({
    agent: 'test-agent',
    goal: 'pay',
    requester: 'carol',
    policy,
    script: [{ toolCalls: [{ name: 'transfer', args: { amount: 5, to: 'bob' } }] }, { toolCalls: [{ name: 'transfer', args: { amount: 500, to: 'bob' } }] }, { text: 'done' }],
  });
  await eventually(async () => (await bed.client.pendingApprovals(runId))[0], 20_000, 'a pending approval');
  await bed.store.setKillSwitch('test-agent', { engaged: true, by: 'olga', reason: 'it pays the wrong people' });
  await bed.client.pause(runId, { by: 'olga', reason: 'kill switch: it pays the wrong people', signer: ops });
  await eventually(async () => (await bed.client.status(runId)).paused, 20_000, 'the pause');
  expect((await trail(runId)).find((e) => e.type === 'paused')?.data).toMatchObject({ by: 'olga' });
  return runId;
}

test("a signed resume of a stopped agent's run is refused and audited with why; once the switch is lifted it resumes", async () => {
  const runId = await stoppedRun();
  const switchAt = (await bed.store.killSwitch('test-agent'))?.at ?? '';
  await bed.client.resume(runId, { by: 'olga', signer: ops });
  const refused = await eventually(async () => (await trail(runId)).find((e) => e.type === 'resume_refused'), 20_000, 'the resume refused');
  expect(refused.data).toMatchObject({ action: 'resume', by: 'olga' });
  const reason = String(refused.data.reason);
  expect(reason).toContain('agent test-agent is stopped by its kill switch');
  expect(reason).toContain(`engaged by olga at ${switchAt}: it pays the wrong people`);
  expect(reason).toContain('lifts the switch');
  expect(reason).toContain('/console/agents');
  const status = await bed.client.status(runId);
  expect(status.paused).toBe(true);
  expect(status.outcome).toBeNull();
  expect((await trail(runId)).some((e) => e.type === 'resumed')).toBe(false);

  await bed.store.setKillSwitch('test-agent', { engaged: false, by: 'olga', reason: 'payee list fixed' });
  await bed.client.resume(runId, { by: 'olga', signer: ops });
  await eventually(async () => !(await bed.client.status(runId)).paused, 20_000, 'the resume');
  expect((await trail(runId)).find((e) => e.type === 'resumed')?.data).toMatchObject({ by: 'olga' });
  await bed.client.rollback(runId, { by: 'olga', reason: 'test over', signer: ops });
  expect(await bed.client.result(runId)).toMatchObject({ status: 'rolled_back' });
}, 120_000);

test("a signed rollback of a stopped agent's run still counts: it asks for a safer state", async () => {
  const runId = await stoppedRun();
  await bed.client.rollback(runId, { by: 'olga', reason: 'undo what it paid', signer: ops });
  const outcome = await bed.client.result(runId);
  expect(outcome).toMatchObject({ status: 'rolled_back', reason: 'rolled back by olga: undo what it paid' });
  expect(effects.compensated).toHaveLength(1);
  expect((await trail(runId)).filter((e) => e.type === 'operator_refused' || e.type === 'resume_refused')).toEqual([]);
}, 120_000);

test("a delegating run's signed resume lets it go on, but not its delegate whose agent is stopped", async () => {
  const bossPolicy = parsePolicy({ agent: 'test-boss', tools: { echo: {}, 'agent:test-agent': {} }, rules: [{ id: 'allow-all', decision: 'allow' }] }, 'boss policy');
  const delegateScript = [{ toolCalls: [{ name: 'transfer', args: { amount: 500, to: 'bob' } }] }, { text: 'paid' }];
  const runId = await bed.client.startRun({ agent: 'test-boss', goal: 'have bob paid', requester: 'carol', policy: bossPolicy, script: [{ toolCalls: [{ name: 'agent__test-agent', args: { goal: 'pay bob 500' }, script: delegateScript }] }, { text: 'done' }] });
  const childId = `${runId.replace('warden/test-boss/', 'warden/test-agent/')}.d2`;
  await eventually(async () => (await bed.client.pendingApprovals(childId))[0], 30_000, "the delegate's pending approval");
  // Only the delegate's agent is stopped; pausing the delegating run pauses its delegate too.
  await bed.store.setKillSwitch('test-agent', { engaged: true, by: 'olga', reason: 'it pays the wrong people' });
  await bed.client.pause(runId, { by: 'olga', reason: 'looking', signer: ops });
  await eventually(async () => (await bed.client.status(childId)).paused, 20_000, 'the delegate to pause');
  // The resume signed for the delegating run reaches the delegate too: it counts there only for a running agent.
  await bed.client.resume(runId, { by: 'olga', signer: ops });
  await eventually(async () => !(await bed.client.status(runId)).paused, 20_000, 'the delegating run to resume');
  const refused = await eventually(async () => (await trail(childId)).find((e) => e.type === 'resume_refused'), 20_000, "the delegate's refusal");
  expect(String(refused.data.reason)).toContain('agent test-agent is stopped by its kill switch (engaged by olga at ');
  expect((await bed.client.status(childId)).paused).toBe(true);
  expect((await trail(runId)).some((e) => e.type === 'resume_refused')).toBe(false);
  await bed.client.cancel(runId);
  expect(await bed.client.result(runId)).toMatchObject({ status: 'cancelled' });
  expect(effects.count('transfer')).toBe(0);
}, 120_000);

test("on a development worker that counts unsigned operator commands, an unsigned resume of a stopped agent's run is refused too", async () => {
  const dev = await createTestBed({ allowUnsignedOperators: true });
  try {
    const policy = financeApprovalPolicy();
    const runId = await dev.client.startRun({ agent: 'test-agent', goal: 'pay', requester: 'carol', policy, script: [{ toolCalls: [{ name: 'transfer', args: { amount: 500, to: 'bob' } }] }, { text: 'done' }] });
    await eventually(async () => (await dev.client.pendingApprovals(runId))[0], 20_000, 'a pending approval');
    await dev.store.setKillSwitch('test-agent', { engaged: true, by: 'olga', reason: 'it pays the wrong people' });
    await dev.client.pause(runId, { by: 'olga' });
    await eventually(async () => (await dev.client.status(runId)).paused, 20_000, 'the pause');
    await dev.client.resume(runId, { by: 'olga' });
    const refused = await eventually(async () => (await dev.client.auditTrail(runId, dev.store)).find((e) => e.type === 'resume_refused'), 20_000, 'the resume refused');
    expect(String(refused.data.reason)).toContain('agent test-agent is stopped by its kill switch (engaged by olga at ');
    expect((await dev.client.status(runId)).paused).toBe(true);
    await dev.store.setKillSwitch('test-agent', { engaged: false, by: 'olga', reason: 'fixed' });
    await dev.client.resume(runId, { by: 'olga' });
    await eventually(async () => !(await dev.client.status(runId)).paused, 20_000, 'the resume');
    await dev.client.cancel(runId);
  } finally {
    await dev.close();
  }
}, 120_000);
