/**
 * Delegation: an agent hands a task to another agent, whose run is a child workflow governed by
 * its own policy and inside what the delegating run has left of its budgets. Real dev server,
 * real worker; the delegates' effects are counted by the test tools.
 */
import { z } from 'zod';
import { WorkflowNotFoundError } from '@temporalio/client';
import { AgentRegistry, defineAgent, defineTool } from '../src/agents';
import { AGENT_RUN_WORKFLOW } from '../src/config';
import { parsePolicy, verifyAuditChain, type AuditEvent, type PolicyInput } from '../src/governance';
import type { RunStatusView, ScriptTurn } from '../src/workflows/run-types';
import Database from 'better-sqlite3';
import { approvalMessage } from '../src/approvals/slack/blocks';
import { checkAudit, verifiedLine } from '../src/cli/support/audit-check';
import { delegationTree } from '../src/cli/runs';
import { nextAuditEvent } from '../src/governance';
import { recordCase } from '../src/eval/record';
import { echo, effects, transfer } from './fixtures/test-agents';
import { createTestBed, eventually, type TestBed } from './helpers';

/** A tool that waits until the test opens its gate (or its activity is cancelled). */
const gate = { open: false, started: 0, finished: 0 };
const slowPayment = defineTool({
  name: 'slow_payment',
  description: 'A payment that takes as long as the test says',
  input: z.object({ amount: z.number() }),
  retry: { maximumAttempts: 5, initialInterval: '200ms', backoffCoefficient: 1 },
  timeout: '30s',
  run: async ({ amount }, ctx) => {
    gate.started += 1;
    while (!gate.open) {
      if (ctx.signal.aborted) throw new Error('cancelled while waiting');
      await new Promise((r) => setTimeout(r, 50));
    }
    gate.finished += 1;
    return { paid: amount, key: ctx.idempotencyKey };
  },
});

const payments = defineAgent({ name: 'payments', description: 'moves money', instructions: 'You pay people.', model: 'scripted', tools: [echo, transfer, slowPayment] });
const triage = defineAgent({ name: 'triage', instructions: 'You route requests.', model: 'scripted', tools: [echo, transfer], delegates: [payments] });

/** The delegate's own policy, as the worker loads it: transfers over 100 wait for finance. */
const paymentsPolicy = parsePolicy(
  {
    agent: 'payments',
    tools: { echo: {}, transfer: {}, slow_payment: {} },
    rules: [
      { id: 'big-transfers', tools: ['transfer'], when: 'args.amount > 100', decision: 'require_approval', reason: 'finance looks first', approval: { approvers: ['group:finance'], timeout: '10m' } },
      { id: 'allow-rest', decision: 'allow' },
    ],
    pricing: { scripted: { inputPerMTok: 1, outputPerMTok: 1 } },
  },
  'payments policy',
);

function triagePolicy(overrides: Partial<PolicyInput> = {}) {
  return parsePolicy(
    {
      agent: 'triage',
      tools: { echo: {}, transfer: {}, 'agent:payments': {} },
      rules: [
        { id: 'no-wires', tools: ['agent:payments'], when: "args.goal.contains('wire')", decision: 'deny', reason: 'wires are not delegated' },
        { id: 'big-own-transfers', tools: ['transfer'], when: 'args.amount > 100', decision: 'require_approval', reason: 'finance looks first', approval: { approvers: ['group:finance'], timeout: '10m' } },
        { id: 'allow-rest', decision: 'allow' },
      ],
      pricing: { scripted: { inputPerMTok: 1, outputPerMTok: 1 } },
      ...overrides,
    },
    'triage policy',
  );
}

const delegateCall = (goal: string, script: ScriptTurn[], id = 'd1'): NonNullable<ScriptTurn['toolCalls']>[number] => ({ name: 'agent__payments', id, args: { goal }, script });
const usage = { inputTokens: 100, outputTokens: 10 };

let bed: TestBed;
let n = 0;
const key = () => `t${Date.now().toString(36)}-${++n}`;

beforeAll(async () => {
  bed = await createTestBed({ agents: [triage], policies: [paymentsPolicy, triagePolicy()], allowUnsignedDecisions: true, allowUnsignedOperators: true });
});
afterAll(() => bed.close());
beforeEach(() => effects.reset());

async function trail(runId: string): Promise<AuditEvent[]> {
  return bed.client.auditTrail(runId, bed.store);
}

async function toolMessage(runId: string, seq: number): Promise<unknown> {
  const [row] = (await bed.store.readMessages(runId, seq + 1, seq)) as { content: { output: { value: unknown } }[] }[];
  return row?.content[0]?.output.value;
}

async function start(script: ScriptTurn[], policy = triagePolicy()): Promise<string> {
  return bed.client.startRun({ agent: 'triage', goal: 'route this', requester: 'carol', key: key(), script, policy });
}

async function delegationOf(runId: string, index = 0): Promise<NonNullable<RunStatusView['delegations']>[number]> {
  return eventually(async () => (await bed.client.status(runId)).delegations?.[index], 20_000, 'the delegation to start');
}

test('the worker serves delegates and offers each as a tool governed as agent:<name>', () => {
  const registry = new AgentRegistry([triage]);
  expect(registry.list().map((a) => a.name)).toEqual(['triage', 'payments']);
  const tool = registry.spec('triage').tools.find((t) => t.delegate === 'payments');
  expect(tool).toMatchObject({ name: 'agent:payments', modelName: 'agent__payments', risk: 'medium' });
  expect(tool?.inputSchema).toMatchObject({ required: ['goal'] });
  // A delegation never runs as an activity.
  expect([...registry.tools().keys()]).not.toContain('agent:payments');
  expect(() => defineAgent({ name: 'x', instructions: 'x', model: 'scripted', tools: [], delegates: [payments, payments] })).toThrow(/delegates payments twice/);
  const other = defineAgent({ name: 'payments', instructions: 'another', model: 'scripted', tools: [] });
  expect(() => new AgentRegistry([triage, other])).toThrow(/two agents are named payments/);
});

test('an allowed delegation runs the delegate as a child run: its answer, linked trails, usage charged to both', async () => {
  const runId = await start([
    { toolCalls: [delegateCall('pay bob 20', [{ toolCalls: [{ name: 'transfer', args: { amount: 20, to: 'bob' } }], usage }, { text: 'paid bob $20', usage }])], usage },
    { text: 'bob is paid', usage },
  ]);
  const outcome = await bed.client.result(runId);
  expect(outcome).toMatchObject({ status: 'completed', text: 'bob is paid', steps: 4, toolCalls: 2, delegated: { steps: 2, toolCalls: 1, inputTokens: 200, outputTokens: 20 } });
  expect(outcome.usage).toMatchObject({ inputTokens: 400, outputTokens: 40 });
  expect(effects.count('transfer')).toBe(1);

  const childId = `${runId.replace('warden/triage/', 'warden/payments/')}.d2`;
  const status = await bed.client.status(runId);
  expect(status.delegations).toEqual([{ callId: 'd1', agent: 'payments', runId: childId, status: 'completed', reason: 'the agent finished' }]);
  const child = await bed.client.result(childId);
  expect(child).toMatchObject({ status: 'completed', text: 'paid bob $20', steps: 2, toolCalls: 1 });
  // Temporal knows it as the child of the delegating run.
  const desc = await bed.client.handle(childId).describe();
  expect(desc.parentExecution?.workflowId).toBe(runId);

  const parentTrail = await trail(runId);
  const childTrail = await trail(childId);
  expect(verifyAuditChain(parentTrail).ok).toBe(true);
  expect(verifyAuditChain(childTrail).ok).toBe(true);
  const finished = parentTrail.find((e) => e.type === 'delegation_finished');
  // The parent's trail holds the delegate's chain head: the delegate's trail cannot be rewritten unseen.
  expect(finished?.data).toMatchObject({ callId: 'd1', runId: childId, status: 'completed', audit: child.audit });
  expect(childTrail[childTrail.length - 1]).toMatchObject({ seq: child.audit.seq, hash: child.audit.hash });
  expect(parentTrail.find((e) => e.type === 'policy_decision')?.data).toMatchObject({ tool: 'agent:payments', decision: 'allow', ruleId: 'allow-rest' });
  expect(childTrail[0]?.data).toMatchObject({ agent: 'payments', requester: 'carol', delegatedBy: { runId, agent: 'triage', callId: 'd1' }, depth: 1 });
  // The model reads the delegate's answer as the call's result.
  expect(await toolMessage(runId, 2)).toEqual({ status: 'completed', answer: 'paid bob $20', run: childId });
});

test("the delegating run's policy can deny a delegation: no child run starts, the model is told", async () => {
  const runId = await start([{ toolCalls: [delegateCall('wire 5000 abroad', [{ toolCalls: [{ name: 'transfer', args: { amount: 1, to: 'x' } }] }])] }, { text: 'could not' }]);
  expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 0 });
  expect(await toolMessage(runId, 2)).toMatch(/^denied by policy \(rule no-wires\), nothing ran: wires are not delegated/);
  const childId = `${runId.replace('warden/triage/', 'warden/payments/')}.d2`;
  await expect(bed.client.handle(childId).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
  expect(effects.count('transfer')).toBe(0);
});

test("a delegate runs inside the delegating run's remaining budgets and is stopped at that ceiling; the parent is told", async () => {
  const policy = triagePolicy({ budgets: { maxToolCalls: 3, maxSteps: 10 } });
  const runId = await start(
    [
      { toolCalls: [{ name: 'echo', args: { text: 'first' } }] },
      {
        toolCalls: [
          delegateCall('pay three people', [
            { toolCalls: [{ name: 'transfer', args: { amount: 10, to: 'a' } }] },
            { toolCalls: [{ name: 'transfer', args: { amount: 11, to: 'b' } }] },
            { toolCalls: [{ name: 'transfer', args: { amount: 12, to: 'c' } }] },
            { text: 'paid all three' },
          ]),
        ],
      },
      { toolCalls: [{ name: 'echo', args: { text: 'one more' } }] },
      { text: 'stopped' },
    ],
    policy,
  );
  const outcome = await bed.client.result(runId);
  const childId = `${runId.replace('warden/triage/', 'warden/payments/')}.d4`;
  const child = await bed.client.result(childId);
  // echo and the delegation leave one tool call of three for the delegate.
  expect(child).toMatchObject({ status: 'budget_exhausted', toolCalls: 1, budget: { limit: 'maxToolCalls', used: 1, max: 1, inherited: true } });
  expect(child.reason).toBe("the delegating run's budget: tool call budget exhausted: used 1 of 1");
  expect(effects.count('transfer')).toBe(1);
  const childStart = (await trail(childId))[0];
  expect(childStart?.data.ceiling).toMatchObject({ maxToolCalls: 1, maxSteps: 8 });
  expect(await toolMessage(runId, 4)).toMatchObject({ status: 'budget_exhausted', reason: child.reason, run: childId });
  // The parent was charged the delegate's call: its own next call finds the budget spent.
  expect(outcome).toMatchObject({ status: 'budget_exhausted', toolCalls: 3, budget: { limit: 'maxToolCalls', used: 3, max: 3 } });
  expect(effects.count('echo')).toBe(1);
  const finished = (await trail(runId)).find((e) => e.type === 'delegation_finished');
  expect(finished?.data).toMatchObject({ status: 'budget_exhausted', stoppedByCeiling: 'maxToolCalls', used: { toolCalls: 1 } });
});

test('an approval inside a delegate names the delegating run; pause reaches the delegate; approving finishes both', async () => {
  const runId = await start([{ toolCalls: [delegateCall('pay dora 500', [{ toolCalls: [{ name: 'transfer', args: { amount: 500, to: 'dora' } }] }, { text: 'paid dora' }])] }, { text: 'dora is paid' }]);
  const { runId: childId } = await delegationOf(runId);
  const [pending] = await eventually(async () => {
    const list = await bed.client.pendingApprovals(childId);
    return list.length > 0 ? list : null;
  });
  expect(pending).toMatchObject({ tool: 'transfer', requester: 'carol', delegatedBy: { runId, agent: 'triage', callId: 'd1' } });
  expect((await bed.client.status(childId)).delegatedBy).toEqual({ runId, agent: 'triage', callId: 'd1' });
  // `warden status` prints the tree, with the delegate's own state.
  expect(await delegationTree(bed.client, await bed.client.status(runId), '  ')).toEqual([`  └─ payments ${childId}  awaiting_approval: step 1: transfer awaits approval by group:finance (${pending?.approvalId ?? ''})`]);
  // Slack's request names the delegating run too.
  if (!pending) throw new Error('no approval');
  const ids = approvalMessage('payments', pending).blocks.find((b) => b.block_id === 'warden_ids');
  expect(ids && 'elements' in ids ? ids.elements[0] : undefined).toMatchObject({ text: expect.stringContaining(`delegated by *triage* run \`${runId}\``) });
  // Listed across runs, as the inbox lists them: the delegate's approval, with its delegating run.
  const listing = await bed.client.listPendingApprovals();
  expect(listing.approvals.find((a) => a.approvalId === pending?.approvalId)?.delegatedBy?.runId).toBe(runId);

  await bed.client.pause(runId, { by: 'olga', reason: 'looking' });
  await eventually(async () => (await bed.client.status(childId)).paused, 20_000, 'the delegate to pause');
  await bed.client.approve(childId, { approvalId: pending?.approvalId ?? '', approver: 'fred', groups: ['finance'] });
  await new Promise((r) => setTimeout(r, 500));
  // Approved, but paused: the transfer waits for the resume.
  expect(effects.count('transfer')).toBe(0);
  await bed.client.resume(runId, { by: 'olga' });
  expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', text: 'dora is paid' });
  expect(effects.count('transfer')).toBe(1);
  const childTrail = await trail(childId);
  expect(childTrail.filter((e) => e.type === 'paused' || e.type === 'resumed').map((e) => e.type)).toEqual(['paused', 'resumed']);
});

test('cancelling the delegating run cancels its delegate', async () => {
  const runId = await start([{ toolCalls: [delegateCall('pay erin 900', [{ toolCalls: [{ name: 'transfer', args: { amount: 900, to: 'erin' } }] }, { text: 'paid' }])] }, { text: 'never' }]);
  const { runId: childId } = await delegationOf(runId);
  await eventually(async () => (await bed.client.pendingApprovals(childId)).length > 0, 20_000, 'the approval');
  await bed.client.cancel(runId);
  expect(await bed.client.result(runId)).toMatchObject({ status: 'cancelled' });
  expect(await bed.client.result(childId)).toMatchObject({ status: 'cancelled' });
  expect((await bed.client.handle(childId).describe()).status.name).toBe('CANCELLED');
  expect(effects.count('transfer')).toBe(0);
  expect((await trail(runId)).find((e) => e.type === 'delegation_finished')?.data).toMatchObject({ runId: childId, status: 'cancelled' });
});

test("rollback undoes a finished delegate's calls with the delegating run's own, newest first", async () => {
  const runId = await start([
    { toolCalls: [{ name: 'transfer', args: { amount: 30, to: 'alice' }, id: 'own1' }] },
    { toolCalls: [delegateCall('pay bob 40', [{ toolCalls: [{ name: 'transfer', args: { amount: 40, to: 'bob' }, id: 'kid1' }] }, { text: 'paid bob' }])] },
    { toolCalls: [{ name: 'transfer', args: { amount: 700, to: 'carl' }, id: 'own2' }] },
    { text: 'all paid' },
  ]);
  await eventually(async () => (await bed.client.pendingApprovals(runId)).length > 0, 20_000, 'the parent to wait');
  const childId = `${runId.replace('warden/triage/', 'warden/payments/')}.d4`;
  const plan = await bed.client.rollbackPlan(runId);
  expect(plan.map((s) => [s.tool, s.callId, s.runId ?? runId])).toEqual([
    ['transfer', 'kid1', childId],
    ['transfer', 'own1', runId],
  ]);
  await bed.client.rollback(runId, { by: 'olga', reason: 'wrong ticket' });
  const outcome = await bed.client.result(runId);
  expect(outcome.status).toBe('rolled_back');
  expect(outcome.rollback?.undone).toEqual([
    { callId: 'kid1', tool: 'transfer', runId: childId },
    { callId: 'own1', tool: 'transfer' },
  ]);
  expect(effects.compensated.map((c) => c.split(':').slice(1, 3).join(':'))).toEqual(['40:bob', '30:alice']);
  // The delegate's compensation ran as the delegate's call (its run id, its call id).
  expect(effects.compensated[0]).toMatch(/:kid1$/);
  expect(effects.count('transfer')).toBe(2);
});

test("rollback while a delegate runs: the delegate undoes its calls and ends, then the delegating run undoes its own", async () => {
  const runId = await start([
    { toolCalls: [{ name: 'transfer', args: { amount: 30, to: 'alice' }, id: 'own1' }] },
    {
      toolCalls: [
        delegateCall('pay two', [
          { toolCalls: [{ name: 'transfer', args: { amount: 40, to: 'bob' }, id: 'kid1' }] },
          { toolCalls: [{ name: 'transfer', args: { amount: 800, to: 'dan' }, id: 'kid2' }] },
          { text: 'paid' },
        ]),
      ],
    },
    { text: 'never' },
  ]);
  const childId = `${runId.replace('warden/triage/', 'warden/payments/')}.d4`;
  await eventually(async () => (await bed.client.pendingApprovals(childId)).length > 0, 20_000, 'the delegate to wait');
  await bed.client.rollback(runId, { by: 'olga' });
  expect(await bed.client.result(childId)).toMatchObject({ status: 'rolled_back', rollback: { undone: [{ callId: 'kid1', tool: 'transfer' }] } });
  expect(await bed.client.result(runId)).toMatchObject({ status: 'rolled_back', rollback: { undone: [{ callId: 'own1', tool: 'transfer' }] } });
  expect(effects.compensated.map((c) => c.split(':').slice(1, 3).join(':'))).toEqual(['40:bob', '30:alice']);
});

test('a worker stopped mid-delegation: a new worker finishes the tree, the delegate effect happens once', async () => {
  gate.open = false;
  gate.started = 0;
  gate.finished = 0;
  const runId = await start([{ toolCalls: [delegateCall('pay slowly', [{ toolCalls: [{ name: 'slow_payment', args: { amount: 5 } }] }, { text: 'paid slowly' }])] }, { text: 'done' }]);
  await eventually(async () => gate.started > 0, 20_000, 'the slow payment to start');
  await bed.stopWorker();
  gate.open = true;
  await bed.startWorker();
  expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', text: 'done', steps: 4 });
  expect(gate.finished).toBe(1);
  const childId = `${runId.replace('warden/triage/', 'warden/payments/')}.d2`;
  expect(verifyAuditChain(await trail(childId)).ok).toBe(true);
  expect(verifyAuditChain(await trail(runId)).ok).toBe(true);
});

test('a start input that claims to be a delegation is refused: only a delegating run can start one', async () => {
  const runId = `warden/payments/forged-${key()}`;
  const handle = await bed.client.client.workflow.start(AGENT_RUN_WORKFLOW, {
    taskQueue: bed.taskQueue,
    workflowId: runId,
    args: [
      {
        agent: 'payments',
        goal: 'pay mallory 50',
        requester: 'mallory',
        script: [{ toolCalls: [{ name: 'transfer', args: { amount: 50, to: 'mallory' } }] }, { text: 'paid' }],
        // Would make mallory a verified requester with a generous ceiling.
        delegation: { runId: 'warden/triage/real', agent: 'triage', callId: 'c1', requester: { id: 'mallory', verified: true, channel: 'web' }, ceiling: {}, depth: 1 },
      },
    ],
  });
  const outcome = await bed.client.result(handle.workflowId);
  expect(outcome.status).toBe('failed');
  expect(outcome.reason).toMatch(/refused: the start input says the run was delegated/);
  expect(effects.count('transfer')).toBe(0);
});

test("verifying the delegating run's trail verifies its delegates' against the heads it recorded; a rewritten delegate trail fails it", async () => {
  const runId = await start([
    { toolCalls: [delegateCall('pay gus 15', [{ toolCalls: [{ name: 'transfer', args: { amount: 15, to: 'gus' } }] }, { text: 'paid gus' }])] },
    { text: 'gus is paid' },
  ]);
  await bed.client.result(runId);
  const childId = `${runId.replace('warden/triage/', 'warden/payments/')}.d2`;
  const good = await checkAudit(bed.client, bed.store, runId);
  expect(good.result.ok).toBe(true);
  expect(good.delegates.map((d) => d.runId)).toEqual([childId]);
  expect(verifiedLine(good)).toMatch(/; 1 delegate run\(s\) verified against the heads recorded here$/);
  // A golden case of a delegating run would have to replay its delegates too: refused, with the reason.
  await expect(recordCase(bed.store, runId, await trail(runId))).rejects.toThrow(`run ${runId} delegated to ${childId}: golden cases and replays of delegating runs are not supported yet`);

  // Rewrite who got the money in the delegate's store rows, hashes recomputed so its chain holds together.
  const rows = await bed.store.readAudit(childId);
  let head = { seq: 0, hash: '0'.repeat(64) };
  const db = new Database(bed.storePath);
  const update = db.prepare('UPDATE audit_events SET data = ?, prev_hash = ?, hash = ? WHERE run_id = ? AND seq = ?');
  for (const e of rows) {
    const data = e.type === 'call_proposed' ? { ...e.data, args: { amount: 15, to: 'mallory' } } : e.data;
    const next = nextAuditEvent(head, e.type, data, e.at);
    head = { seq: next.seq, hash: next.hash };
    update.run(JSON.stringify(next.data), next.prevHash, next.hash, childId, next.seq);
  }
  db.close();
  const bad = await checkAudit(bed.client, bed.store, runId);
  expect(bad.result.ok).toBe(false);
  expect(bad.result.ok === false && bad.result.reason).toMatch(new RegExp(`^delegate run ${childId.replace(/[.]/g, '\\.')}: chain broken`));
});

test('a delegation the policy holds for approval starts once approved; side-by-side delegations split what is left', async () => {
  const policy = triagePolicy({
    rules: [
      { id: 'urgent-needs-finance', tools: ['agent:payments'], when: "args.goal.contains('urgent')", decision: 'require_approval', reason: 'urgent payments are checked', approval: { approvers: ['group:finance'], timeout: '10m' } },
      { id: 'allow-rest', decision: 'allow' },
    ],
    budgets: { maxToolCalls: 10 },
  });
  const runId = await start(
    [
      {
        toolCalls: [
          delegateCall('pay hal 5', [{ toolCalls: [{ name: 'transfer', args: { amount: 5, to: 'hal' } }] }, { text: 'paid hal' }], 'd1'),
          delegateCall('urgent: pay ida 7', [{ toolCalls: [{ name: 'transfer', args: { amount: 7, to: 'ida' } }] }, { text: 'paid ida' }], 'd2'),
        ],
      },
      { text: 'both paid' },
    ],
    policy,
  );
  const [pending] = await eventually(async () => {
    const list = await bed.client.pendingApprovals(runId);
    return list.length > 0 ? list : null;
  });
  expect(pending).toMatchObject({ tool: 'agent:payments', args: { goal: 'urgent: pay ida 7' }, ruleId: 'urgent-needs-finance' });
  const first = await delegationOf(runId, 0);
  expect(first.callId).toBe('d1');
  await eventually(async () => (await bed.client.status(runId)).delegations?.[0]?.status === 'completed', 20_000, 'the first delegate to finish');
  // Nothing of the held one has started.
  expect((await bed.client.status(runId)).delegations).toHaveLength(1);
  await bed.client.approve(runId, { approvalId: pending?.approvalId ?? '', approver: 'fred', groups: ['finance'] });
  expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', text: 'both paid', toolCalls: 4 });
  const started = (await trail(runId)).filter((e) => e.type === 'delegation_started').map((e) => [e.data.callId, (e.data.ceiling as { maxToolCalls?: number }).maxToolCalls]);
  // d1 ran first with half of the 9 calls left (d2 might still start); d2, approved later, got what was left: 10 − 2 own − 1 by d1.
  expect(started).toEqual([
    ['d1', 4],
    ['d2', 7],
  ]);
  expect(effects.count('transfer')).toBe(2);
});

test('a rejected delegation never starts its delegate', async () => {
  const policy = triagePolicy({
    rules: [{ id: 'all-delegations-wait', tools: ['agent:payments'], decision: 'require_approval', reason: 'check first', approval: { approvers: ['group:finance'], timeout: '10m' } }, { id: 'allow-rest', decision: 'allow' }],
  });
  const runId = await start([{ toolCalls: [delegateCall('pay jo 3', [{ toolCalls: [{ name: 'transfer', args: { amount: 3, to: 'jo' } }] }])] }, { text: 'not paid' }], policy);
  const [pending] = await eventually(async () => {
    const list = await bed.client.pendingApprovals(runId);
    return list.length > 0 ? list : null;
  });
  await bed.client.reject(runId, { approvalId: pending?.approvalId ?? '', approver: 'fred', groups: ['finance'], reason: 'not today' });
  expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', text: 'not paid', toolCalls: 0 });
  await expect(bed.client.handle(`${runId.replace('warden/triage/', 'warden/payments/')}.d2`).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
  expect((await bed.client.status(runId)).delegations).toBeUndefined();
  expect(effects.count('transfer')).toBe(0);
});
