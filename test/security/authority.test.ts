/**
 * Authority at every door: what someone with ordinary access to the namespace (a plain Temporal
 * client, a worker of their own on a task queue of their own, no Warden secret) tried around the
 * workflow, one test per attack. Each ran a tool, resumed, rolled back or verified a requester on
 * the code before these defences.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { DecisionSigner } from '../../src/approvals/signing-keys';
import { AGENT_RUN_WORKFLOW, runIdFor } from '../../src/config';
import { generateSigningKey, type Keyring } from '../../src/governance';
import type { RunOutcome } from '../../src/workflows/run-types';
import { forgedCarried } from '../fixtures/forged-state';
import { effects } from '../fixtures/test-agents';
import { createTestBed, eventually, financeApprovalPolicy, settings, testPolicy, type TestBed } from '../helpers';

const cliKey = generateSigningKey();
const webKey = generateSigningKey();
const opsKey = generateSigningKey();
/** Carol's own CLI key: it speaks for carol and asserts no role. */
const carolCli = new DecisionSigner({ keyId: 'cli-carol', ...cliKey });
/** The web inbox: it speaks for anyone it signed in, in no role. */
const web = new DecisionSigner({ keyId: 'web', ...webKey });
/** The operators' key: olga and carol, with the operator role. */
const ops = new DecisionSigner({ keyId: 'ops', ...opsKey });
const keyring: Keyring = {
  'cli-carol': { publicKey: cliKey.publicKey, channel: 'cli', people: { carol: [] }, revoked: false },
  web: { publicKey: webKey.publicKey, channel: 'web', people: '*', revoked: false },
  ops: { publicKey: opsKey.publicKey, channel: 'cli', people: { olga: [], carol: [] }, roles: ['operator'], revoked: false },
};

const transferTurn = (amount: number, to = 'mallory') => ({ toolCalls: [{ name: 'transfer', args: { amount, to } }] });
const allowAll = () => testPolicy({ rules: [{ id: 'attacker-allows-all', decision: 'allow' }] });

/** Forged run state carrying a transfer tool, an allow-all policy and a verified requester. */
const forgedTransferState = () =>
  forgedCarried({ policy: allowAll(), requester: 'alice', tools: [{ name: 'transfer', description: 'x', inputSchema: {}, risk: 'high', compensable: true }] });

let bed: TestBed;
let plain: Client;
let attacker: Worker;
let attackerRunning: Promise<void>;
const attackerQueue = `attacker-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  // Payloads in clear, as a worker without a payload key takes them: these defences do not lean on encryption.
  bed = await createTestBed({ payloadCodec: null, policies: [allowAll()], acceptRunInputPolicy: false, keyring });
  const { address, namespace } = settings();
  plain = new Client({ connection: await Connection.connect({ address }), namespace });
  attacker = await Worker.create({
    connection: await NativeConnection.connect({ address }),
    namespace,
    taskQueue: attackerQueue,
    workflowsPath: require.resolve('../fixtures/attacker/workflows'),
  });
  attackerRunning = attacker.run();
});
afterAll(async () => {
  attacker?.shutdown();
  await attackerRunning;
  await plain?.connection.close();
  await bed?.close();
});
beforeEach(() => effects.reset());

/** The message of what a workflow failed with, down to the activity's own error. */
async function failureOf(result: Promise<unknown>): Promise<string> {
  try {
    await result;
  } catch (err) {
    const messages: string[] = [];
    for (let e: unknown = err; e instanceof Error; e = (e as { cause?: unknown }).cause) messages.push(e.message);
    return messages.join(' / ');
  }
  throw new Error('the workflow did not fail');
}

describe("a worker of the attacker's own schedules Warden's activities", () => {
  test('a tool scheduled from another task queue is refused before it runs, whatever the scheduling workflow calls itself', async () => {
    const input = { runId: 'x', agent: 'test-agent', requester: 'mallory', callId: 'c1', args: { amount: 1_000_000, to: 'mallory' }, idempotencyKey: 'k1', resultSeq: 1, audit: [] };
    for (const type of ['scheduleWardenActivity', 'agentRun']) {
      const workflowId = `attack-${type}-${randomUUID()}`;
      const run = plain.workflow.execute(type, { taskQueue: attackerQueue, workflowId, args: [bed.taskQueue, 'transfer', { ...input, runId: workflowId }] });
      const failure = await failureOf(run);
      expect(failure).toContain('activity input not made for this run');
    }
    expect(effects.count('transfer')).toBe(0);
  });

  test("a write to a real run's trail, a compensation and a model call from another queue are refused", async () => {
    const victim = await bed.client.startRun({ agent: 'test-agent', goal: 'victim', requester: 'carol', script: [{ text: 'done' }] });
    await bed.client.result(victim);
    const before = (await bed.store.readAudit(victim)).length;
    const forged = { seq: before, at: new Date().toISOString(), type: 'tool_succeeded', data: { forged: true }, prevHash: '', hash: '' };
    const attempts: [string, unknown][] = [
      ['recordRun', { runId: victim, append: [], audit: [forged] }],
      ['compensateCall', { runId: victim, agent: 'test-agent', requester: 'carol', callId: 'c1', tool: 'transfer', args: { amount: 5, to: 'x' }, idempotencyKey: 'k', resultSeq: 1, audit: [] }],
      ['callModel', { runId: victim, agent: 'test-agent', step: 1, upTo: 1, append: [], audit: [forged] }],
    ];
    for (const [activity, input] of attempts) {
      const failure = await failureOf(plain.workflow.execute('scheduleWardenActivity', { taskQueue: attackerQueue, workflowId: `attack-${activity}-${randomUUID()}`, args: [bed.taskQueue, activity, input] }));
      expect(failure).toContain('activity input not made for this run');
    }
    expect(await bed.store.readAudit(victim)).toHaveLength(before);
    expect(effects.compensated).toEqual([]);
  });

  test("the worker's own checks (seal, verify a seal, verify an operator) are no oracle for another queue", async () => {
    const attempts: [string, unknown][] = [
      ['sealState', { kind: 'carry', to: 'x', digest: 'd' }],
      ['verifySeal', { kind: 'carry', from: { workflowId: 'x', runId: 'y' }, digest: 'd', seal: 'ab'.repeat(32) }],
      ['verifyOperator', { runId: 'x', nowMs: Date.now(), action: 'resume', by: 'olga', signature: ops.signOperator({ action: 'resume', runId: 'x', by: 'olga', channel: 'cli' }) }],
    ];
    for (const [activity, input] of attempts) {
      const workflowId = `attack-${activity}-${randomUUID()}`;
      const failure = await failureOf(plain.workflow.execute('scheduleWardenActivity', { taskQueue: attackerQueue, workflowId, args: [bed.taskQueue, activity, { ...(input as object), ...('runId' in (input as object) ? { runId: workflowId } : {}) }] }));
      expect(failure).toContain('activity input not made for this run');
    }
  });

  test('a continue-as-new into agentRun with forged carried state is refused before anything runs', async () => {
    const workflowId = runIdFor('test-agent', `can-${randomUUID()}`);
    const input = { agent: 'test-agent', goal: 'pay mallory', requester: 'alice', script: [transferTurn(50_004)], carried: forgedTransferState(), seal: 'ab'.repeat(32) };
    await plain.workflow.start('continueIntoAgentRun', { taskQueue: attackerQueue, workflowId, args: [bed.taskQueue, input] });
    const outcome = (await plain.workflow.getHandle(workflowId).result()) as RunOutcome;
    expect(outcome.status).toBe('failed');
    expect(outcome.reason).toContain('has no seal');
    expect(effects.count('transfer')).toBe(0);
  });

  test('agentRun started as the attacker\'s child with a forged delegation is refused before anything runs', async () => {
    const parentId = `attack-parent-${randomUUID()}`;
    const childId = runIdFor('test-agent', `forged-delegate-${randomUUID()}`);
    const input = {
      agent: 'test-agent',
      goal: 'pay mallory',
      requester: 'alice',
      script: [transferTurn(7.77)],
      delegation: { runId: parentId, agent: 'boss', callId: 'c1', requester: { id: 'alice', verified: true }, ceiling: {}, depth: 1 },
    };
    const outcome = (await plain.workflow.execute('delegateToAgentRun', { taskQueue: attackerQueue, workflowId: parentId, args: [bed.taskQueue, childId, input] })) as RunOutcome;
    expect(outcome.status).toBe('failed');
    expect(outcome.reason).toContain('carries no seal');
    expect(effects.count('transfer')).toBe(0);
  });
});

describe('carried state is accepted only from Warden\'s own continue-as-new', () => {
  test('a cron run of agentRun whose input carries state is refused on every run, the first and the ones after it', async () => {
    const workflowId = runIdFor('test-agent', `cron-${randomUUID()}`);
    const handle = await plain.workflow.start(AGENT_RUN_WORKFLOW, {
      taskQueue: bed.taskQueue,
      workflowId,
      cronSchedule: '@every 2s',
      args: [{ agent: 'test-agent', goal: 'pay mallory', requester: 'alice', script: [transferTurn(50_004)], carried: forgedTransferState() }],
    });
    try {
      // The second run is continued from the first (Temporal sets continuedFromExecutionRunId on cron runs
      // too). A cron run closes as continued-as-new: its outcome is the next run's lastCompletionResult.
      const outcomes = await eventually(async () => {
        const found: RunOutcome[] = [];
        for await (const run of plain.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
          const history = await plain.workflow.getHandle(workflowId, run.runId).fetchHistory();
          const last = history.events?.[0]?.workflowExecutionStartedEventAttributes?.lastCompletionResult?.payloads?.[0];
          if (last?.data) found.push(JSON.parse(Buffer.from(last.data).toString('utf8')) as RunOutcome);
        }
        return found.length >= 2 ? found : undefined;
      }, 30_000, 'two cron runs to finish');
      for (const outcome of outcomes) {
        expect(outcome.status).toBe('failed');
        expect(outcome.reason).toMatch(/accepted only from a continue-as-new|has no seal/);
      }
      expect(outcomes.some((o) => o.reason.includes('has no seal'))).toBe(true);
      expect(effects.count('transfer')).toBe(0);
    } finally {
      await handle.terminate('test over').catch(() => undefined);
    }
  });
});

describe('operators have authority', () => {
  let own: TestBed;
  beforeAll(async () => {
    own = await createTestBed({ keyring });
  });
  afterAll(async () => own?.close());

  /** A run that moved $5 (compensable) and now waits for finance on $500. */
  async function movedAndWaiting(requester = 'carol') {
    const policy = financeApprovalPolicy();
    policy.rules.unshift({ id: 'small-transfers', tools: ['transfer'], when: 'args.amount < 10', decision: 'allow', reason: 'small' });
    const runId = await own.client.startRun({ agent: 'test-agent', goal: 'pay', requester, policy, script: [transferTurn(5, 'bob'), transferTurn(500, 'bob'), { text: 'done' }] });
    await eventually(async () => (await own.client.pendingApprovals(runId))[0], 20_000, 'a pending approval');
    return runId;
  }

  const trail = (runId: string) => own.client.auditTrail(runId, own.store);

  test('a plain rollback signal is refused and audited; a signed one by an operator rolls back', async () => {
    const runId = await movedAndWaiting();
    await own.client.handle(runId).signal('rollback', { by: 'mallory', reason: 'because' });
    const refused = await eventually(async () => (await trail(runId)).find((e) => e.type === 'operator_refused'), 10_000, 'the refusal');
    expect(refused.data).toMatchObject({ action: 'rollback', by: 'mallory' });
    expect(String(refused.data.reason)).toContain('unsigned rollback refused');
    expect(effects.compensated).toEqual([]);
    expect((await own.client.status(runId)).outcome).toBeNull();
    // A web key signs decisions, not commands: it has no operator role.
    await own.client.rollback(runId, { by: 'mallory', signer: web, channel: 'web' });
    await eventually(async () => (await trail(runId)).filter((e) => e.type === 'operator_refused').length === 2, 10_000, 'the second refusal');
    expect(String((await trail(runId)).filter((e) => e.type === 'operator_refused')[1]?.data.reason)).toContain('may not assert role operator');
    await own.client.rollback(runId, { by: 'olga', reason: 'wrong customer', signer: ops });
    const outcome = await own.client.result(runId);
    expect(outcome).toMatchObject({ status: 'rolled_back', reason: 'rolled back by olga: wrong customer' });
    expect(effects.compensated).toHaveLength(1);
  });

  test('after an operator pause, a plain resume is refused; a signed command counts once', async () => {
    const runId = await movedAndWaiting();
    // Anyone may ask for the safer state.
    await own.client.pause(runId, { by: 'someone' });
    await eventually(async () => (await own.client.status(runId)).paused, 10_000, 'the pause');
    expect((await trail(runId)).find((e) => e.type === 'paused')?.data).toMatchObject({ by: 'someone' });
    await own.client.resume(runId, { by: 'mallory' });
    await eventually(async () => (await trail(runId)).find((e) => e.type === 'resume_refused'), 10_000, 'the refusal');
    expect((await own.client.status(runId)).paused).toBe(true);
    const signature = ops.signOperator({ action: 'resume', runId, by: 'olga', channel: 'cli' });
    await own.client.resume(runId, { by: 'olga', signature });
    await eventually(async () => !(await own.client.status(runId)).paused, 10_000, 'the resume');
    // The same signed resume again, after another pause: counted once only.
    await own.client.pause(runId, { by: 'olga', signer: ops });
    await eventually(async () => (await own.client.status(runId)).paused, 10_000, 'the second pause');
    // A pause counts for anyone: it takes hold as it arrives, its signature unchecked (no `verified` claimed).
    expect((await trail(runId)).filter((e) => e.type === 'paused')[1]?.data).toMatchObject({ by: 'olga' });
    expect((await trail(runId)).filter((e) => e.type === 'paused')[1]?.data).not.toHaveProperty('verified');
    await own.client.resume(runId, { by: 'olga', signature });
    const again = await eventually(async () => (await trail(runId)).filter((e) => e.type === 'resume_refused')[1], 10_000, 'the replay refused');
    expect(String(again.data.reason)).toContain('counted already');
    expect((await own.client.status(runId)).paused).toBe(true);
    await own.client.cancel(runId);
  });

  test('a signed command counts only as the action and for the run it was signed for', async () => {
    const runId = await movedAndWaiting();
    const other = await movedAndWaiting();
    // A pause olga signed, sent as a resume; a resume she signed for another run.
    const pause = ops.signOperator({ action: 'pause', runId, by: 'olga', channel: 'cli' });
    await own.client.pause(runId, { by: 'someone' });
    await eventually(async () => (await own.client.status(runId)).paused, 10_000, 'the pause');
    await own.client.resume(runId, { by: 'olga', signature: pause });
    const asResume = await eventually(async () => (await trail(runId)).find((e) => e.type === 'resume_refused'), 10_000, 'the replayed pause refused');
    expect(String(asResume.data.reason)).toContain('is a pause, not a resume');
    await own.client.resume(runId, { by: 'olga', signature: ops.signOperator({ action: 'resume', runId: other, by: 'olga', channel: 'cli' }) });
    const elsewhere = await eventually(async () => (await trail(runId)).filter((e) => e.type === 'resume_refused')[1], 10_000, 'the other run\'s resume refused');
    expect(String(elsewhere.data.reason)).toContain(`is for run ${other}`);
    expect((await own.client.status(runId)).paused).toBe(true);
    await Promise.all([own.client.cancel(runId), own.client.cancel(other)]);
  });

  test("a run its policy paused is not resumed by its requester's own key, nor by the requester as an operator", async () => {
    const same = Array.from({ length: 3 }, () => ({ toolCalls: [{ name: 'echo', args: { text: 'same' } }] }));
    const runId = await own.client.startRun({ agent: 'test-agent', goal: 'x', requester: 'carol', policy: testPolicy({ loop: { maxRepeats: 2, window: 5, action: 'pause' } }), script: [...same, { text: 'done' }] });
    await eventually(async () => (await own.client.status(runId)).paused, 20_000, 'the policy pause');
    await own.client.resume(runId, { by: 'carol', signer: carolCli });
    const first = await eventually(async () => (await trail(runId)).find((e) => e.type === 'resume_refused'), 10_000, 'the refusal');
    expect(String(first.data.reason)).toContain('may not assert role operator');
    await own.client.resume(runId, { by: 'carol', signer: ops });
    const second = await eventually(async () => (await trail(runId)).filter((e) => e.type === 'resume_refused')[1], 10_000, 'the second refusal');
    expect(String(second.data.reason)).toContain("own requester");
    expect((await own.client.status(runId)).paused).toBe(true);
    await own.client.resume(runId, { by: 'olga', signer: ops });
    expect(await own.client.result(runId)).toMatchObject({ status: 'completed' });
  });
});

describe('start claims are bound to the execution they start', () => {
  test('a verified run terminated while it waits, started again under its id with its start input copied from history, is refused', async () => {
    const own = await createTestBed({ keyring, payloadCodec: null });
    try {
      const runId = await own.client.startRun({ agent: 'test-agent', goal: 'pay bob', requester: 'carol', signer: carolCli, channel: 'cli', policy: financeApprovalPolicy(), script: [transferTurn(500, 'bob'), { text: 'done' }] });
      await eventually(async () => (await own.client.pendingApprovals(runId))[0], 20_000, 'a pending approval');
      expect((await own.client.status(runId)).requesterVerified).toBe(true);
      await own.client.handle(runId).terminate('gone');
      // The start input, as anyone who can read history sees it (payloads in clear here).
      const history = await plain.workflow.getHandle(runId).fetchHistory();
      const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      const input = JSON.parse(Buffer.from(payload?.data ?? new Uint8Array()).toString('utf8')) as Record<string, unknown>;
      expect(input.requesterProof).toBeDefined();
      const again = await plain.workflow.start(AGENT_RUN_WORKFLOW, { taskQueue: own.taskQueue, workflowId: runId, args: [input] });
      const outcome = (await again.result()) as RunOutcome;
      expect(outcome.status).toBe('failed');
      expect(outcome.reason).toContain('was used by an earlier execution');
      expect(effects.count('transfer')).toBe(0);
    } finally {
      await own.close();
    }
  });
});
