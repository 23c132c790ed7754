/**
 * Attacks by someone who can reach Temporal (UI, `temporal` CLI, an SDK client) but holds none of
 * the worker's configuration. Each test is one attack; each failed on the code before the
 * security model of docs/security.md was enforced.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { defineAgent, defineTool } from '../../src/agents';
import { DecisionSigner } from '../../src/approvals/signing-keys';
import { AGENT_RUN_WORKFLOW, runIdFor } from '../../src/config';
import { generateSigningKey, nextAuditEvent, type Keyring, type Policy } from '../../src/governance';
import type { DecisionReply } from '../../src/workflows/messages';
import type { PendingApproval } from '../../src/workflows/run-types';
import { forgedCarried } from '../fixtures/forged-state';
import { effects, testAgent } from '../fixtures/test-agents';
import { createTestBed, eventually, financeApprovalPolicy, testPolicy, type TestBed } from '../helpers';

const webKey = generateSigningKey();
const web = new DecisionSigner({ keyId: 'sec-web', privateKey: webKey.privateKey, publicKey: webKey.publicKey });
const aliceKey = generateSigningKey();
const aliceCli = new DecisionSigner({ keyId: 'cli-alice', privateKey: aliceKey.privateKey, publicKey: aliceKey.publicKey });
const attackerKey = generateSigningKey();

const keyring: Keyring = {
  'sec-web': { publicKey: webKey.publicKey, channel: 'web', people: '*', revoked: false },
  'cli-alice': { publicKey: aliceKey.publicKey, channel: 'cli', people: { alice: ['finance'] }, roles: ['operator', 'policy-admin'], revoked: false },
};

/** Lower-cases and trims its payee: the value the policy must judge is the one the tool gets. */
const pay = defineTool({
  name: 'pay',
  description: 'Pays a payee',
  input: z.object({ payee: z.string().trim().toLowerCase(), amount: z.number() }),
  run: ({ payee, amount }, ctx) => {
    effects.log.push({ tool: 'pay', args: { payee, amount }, key: ctx.idempotencyKey });
    return { paid: payee };
  },
});
const payAgent = defineAgent({ name: 'pay-agent', instructions: 'Pays.', model: 'scripted', tools: [pay] });

/** A model (in the worker's own definition) that proposes 1.1 MB of arguments, then answers 5 MB of text. */
const bigAgent = defineAgent({
  name: 'big-agent',
  instructions: 'Talks a lot.',
  model: { provider: 'scripted', script: [{ toolCalls: [{ name: 'echo', args: { text: 'x'.repeat(1_100_000) } }] }, { text: 'y'.repeat(5 * 1024 * 1024) }] },
  tools: testAgent.tools,
});

const payPolicy = (): Policy =>
  testPolicy({
    agent: 'pay-agent',
    tools: { pay: {} },
    rules: [
      { id: 'never-mallory', tools: ['pay'], when: "args.payee == 'mallory'", decision: 'deny', reason: 'sanctioned payee' },
      { id: 'allow-rest', decision: 'allow' },
    ],
  });

const bigPolicy = (): Policy => testPolicy({ agent: 'big-agent' });

let bed: TestBed;
beforeAll(async () => {
  // The production posture: policies from the worker only, signed decisions only.
  bed = await createTestBed({ agents: [testAgent, payAgent, bigAgent], policies: [financeApprovalPolicy(), payPolicy(), bigPolicy()], keyring: () => keyring, acceptRunInputPolicy: false });
});
afterAll(async () => {
  await bed?.close();
});
beforeEach(() => effects.reset());

const transferTurn = (amount = 450, id?: string) => ({ toolCalls: [{ name: 'transfer', args: { amount, to: 'acct-9', pin: '4321' }, ...(id ? { id } : {}) }] });

async function waitingRun(options: { requester?: string; script?: object[]; on?: TestBed } = {}): Promise<{ runId: string; approval: PendingApproval }> {
  const on = options.on ?? bed;
  const runId = await on.client.startRun({ agent: 'test-agent', goal: 'pay the invoice', requester: options.requester ?? 'carol', script: (options.script ?? [transferTurn(), { text: 'done' }]) });
  const approval = await eventually(async () => (await on.client.pendingApprovals(runId))[0], 20_000, 'a pending approval');
  return { runId, approval };
}

function signedBy(signer: DecisionSigner, runId: string, approval: PendingApproval, approver: string, extra: { groups?: string[]; channel?: string; note?: string; decision?: 'approve' | 'reject' } = {}) {
  return signer.sign({ approvalId: approval.approvalId, runId, decision: extra.decision ?? 'approve', approver, groups: extra.groups ?? ['finance'], channel: extra.channel ?? 'web', ...(extra.note ? { note: extra.note } : {}) });
}

function refused(reply: DecisionReply): string {
  if (reply.status !== 'refused') throw new Error(`expected a refusal, got ${JSON.stringify(reply)}`);
  return reply.reason;
}

async function toolMessage(runId: string, seq: number, on = bed): Promise<string> {
  const rows = (await on.store.readMessages(runId, seq + 1)) as { content: { output: { value: unknown } }[] }[];
  return JSON.stringify(rows[seq]?.content[0]?.output.value);
}

describe('policies come only from the worker', () => {
  test('a policy sent by signal is never used, and cannot turn on unsigned decisions or add keys', async () => {
    const { runId, approval } = await waitingRun();
    const before = await bed.client.status(runId);
    const permissive = { ...financeApprovalPolicy(), rules: [{ id: 'anything-goes', decision: 'allow' }], allowUnsignedDecisions: true, trustedKeys: { 'sec-web': attackerKey.publicKey } };
    await bed.client.handle(runId).signal('applyPolicy', { policy: permissive, by: 'mallory' } as never);
    const forged = new DecisionSigner({ keyId: 'sec-web', privateKey: attackerKey.privateKey, publicKey: attackerKey.publicKey });
    expect(refused(await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'mallory', groups: ['finance'] }))).toContain('unsigned decision refused');
    expect(refused(await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice', signature: signedBy(forged, runId, approval, 'alice') }))).toContain('forged or altered');
    expect((await bed.client.status(runId)).policyVersion).toBe(before.policyVersion);
    await bed.client.cancel(runId);
    expect(effects.count('transfer')).toBe(0);
  });

  test('a run whose start input brings a policy fails, and nothing runs', async () => {
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'refund',
      requester: 'carol',
      policy: testPolicy({ rules: [{ id: 'anything-goes', decision: 'allow' }] }),
      script: [transferTurn(99_999), { text: 'done' }],
    });
    const outcome = await bed.client.result(runId);
    expect(outcome.status).toBe('failed');
    expect(outcome.reason).toContain('the start input brings a policy');
    expect(effects.count('transfer')).toBe(0);
  });

  test('run state carried in a start input (not a continue-as-new) is refused before anything runs', async () => {
    const runId = runIdFor('test-agent', `carried-${Date.now()}`);
    const fake = forgedCarried({ policy: testPolicy({ rules: [{ id: 'anything-goes', decision: 'allow' }] }), requester: 'carol', auditHash: '0'.repeat(64) });
    const handle = await bed.client.client.workflow.start(AGENT_RUN_WORKFLOW, {
      workflowId: runId,
      taskQueue: bed.taskQueue,
      args: [{ agent: 'test-agent', goal: 'x', requester: 'carol', script: [transferTurn(99_999)], carried: fake }],
    });
    const outcome = (await handle.result()) as { status: string; reason: string };
    expect(outcome.status).toBe('failed');
    expect(outcome.reason).toContain('accepted only from a continue-as-new');
    expect(effects.count('transfer')).toBe(0);
    expect(await bed.store.readAudit(runId)).toEqual([]);
  });
});

describe('a shadow policy comes only from the worker', () => {
  test('a start input or a signal cannot set or change the shadow policy', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-sec-shadow-'));
    const allowAll = path.join(dir, 'allow-all.yaml');
    writeFileSync(allowAll, JSON.stringify({ agent: 'test-agent', tools: { transfer: null }, rules: [{ id: 'anything-goes', decision: 'allow' }] }));
    const shadow = { file: allowAll };
    const runId = runIdFor('test-agent', `shadow-input-${Date.now()}`);
    // Every place a start input could carry it: top level, in a prepared run, in the run's own settings.
    await bed.client.client.workflow.start(AGENT_RUN_WORKFLOW, {
      workflowId: runId,
      taskQueue: bed.taskQueue,
      args: [{ agent: 'test-agent', goal: 'pay', requester: 'carol', script: [transferTurn(), { text: 'done' }], shadow, prepared: { shadow: { policy: testPolicy({ rules: [{ id: 'anything-goes', decision: 'allow' }] }), source: 'attacker' } } }],
    });
    await eventually(async () => (await bed.client.pendingApprovals(runId))[0], 20_000, 'a pending approval');
    expect((await bed.client.status(runId)).shadow).toBeNull();
    await bed.client.handle(runId).signal('applyPolicy', { by: 'mallory', shadow, policy: { ...financeApprovalPolicy(), shadow } } as never);
    const status = await eventually(async () => {
      const trail = await bed.client.auditTrail(runId, bed.store);
      // An unsigned applyPolicy does not count at all now; either way the signal's policy and shadow are never used.
      return trail.some((e) => e.type === 'policy_applied' || (e.type === 'operator_refused' && e.data.action === 'applyPolicy')) ? bed.client.status(runId) : undefined;
    }, 20_000, 'the applyPolicy signal handled');
    expect(status.shadow).toBeNull();
    expect(status.pendingApprovals).toBe(1);
    const trail = await bed.client.auditTrail(runId, bed.store);
    expect(trail.some((e) => e.type === 'policy_shadow_diff')).toBe(false);
    expect(trail.find((e) => e.type === 'run_started')?.data).not.toHaveProperty('shadowSource');
    await bed.client.cancel(runId);
    expect(effects.count('transfer')).toBe(0);
  });
});

describe('identities are verified and compared normalised', () => {
  test.each(['Alice', 'alice ', 'alice\u200b', 'ａｌｉｃｅ', '\u0430lice'])('requester %j cannot approve her own run as alice', async (requester) => {
    const { runId, approval } = await waitingRun({ requester });
    expect(refused(await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice', signature: signedBy(web, runId, approval, 'alice') }))).toContain('four-eyes');
    await bed.client.cancel(runId);
    expect(effects.count('transfer')).toBe(0);
  });

  test("a person's key asserts only that person, in at most their groups; groups come from its directory", async () => {
    const { runId, approval } = await waitingRun();
    const asCli = (approver: string, groups: string[]) => signedBy(aliceCli, runId, approval, approver, { groups, channel: 'cli' });
    expect(refused(await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'nobody', signature: asCli('nobody', ['finance']) }))).toContain('may not assert nobody');
    expect(refused(await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice', signature: asCli('alice', ['finance', 'finance-leads']) }))).toContain('may not assert group(s) finance-leads');
    expect(await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice', signature: asCli('alice', []) })).toMatchObject({ status: 'accepted', decided: true, approver: 'alice' });
    expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 1 });
  });

  test('a signed start makes the requester verified; an unsigned one is marked unverified', async () => {
    const signedRun = await bed.client.startRun({ agent: 'test-agent', goal: 'g', requester: 'alice', script: [{ text: 'done' }], signer: aliceCli, channel: 'cli' });
    const unsignedRun = await bed.client.startRun({ agent: 'test-agent', goal: 'g', requester: 'alice', script: [{ text: 'done' }] });
    const overreach = await bed.client.startRun({ agent: 'test-agent', goal: 'g', requester: 'bob', script: [{ text: 'done' }], signer: aliceCli, channel: 'cli' });
    await Promise.all([signedRun, unsignedRun, overreach].map((id) => bed.client.result(id)));
    const started = async (id: string) => (await bed.store.readAudit(id)).find((e) => e.type === 'run_started')?.data;
    expect(await started(signedRun)).toMatchObject({ requester: 'alice', requesterVerified: true, requesterChannel: 'cli' });
    expect(await started(unsignedRun)).toMatchObject({ requester: 'alice', requesterVerified: false });
    expect(await started(overreach)).toMatchObject({ requester: 'bob', requesterVerified: false });
    expect(String((await started(overreach))?.requesterUnverified)).toContain('may not assert bob');
  });

  test('a key revoked in the worker configuration stops counting for runs already waiting', async () => {
    const { runId, approval } = await waitingRun();
    const grant = keyring['sec-web'];
    if (!grant) throw new Error('no sec-web grant');
    grant.revoked = true;
    try {
      expect(refused(await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice', signature: signedBy(web, runId, approval, 'alice') }))).toContain('revoked');
    } finally {
      grant.revoked = false;
    }
    await bed.client.cancel(runId);
    expect(effects.count('transfer')).toBe(0);
  });
});

describe('what widens a run needs a verified person', () => {
  test('a run its policy paused resumes only for a signed operator', async () => {
    const own = await createTestBed({ keyring });
    try {
      const same = Array.from({ length: 3 }, () => ({ toolCalls: [{ name: 'echo', args: { text: 'same' } }] }));
      const runId = await own.client.startRun({ agent: 'test-agent', goal: 'x', requester: 'carol', policy: testPolicy({ loop: { maxRepeats: 2, window: 5, action: 'pause' } }), script: [...same, { text: 'done' }] });
      await eventually(async () => (await own.client.status(runId)).paused, 20_000, 'the policy pause');
      await own.client.resume(runId, { by: 'mallory' });
      const refusedResume = await eventually(async () => (await own.client.auditTrail(runId, own.store)).find((e) => e.type === 'resume_refused'), 10_000, 'resume_refused');
      expect(String(refusedResume.data.reason)).toContain('signed by a trusted key with the operator role');
      expect((await own.client.status(runId)).paused).toBe(true);
      // A signature by a key that may not assert the operator is refused too.
      await own.client.resume(runId, { by: 'bob', signature: aliceCli.signOperator({ action: 'resume', runId, by: 'bob', channel: 'cli' }) });
      await eventually(async () => (await own.client.auditTrail(runId, own.store)).filter((e) => e.type === 'resume_refused').length === 2, 10_000, 'a second refusal');
      await own.client.resume(runId, { by: 'alice', signature: aliceCli.signOperator({ action: 'resume', runId, by: 'alice', channel: 'cli' }) });
      expect(await own.client.result(runId)).toMatchObject({ status: 'completed' });
      const resumed = (await own.client.auditTrail(runId, own.store)).find((e) => e.type === 'resumed');
      expect(resumed?.data).toMatchObject({ by: 'alice' });
    } finally {
      await own.close();
    }
  });
});

describe('approvals are bound to one call, one deadline, one signed text', () => {
  test('a signature cannot be replayed onto a later call with the same call id and arguments', async () => {
    const { runId, approval } = await waitingRun({ script: [transferTurn(450, 'c1'), transferTurn(450, 'c1'), { text: 'done' }] });
    const first = signedBy(web, runId, approval, 'alice');
    expect(await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice', signature: first })).toMatchObject({ status: 'accepted', decided: true });
    const second = await eventually(async () => (await bed.client.pendingApprovals(runId)).find((a) => a.approvalId !== approval.approvalId), 20_000, 'the second approval');
    expect(second.callId).toBe('c1');
    expect(refused(await bed.client.approve(runId, { approvalId: second.approvalId, approver: 'alice', signature: first }))).toContain(`signed decision is for approval ${approval.approvalId}`);
    await bed.client.cancel(runId);
    expect(effects.count('transfer')).toBe(1);
  });

  test('the comment is inside the signature: words cannot be added to a signed decision', async () => {
    const { runId, approval } = await waitingRun();
    const signature = signedBy(web, runId, approval, 'alice');
    expect(refused(await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice', comment: 'and send it twice', signature }))).toContain('not the one that was signed');
    const withNote = signedBy(web, runId, approval, 'alice', { note: 'ok' });
    expect(await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice', comment: 'ok', signature: withNote })).toMatchObject({ status: 'accepted' });
    await bed.client.result(runId);
  });

  test('after escalation only the escalation approvers count toward the quorum', async () => {
    const policy = financeApprovalPolicy({ quorum: 2, timeout: '2s', escalation: { approvers: ['group:leads'], timeout: '1m' } });
    const own = await createTestBed({ policies: [policy], keyring, acceptRunInputPolicy: false });
    try {
      const { runId, approval } = await waitingRun({ on: own });
      expect(await own.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice', signature: signedBy(web, runId, approval, 'alice') })).toMatchObject({ status: 'accepted', decided: false });
      await eventually(async () => (await own.client.pendingApprovals(runId))[0]?.escalated, 10_000, 'escalation');
      const lead = (who: string) => own.client.approve(runId, { approvalId: approval.approvalId, approver: who, signature: signedBy(web, runId, approval, who, { groups: ['leads'] }) });
      expect(await lead('lee')).toMatchObject({ status: 'accepted', decided: false });
      expect(await lead('lou')).toMatchObject({ status: 'accepted', decided: true });
      expect(await own.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 1 });
    } finally {
      await own.close();
    }
  });

  test('a policy change reaches a waiting approval: denied calls are cancelled, changed approvals are asked again', async () => {
    const own = await createTestBed({ policies: [financeApprovalPolicy()], keyring, acceptRunInputPolicy: false });
    try {
      // A change freeze: the waiting transfer is cancelled and the model told why.
      const frozen = await waitingRun({ on: own });
      await own.store.setAppliedPolicy('test-agent', { policy: testPolicy({ rules: [{ id: 'change-freeze', tools: ['transfer'], decision: 'deny', reason: 'change freeze' }, { id: 'allow-rest', decision: 'allow' }] }), version: 'freeze', source: 'test' });
      await own.client.applyPolicy(frozen.runId, { by: 'alice', signer: aliceCli });
      expect(await own.client.result(frozen.runId)).toMatchObject({ status: 'completed', toolCalls: 0 });
      expect(await toolMessage(frozen.runId, 2, own)).toContain('change freeze');
      expect(await toolMessage(frozen.runId, 2, own)).toContain('the policy changed while the call waited');
      expect(effects.count('transfer')).toBe(0);

      // Another approver: the old approval id no longer counts, the new one is asked for.
      await own.store.setAppliedPolicy('test-agent', { policy: financeApprovalPolicy({ approvers: ['user:bob'] }), version: 'bob', source: 'test' });
      const moved = await waitingRun({ on: own });
      await own.store.setAppliedPolicy('test-agent', { policy: financeApprovalPolicy({ approvers: ['user:dana'] }), version: 'dana', source: 'test' });
      await own.client.applyPolicy(moved.runId, { by: 'alice', signer: aliceCli });
      const asked = await eventually(async () => (await own.client.pendingApprovals(moved.runId)).find((a) => a.approvalId !== moved.approval.approvalId), 10_000, 'the new approval');
      expect(asked.approvers).toEqual(['user:dana']);
      expect(refused(await own.client.approve(moved.runId, { approvalId: moved.approval.approvalId, approver: 'bob', signature: signedBy(web, moved.runId, moved.approval, 'bob') }))).toContain('superseded');
      expect(await own.client.approve(moved.runId, { approvalId: asked.approvalId, approver: 'dana', signature: signedBy(web, moved.runId, asked, 'dana') })).toMatchObject({ status: 'accepted', decided: true });
      expect(await own.client.result(moved.runId)).toMatchObject({ status: 'completed', toolCalls: 1 });
    } finally {
      await own.close();
    }
  });
});

describe('what is judged is what runs', () => {
  test('the policy judges the arguments as the tool schema makes them, and the tool gets exactly those', async () => {
    const denied = await bed.client.startRun({ agent: 'pay-agent', goal: 'pay', requester: 'carol', script: [{ toolCalls: [{ name: 'pay', args: { payee: ' Mallory ', amount: 5 } }] }, { text: 'done' }] });
    expect(await bed.client.result(denied)).toMatchObject({ status: 'completed', toolCalls: 0 });
    expect(await toolMessage(denied, 2)).toContain('rule never-mallory');
    const allowed = await bed.client.startRun({ agent: 'pay-agent', goal: 'pay', requester: 'carol', script: [{ toolCalls: [{ name: 'pay', args: { payee: ' Bob ', amount: 5 } }] }, { text: 'done' }] });
    await bed.client.result(allowed);
    expect(effects.log.filter((e) => e.tool === 'pay').map((e) => e.args)).toEqual([{ payee: 'bob', amount: 5 }]);
    const proposed = (await bed.store.readAudit(allowed)).find((e) => e.type === 'call_proposed');
    expect(proposed?.data.args).toEqual({ payee: 'bob', amount: 5 });
  });

  test('two calls sharing a model call id get their own idempotency keys: the second is not answered with the first one\'s result', async () => {
    const runId = await bed.client.startRun({
      agent: 'pay-agent',
      goal: 'pay',
      requester: 'carol',
      script: [{ toolCalls: [{ id: 'same', name: 'pay', args: { payee: 'a', amount: 1 } }] }, { toolCalls: [{ id: 'same', name: 'pay', args: { payee: 'b', amount: 2 } }] }, { text: 'done' }],
    });
    await bed.client.result(runId);
    const paid = effects.log.filter((e) => e.tool === 'pay');
    expect(paid.map((e) => e.args)).toEqual([
      { payee: 'a', amount: 1 },
      { payee: 'b', amount: 2 },
    ]);
    expect(new Set(paid.map((e) => e.key)).size).toBe(2);
  });
});

describe('limits instead of crashes', () => {
  test('1 MB of proposed arguments and a 5 MB answer are refused or cut, and the run completes', async () => {
    const runId = await bed.client.startRun({ agent: 'big-agent', goal: 'talk', requester: 'carol' });
    const outcome = await bed.client.result(runId);
    expect(outcome.status).toBe('completed');
    expect(Buffer.byteLength(outcome.text)).toBeLessThanOrEqual(16 * 1024 + 3);
    expect(effects.count('echo')).toBe(0);
    expect(await toolMessage(runId, 2)).toContain('over the 64 KiB limit');
    const stored = (await bed.store.readMessages(runId, 4)) as { content: { text?: string }[] }[];
    expect(stored[3]?.content[0]?.text?.length).toBe(5 * 1024 * 1024);
  });

  test('a run Temporal terminates says terminated, in status and in the run list', async () => {
    const { runId } = await waitingRun();
    await bed.client.handle(runId).terminate('operator pulled the plug');
    expect((await bed.client.status(runId)).outcome).toMatchObject({ status: 'terminated' });
    const listed = await eventually(async () => (await bed.client.listRuns({ open: false, idPrefix: runId })).find((r) => r.runId === runId), 10_000, 'the run in visibility');
    expect(listed.status).toBe('terminated');
  });
});

describe('sensitive values and the audit anchor', () => {
  test('rollbackPlan shows arguments redacted', async () => {
    const own = await createTestBed({ keyring });
    try {
      const policy = testPolicy({ rules: [{ id: 'echo-waits', tools: ['echo'], decision: 'require_approval', approval: { approvers: ['user:bob'] } }, { id: 'allow-rest', decision: 'allow' }] });
      const runId = await own.client.startRun({ agent: 'test-agent', goal: 'x', requester: 'carol', policy, script: [transferTurn(5), { toolCalls: [{ name: 'echo', args: { text: 'wait' } }] }, { text: 'done' }] });
      const plan = await eventually(async () => {
        const p = await own.client.rollbackPlan(runId);
        return p.length > 0 ? p : undefined;
      }, 10_000, 'a rollback plan');
      expect(plan[0]?.args).toEqual({ amount: 5, to: 'acct-9', pin: '[redacted]' });
      await own.client.cancel(runId);
    } finally {
      await own.close();
    }
  });

  test('a run store rewritten with recomputed hashes fails verification, even with the worker down', async () => {
    const { runId, approval } = await waitingRun();
    await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice', signature: signedBy(web, runId, approval, 'alice') });
    await bed.client.result(runId);
    expect(await bed.client.verifyAuditTrail(runId, bed.store)).toMatchObject({ ok: true });

    await bed.stopWorker();
    try {
      // Rewrite who approved, and recompute every hash from there on so the chain holds together.
      const db = new Database(bed.storePath);
      const rows = (await bed.store.readAudit(runId));
      let head = { seq: 0, hash: '0'.repeat(64) };
      const rewritten = rows.map((e) => {
        const data = e.type === 'approval_accepted' ? { ...e.data, approver: 'mallory' } : e.data;
        const next = nextAuditEvent(head, e.type, data, e.at);
        head = { seq: next.seq, hash: next.hash };
        return next;
      });
      const update = db.prepare('UPDATE audit_events SET data = ?, prev_hash = ?, hash = ? WHERE run_id = ? AND seq = ?');
      for (const e of rewritten) update.run(JSON.stringify(e.data), e.prevHash, e.hash, runId, e.seq);
      db.close();

      const check = await bed.client.verifyAuditTrail(runId, bed.store);
      expect(check.ok).toBe(false);
      expect(check.problem).toContain('Temporal anchored');
    } finally {
      await bed.startWorker();
    }
  });
});
