import { DecisionSigner } from '../src/approvals/signing-keys';
import { generateSigningKey, verifyAuditChain, type AuditEvent, type PolicyInput } from '../src/governance';
import type { DecisionReply } from '../src/workflows/messages';
import type { PendingApproval } from '../src/workflows/run-types';
import { effects } from './fixtures/test-agents';
import { createTestBed, eventually, testPolicy, type TestBed } from './helpers';

const key = generateSigningKey();
const signer = new DecisionSigner({ keyId: 'test-web', privateKey: key.privateKey, publicKey: key.publicKey });
const otherKey = generateSigningKey();
const forger = new DecisionSigner({ keyId: 'test-web', privateKey: otherKey.privateKey, publicKey: otherKey.publicKey });

const keyring = { 'test-web': { publicKey: key.publicKey, channel: 'web', people: '*' as const, revoked: false } };

// Most of these tests exercise the approval mechanics with unsigned decisions (as typed into the
// Temporal UI), which the worker counts only because this bed says so; `strict` is the default.
let bed: TestBed;
let strict: TestBed;
beforeAll(async () => {
  [bed, strict] = await Promise.all([createTestBed({ keyring, allowUnsignedDecisions: true, allowUnsignedOperators: true }), createTestBed({ keyring })]);
});
afterAll(async () => {
  await Promise.all([bed?.close(), strict?.close()]);
});
beforeEach(() => effects.reset());

type Approval = NonNullable<PolicyInput['rules']>[number]['approval'];

/** Transfers need approval; everything else is allowed. */
function approvalPolicy(approval: Approval = { approvers: ['group:finance', 'user:alice'] }, extra: Partial<PolicyInput> = {}) {
  return testPolicy({
    rules: [
      { id: 'transfers-need-approval', tools: ['transfer'], decision: 'require_approval', reason: 'money moves', approval },
      { id: 'allow-rest', decision: 'allow' },
    ],
    ...extra,
  });
}

const transferTurn = (amount = 50) => ({ toolCalls: [{ name: 'transfer', args: { amount, to: 'acct-9', pin: '1234' } }] });

async function startWaiting(policy = approvalPolicy(), script = [transferTurn(), { text: 'done' }], requester = 'carol', on = bed) {
  const runId = await on.client.startRun({ agent: 'test-agent', goal: 'pay', requester, policy, script });
  const [approval] = await eventually(async () => {
    const pending = await on.client.pendingApprovals(runId);
    return pending.length > 0 ? pending : undefined;
  }, 20_000, 'a pending approval');
  return { runId, approval: approval as PendingApproval };
}

async function auditOf(runId: string, on = bed): Promise<AuditEvent[]> {
  return on.client.auditTrail(runId, on.store);
}

async function refusals(runId: string, on = bed): Promise<string[]> {
  return (await auditOf(runId, on)).filter((e) => e.type === 'approval_refused').map((e) => String(e.data.reason));
}

async function waitForRefusal(runId: string, count: number, on = bed): Promise<string[]> {
  return eventually(async () => {
    const r = await refusals(runId, on);
    return r.length >= count ? r : undefined;
  }, 10_000, `${count} refusal(s)`);
}

/** The reason of a refused Update reply (fails the test if it was accepted). */
function refusedReason(reply: DecisionReply): string {
  if (reply.status !== 'refused') throw new Error(`expected a refusal, got ${JSON.stringify(reply)}`);
  return reply.reason;
}

describe('approvals', () => {
  test('a pending approval is visible, bound to the call, and redacts sensitive args', async () => {
    const { runId, approval } = await startWaiting();
    expect(approval).toMatchObject({ tool: 'transfer', ruleId: 'transfers-need-approval', approvers: ['group:finance', 'user:alice'], quorum: 1, requester: 'carol' });
    expect(approval.approvalId).toMatch(/^apr_[0-9a-f]{32}$/);
    expect(approval.args).toEqual({ amount: 50, to: 'acct-9', pin: '[redacted]' });
    const status = await bed.client.status(runId);
    expect(status).toMatchObject({ phase: 'awaiting_approval', pendingApprovals: 1 });
    expect(status.currentDetails).toContain('awaits approval');
    const desc = await bed.client.handle(runId).describe();
    expect(desc.searchAttributes.WardenStatus).toEqual(['awaiting_approval']);
    await bed.client.cancel(runId);
  });

  test('approve lets the call run and the run completes', async () => {
    const { runId, approval } = await startWaiting();
    await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice', comment: 'fine' });
    const outcome = await bed.client.result(runId);
    expect(outcome).toMatchObject({ status: 'completed', toolCalls: 1 });
    expect(effects.count('transfer')).toBe(1);
    const decided = (await auditOf(runId)).find((e) => e.type === 'approval_decided');
    expect(decided?.data).toMatchObject({ decision: 'approved', by: 'alice' });
  });

  test('reject: nothing runs and the model is told who rejected it and why', async () => {
    const { runId, approval } = await startWaiting();
    await bed.client.reject(runId, { approvalId: approval.approvalId, approver: 'bob', groups: ['finance'], reason: 'wrong account' });
    const outcome = await bed.client.result(runId);
    expect(outcome.status).toBe('completed');
    expect(effects.count('transfer')).toBe(0);
    const messages = (await bed.store.readMessages(runId, 3)) as { content: { output: { value: string } }[] }[];
    expect(messages[2]?.content[0]?.output.value).toContain('rejected by bob: wrong account');
  });

  test('an expired approval fails closed', async () => {
    const { runId } = await startWaiting(approvalPolicy({ approvers: ['user:alice'], timeout: '1s' }));
    const outcome = await bed.client.result(runId);
    expect(outcome.status).toBe('completed');
    expect(effects.count('transfer')).toBe(0);
    expect((await auditOf(runId)).some((e) => e.type === 'approval_expired')).toBe(true);
    const messages = (await bed.store.readMessages(runId, 3)) as { content: { output: { value: string } }[] }[];
    expect(messages[2]?.content[0]?.output.value).toContain('expired with no decision (fails closed)');
  });

  test('escalation hands the approval to another group with a new deadline', async () => {
    const { runId, approval } = await startWaiting(approvalPolicy({ approvers: ['user:alice'], timeout: '1s', escalation: { approvers: ['group:leads'], timeout: '1m' } }));
    await eventually(async () => (await bed.client.pendingApprovals(runId))[0]?.escalated, 10_000, 'escalation');
    const late = await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice' });
    expect(refusedReason(late)).toContain('alice is not among the approvers (group:leads)');
    await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'lee', groups: ['leads'] });
    const outcome = await bed.client.result(runId);
    expect(outcome.status).toBe('completed');
    expect(effects.count('transfer')).toBe(1);
    expect((await refusals(runId))[0]).toContain('alice is not among the approvers (group:leads)');
  });

  test('quorum needs distinct approvers; a duplicate vote is refused', async () => {
    const { runId, approval } = await startWaiting(approvalPolicy({ approvers: ['group:finance'], quorum: 2 }));
    expect(await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'bob', groups: ['finance'] })).toMatchObject({ status: 'accepted', decided: false });
    // The same person spelled another way is still the same person.
    expect(refusedReason(await bed.client.approve(runId, { approvalId: approval.approvalId, approver: ' BOB', groups: ['finance'] }))).toContain('bob has already approved');
    expect(await bed.client.pendingApprovals(runId)).toHaveLength(1);
    expect(await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'dana', groups: ['finance'] })).toMatchObject({ status: 'accepted', decided: true, state: 'approved' });
    expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 1 });
    expect((await refusals(runId))[0]).toContain('bob has already approved');
  });

  test('four-eyes, approvers outside the policy, stale ids and decided approvals are refused, audited, and change nothing', async () => {
    const { runId, approval } = await startWaiting(approvalPolicy(), [transferTurn(), { text: 'done' }], 'alice');
    // Updates answer at once; what the validator refuses leaves no trace in history.
    expect(refusedReason(await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice' }))).toContain('four-eyes: alice requested this run');
    expect(refusedReason(await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'mallory', groups: ['support'] }))).toContain('mallory is not among the approvers');
    expect(refusedReason(await bed.client.approve(runId, { approvalId: 'apr_' + '0'.repeat(32), approver: 'bob', groups: ['finance'] }))).toContain('no approval apr_000');
    expect(refusedReason(await bed.client.approve(runId, { approvalId: approval.approvalId } as never))).toContain('malformed decision');
    // Signals, as the Temporal UI sends them, are refused and audited the same way.
    await bed.client.signalApprove(runId, { approvalId: approval.approvalId, approver: 'alice' });
    await bed.client.handle(runId).signal('approve', 'not an object' as never);
    const reasons = await waitForRefusal(runId, 4);
    expect(reasons[0]).toContain('four-eyes: alice requested this run');
    expect(reasons[1]).toContain('mallory is not among the approvers');
    // The two signals race: the malformed one is refused at once, alice's after the worker verified her.
    expect(reasons.slice(2).some((r) => r.includes('four-eyes: alice requested this run'))).toBe(true);
    expect(reasons.slice(2).some((r) => r.includes('malformed decision'))).toBe(true);
    expect(await bed.client.pendingApprovals(runId)).toHaveLength(1);
    expect(effects.count('transfer')).toBe(0);
    await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'bob', groups: ['finance'] });
    await bed.client.result(runId);
    await bed.client.reject(runId, { approvalId: approval.approvalId, approver: 'bob', groups: ['finance'] }).catch(() => undefined);
    expect(effects.count('transfer')).toBe(1);
  });

  test('a decision for an already-decided approval is refused', async () => {
    const { runId, approval } = await startWaiting(approvalPolicy(), [transferTurn(), transferTurn(60), { text: 'done' }]);
    await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice' });
    await eventually(async () => (await bed.client.pendingApprovals(runId)).find((a) => a.approvalId !== approval.approvalId), 10_000, 'second approval');
    expect(refusedReason(await bed.client.reject(runId, { approvalId: approval.approvalId, approver: 'bob', groups: ['finance'] }))).toContain('is already approved');
    await bed.client.cancel(runId);
  });

  test('parallel approvals are decided on their own', async () => {
    const script = [{ toolCalls: [{ name: 'transfer', args: { amount: 1, to: 'a' } }, { name: 'transfer', args: { amount: 2, to: 'b' } }, { name: 'echo', args: { text: 'x' } }] }, { text: 'done' }];
    const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'pay', requester: 'carol', policy: approvalPolicy(), script });
    const pending = await eventually(async () => {
      const p = await bed.client.pendingApprovals(runId);
      return p.length === 2 ? p : undefined;
    }, 20_000, 'two approvals');
    // The allowed sibling runs while both transfers wait.
    await eventually(async () => effects.count('echo') === 1, 10_000, 'the allowed echo to run');
    const [first, second] = pending as [PendingApproval, PendingApproval];
    expect(first.approvalId).not.toBe(second.approvalId);
    await bed.client.reject(runId, { approvalId: second.approvalId, approver: 'alice', reason: 'no' });
    await bed.client.approve(runId, { approvalId: first.approvalId, approver: 'alice' });
    expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 2 });
    expect(effects.log.filter((e) => e.tool === 'transfer').map((e) => e.args)).toEqual([{ amount: 1, to: 'a' }]);
  });

  test('an approval waits across a worker restart with no worker holding it', async () => {
    const { runId, approval } = await startWaiting();
    await bed.stopWorker();
    // With no worker, only a signal can be delivered (an Update needs a worker to answer it).
    await bed.client.signalApprove(runId, { approvalId: approval.approvalId, approver: 'alice' });
    await new Promise((r) => setTimeout(r, 500));
    expect(effects.count('transfer')).toBe(0);
    await bed.startWorker();
    expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 1 });
    expect(effects.count('transfer')).toBe(1);
  });
});

describe('signed decisions', () => {
  const signedPolicy = () => approvalPolicy({ approvers: ['group:finance'] });

  test('a decision signed by a trusted channel counts, with groups from the signature', async () => {
    const { runId, approval } = await startWaiting(signedPolicy(), undefined, undefined, strict);
    const signature = signer.sign({ approvalId: approval.approvalId, runId, decision: 'approve', approver: 'bob', groups: ['finance'], channel: 'web' });
    expect(await strict.client.approve(runId, { approvalId: approval.approvalId, approver: 'bob', signature })).toMatchObject({ status: 'accepted', decided: true });
    expect(await strict.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 1 });
    const accepted = (await auditOf(runId, strict)).find((e) => e.type === 'approval_accepted');
    expect(accepted?.data).toMatchObject({ approver: 'bob', groups: ['finance'], channel: 'web', signed: true, keyId: 'test-web' });
  });

  test('unsigned, forged, altered, expired, unknown-key and mismatched decisions are refused', async () => {
    const { runId, approval } = await startWaiting(signedPolicy(), undefined, undefined, strict);
    const claims = { approvalId: approval.approvalId, runId, decision: 'approve' as const, approver: 'bob', groups: ['finance'], channel: 'web' };
    const send = async (decision: Parameters<typeof strict.client.approve>[1]) => refusedReason(await strict.client.approve(runId, decision));
    expect(await send({ approvalId: approval.approvalId, approver: 'bob', groups: ['finance'] })).toContain('unsigned decision refused');
    expect(await send({ approvalId: approval.approvalId, approver: 'bob', signature: forger.sign(claims) })).toContain('forged or altered');
    const good = signer.sign({ ...claims, groups: ['support'] });
    expect(await send({ approvalId: approval.approvalId, approver: 'bob', signature: { ...good, payload: good.payload.replace('support', 'finance') } })).toContain('forged or altered');
    expect(await send({ approvalId: approval.approvalId, approver: 'bob', signature: signer.sign({ ...claims, issuedAt: new Date(Date.now() - 10 * 60_000).toISOString() }) })).toContain('decision expired');
    expect(await send({ approvalId: approval.approvalId, approver: 'bob', signature: { ...signer.sign(claims), keyId: 'nobody' } })).toContain('unknown signing key "nobody"');
    expect(await send({ approvalId: approval.approvalId, approver: 'bob', signature: signer.sign({ ...claims, decision: 'reject' }) })).toContain('signed decision says reject, the message says approve');
    expect(await send({ approvalId: approval.approvalId, approver: 'bob', signature: signer.sign({ ...claims, channel: 'slack' }) })).toContain('signs for channel web, not slack');
    expect((await waitForRefusal(runId, 7, strict)).length).toBe(7);
    expect(effects.count('transfer')).toBe(0);
    expect(await strict.client.pendingApprovals(runId)).toHaveLength(1);
    await strict.client.cancel(runId);
  });
});

describe('pause, resume, cancel', () => {
  test('pause before the next model call, sent by wire name as the Temporal UI does; resume continues', async () => {
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'x',
      requester: 'carol',
      policy: approvalPolicy(),
      script: [transferTurn(), { toolCalls: [{ name: 'echo', args: { text: 'after' } }] }, { text: 'done' }],
    });
    await eventually(async () => (await bed.client.pendingApprovals(runId)).length === 1, 20_000, 'approval');
    // The Temporal UI's Signal action sends the wire name with JSON input: the same path.
    await bed.client.handle(runId).signal('pause', { by: 'ops', reason: 'incident' });
    const [approval] = await bed.client.pendingApprovals(runId);
    await bed.client.approve(runId, { approvalId: approval?.approvalId ?? '', approver: 'alice' });
    const paused = await eventually(async () => {
      const s = await bed.client.status(runId);
      return s.phase === 'paused' ? s : undefined;
    }, 10_000, 'paused phase');
    expect(paused).toMatchObject({ paused: true });
    expect(effects.count('transfer')).toBe(0);
    expect((await bed.client.handle(runId).describe()).searchAttributes.WardenStatus).toEqual(['paused']);
    await bed.client.handle(runId).signal('resume', { by: 'ops' });
    expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 2 });
    const types = (await auditOf(runId)).map((e) => e.type);
    expect(types).toContain('paused');
    expect(types).toContain('resumed');
  });

  test('the loop breaker can pause the run for a human', async () => {
    const same = Array.from({ length: 3 }, () => ({ toolCalls: [{ name: 'echo', args: { text: 'same' } }] }));
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'x',
      requester: 'carol',
      policy: testPolicy({ loop: { maxRepeats: 2, window: 5, action: 'pause' } }),
      script: [...same, { text: 'done' }],
    });
    await eventually(async () => (await bed.client.status(runId)).paused, 20_000, 'policy pause');
    expect(effects.count('echo')).toBe(1);
    await bed.client.resume(runId, { by: 'ops' });
    expect(await bed.client.result(runId)).toMatchObject({ status: 'completed' });
    // Resuming resets the breaker: the repeat that paused the run and the next one both ran.
    expect(effects.count('echo')).toBe(3);
  });

  test('cancellation ends the run as cancelled after running nothing new', async () => {
    const { runId } = await startWaiting();
    await bed.client.cancel(runId);
    const outcome = await bed.client.result(runId);
    expect(outcome.status).toBe('cancelled');
    expect(effects.count('transfer')).toBe(0);
    expect((await auditOf(runId)).at(-1)?.data).toMatchObject({ status: 'cancelled' });
  });
});

describe('rollback', () => {
  test('rollback runs compensations newest first; a failing one is recorded and the rest go on', async () => {
    const script = [
      { toolCalls: [{ name: 'transfer', args: { amount: 10, to: 'a' } }] },
      { toolCalls: [{ name: 'undo_fails', args: { id: 'x' } }] },
      { toolCalls: [{ name: 'transfer', args: { amount: 20, to: 'b' } }, { name: 'echo', args: { text: 'noted' } }] },
      { toolCalls: [{ name: 'transfer', args: { amount: 999, to: 'c' } }] },
      { text: 'never' },
    ];
    const policy = testPolicy({
      rules: [
        { id: 'big-needs-approval', tools: ['transfer'], when: 'args.amount > 100', decision: 'require_approval', approval: { approvers: ['user:alice'] } },
        { id: 'allow-rest', decision: 'allow' },
      ],
    });
    const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'x', requester: 'carol', policy, script });
    await eventually(async () => (await bed.client.pendingApprovals(runId)).length === 1, 20_000, 'approval');
    const plan = await bed.client.rollbackPlan(runId);
    expect(plan.map((s) => `${s.tool}:${JSON.stringify(s.args)}`)).toEqual(['transfer:{"amount":20,"to":"b"}', 'undo_fails:{"id":"x"}', 'transfer:{"amount":10,"to":"a"}']);
    await bed.client.rollback(runId, { by: 'ops', reason: 'wrong customer' });
    const outcome = await bed.client.result(runId);
    expect(outcome.status).toBe('rolled_back');
    expect(outcome.reason).toContain('rolled back by ops: wrong customer');
    expect(outcome.rollback?.undone.map((u) => u.tool)).toEqual(['transfer', 'transfer']);
    expect(outcome.rollback?.failed).toEqual([expect.objectContaining({ tool: 'undo_fails', error: 'cannot undo: already shipped' })]);
    expect(outcome.rollback?.notUndoable.map((u) => u.tool)).toEqual(['echo']);
    expect(effects.compensated.map((c) => c.split(':').slice(0, 2).join(':'))).toEqual(['transfer:20', 'transfer:10']);
    // The compensation received the tool's stored result.
    expect(effects.compensated[0]).toContain('"transferred":20');
    expect(effects.count('transfer')).toBe(2);
  });

  test('a failed run is rolled back when the policy says so', async () => {
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'x',
      requester: 'carol',
      policy: testPolicy({ onToolFailure: 'fail_run', onRunFailure: 'rollback' }),
      script: [{ toolCalls: [{ name: 'transfer', args: { amount: 5, to: 'a' } }] }, { toolCalls: [{ name: 'broken', args: {} }] }, { text: 'never' }],
    });
    const outcome = await bed.client.result(runId);
    expect(outcome).toMatchObject({ status: 'rolled_back', rollback: { undone: [{ tool: 'transfer' }] } });
    expect(outcome.reason).toContain('broken failed');
  });
});

describe('audit trail and live policy', () => {
  test('the trail verifies end to end and a tampered event is detected', async () => {
    const { runId, approval } = await startWaiting();
    await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice' });
    await bed.client.result(runId);
    const trail = await auditOf(runId);
    expect(verifyAuditChain(trail)).toMatchObject({ ok: true, count: trail.length });
    const types = trail.map((e) => e.type);
    for (const t of ['run_started', 'model_turn', 'call_proposed', 'policy_decision', 'approval_requested', 'approval_accepted', 'approval_decided', 'tool_started', 'tool_succeeded', 'run_finished']) {
      expect(types).toContain(t);
    }
    // The sensitive pin is in no event's data (hashes are hex and may hold the digits by chance).
    expect(JSON.stringify(trail.map((e) => e.data))).not.toContain('1234');
    const query = await bed.client.handle(runId).query('auditTrail');
    expect((query as { events: AuditEvent[] }).events).toHaveLength(trail.length);
    const tampered = trail.map((e) => (e.type === 'approval_accepted' ? { ...e, data: { ...e.data, approver: 'mallory' } } : e));
    const broken = verifyAuditChain(tampered);
    expect(broken.ok).toBe(false);
    if (!broken.ok) expect(broken.reason).toContain('altered');
  });

  test('applyPolicy takes up the worker\'s current policy from the next decision; a policy inside the signal is never used', async () => {
    // A bed of its own: an applied policy in the store is what every new run of the agent gets.
    const own = await createTestBed({ acceptRunInputPolicy: false, policies: [testPolicy()], allowUnsignedOperators: true });
    try {
      // The pause is in history before any worker sees the run: it holds before the first call.
      await own.stopWorker();
      const runId = await own.client.startRun({
        agent: 'test-agent',
        goal: 'x',
        requester: 'carol',
        script: [{ toolCalls: [{ name: 'echo', args: { text: 'one' } }] }, { toolCalls: [{ name: 'echo', args: { text: 'two' } }] }, { text: 'done' }],
      });
      await own.client.pause(runId, { by: 'ops' });
      await own.startWorker();
      const before = await eventually(async () => {
        const s = await own.client.status(runId);
        return s.policyVersion ? s : undefined;
      }, 10_000, 'the run to load its policy');
      await own.client.handle(runId).signal('applyPolicy', { policy: testPolicy({ rules: [{ id: 'anything-goes', decision: 'allow' }] }), by: 'mallory' } as never);
      await eventually(async () => (await own.client.auditTrail(runId, own.store)).some((e) => e.type === 'policy_applied'), 10_000, "mallory's signal to be audited");
      const tightened = testPolicy({ rules: [{ id: 'no-echo', tools: ['echo'], decision: 'deny', reason: 'incident' }] });
      await own.store.setAppliedPolicy('test-agent', { policy: tightened, version: 'test', source: 'test' });
      await own.client.applyPolicy(runId, { by: 'ops' });
      await own.client.resume(runId);
      const outcome = await own.client.result(runId);
      expect(outcome.status).toBe('completed');
      expect(outcome.policyVersion).not.toBe(before.policyVersion);
      expect(effects.count('echo')).toBe(0);
      const applied = (await own.client.auditTrail(runId, own.store)).filter((e) => e.type === 'policy_applied');
      expect(applied[0]?.data).toMatchObject({ by: 'mallory', unchanged: true, ignored: 'a policy in the signal is never used' });
      expect(applied[1]?.data).toMatchObject({ from: before.policyVersion, to: outcome.policyVersion, by: 'ops' });
    } finally {
      await own.close();
    }
  });
});
