import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { resolveTemporalBinary } from '../src/dev-server';
import { Worker } from '@temporalio/worker';
import { parsePolicy } from '../src/governance';
import { delegatingAgent } from './fixtures/test-agents';
import { createTestBed, eventually, settings, testPayloadCodec, testPolicy, type TestBed } from './helpers';

/**
 * Replays recorded histories against today's workflow code: a change that would break runs
 * already in flight (a new command order, a removed branch) fails here instead of in production.
 * Record them again only on purpose, with WARDEN_RECORD_HISTORIES=1 (and WARDEN_HISTORY_SUFFIX to
 * keep the old ones: they prove runs started on older code still replay), when a change is meant to
 * be incompatible and ships behind a new workflow type or a patch.
 *
 * Recording runs on a test bed, so the histories are encrypted with the fixed test key
 * (test/fixtures/payload-keys.json); replay decodes with the same key, and histories recorded
 * before encryption replay too (the codec passes unencrypted payloads through).
 */
const dir = path.join(__dirname, 'histories');
const recording = process.env.WARDEN_RECORD_HISTORIES === '1';

/** Exports a history with the Temporal CLI, in the same JSON form the Temporal UI downloads. */
async function record(bed: TestBed, name: string, runId: string): Promise<void> {
  await bed.client.result(runId);
  const temporal = await resolveTemporalBinary();
  const { address, namespace } = settings();
  const json = execFileSync(temporal, ['workflow', 'show', '--workflow-id', runId, '--output', 'json', '--address', address, '--namespace', namespace], { encoding: 'utf8' });
  // A suffix keeps the histories of older workflow code beside the new ones (WARDEN_HISTORY_SUFFIX=-v2).
  writeFileSync(path.join(dir, `${name}${process.env.WARDEN_HISTORY_SUFFIX ?? ''}.json`), JSON.stringify({ workflowId: runId, history: JSON.parse(json) as unknown }, null, 1) + '\n');
}

(recording ? describe : describe.skip)('record histories', () => {
  let bed: TestBed;
  beforeAll(async () => {
    // Unsigned decisions on purpose: the approval history holds a signal and an Update, both verified by the worker.
    bed = await createTestBed({ allowUnsignedDecisions: true, allowUnsignedOperators: true });
  });
  afterAll(async () => bed?.close());

  test('paused run: paused as it starts (its first activity running), resumed, finished', async () => {
    const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'recorded pause', requester: 'carol', key: `paused-${Date.now()}`, policy: testPolicy(), script: [{ toolCalls: [{ name: 'echo', args: { text: 'a' } }] }, { text: 'done' }] });
    await bed.client.pause(runId, { by: 'ops', reason: 'recorded' });
    await eventually(async () => ((await bed.client.status(runId)).phase === 'paused' ? true : undefined), 30_000, 'the run paused');
    await bed.client.resume(runId, { by: 'ops', reason: 'recorded' });
    await record(bed, 'paused-run', runId);
  });

  test('governed run: allow, deny, invalid args, retry, budget', async () => {
    const policy = testPolicy({
      rules: [
        { id: 'no-big-transfers', tools: ['transfer'], when: 'args.amount > 100', decision: 'deny', reason: 'out of scope' },
        { id: 'allow-rest', decision: 'allow' },
      ],
      budgets: { maxSteps: 4 },
    });
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'recorded governed run',
      requester: 'carol',
      key: `governed-${Date.now()}`,
      policy,
      script: [
        { toolCalls: [{ name: 'echo', args: { text: 'a' } }, { name: 'transfer', args: { amount: 500, to: 'x' } }, { name: 'transfer', args: { amount: -1 } }] },
        { toolCalls: [{ name: 'flaky', args: { failTimes: 1 } }] },
        { toolCalls: [{ name: 'echo', args: { text: 'b' } }] },
        { toolCalls: [{ name: 'echo', args: { text: 'c' } }] },
        { text: 'never' },
      ],
    });
    await record(bed, 'governed-run', runId);
  });

  test('approval run', async () => {
    const policy = testPolicy({ rules: [{ id: 'approve-transfers', tools: ['transfer'], decision: 'require_approval', approval: { approvers: ['user:alice'] } }, { id: 'allow-rest', decision: 'allow' }] });
    const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'recorded approval', requester: 'carol', key: `approval-${Date.now()}`, policy, script: [{ toolCalls: [{ name: 'transfer', args: { amount: 5, to: 'y' } }] }, { text: 'done' }] });
    const [approval] = await eventually(async () => {
      const p = await bed.client.pendingApprovals(runId);
      return p.length ? p : undefined;
    });
    await bed.client.signalApprove(runId, { approvalId: 'apr_wrong', approver: 'alice' });
    await bed.client.signalApprove(runId, { approvalId: approval?.approvalId ?? '', approver: 'carol' });
    await bed.client.approve(runId, { approvalId: approval?.approvalId ?? '', approver: 'alice', comment: 'ok' });
    await record(bed, 'approval-run', runId);
  });

  test('policy change run: a waiting approval re-decided under the worker\'s new policy', async () => {
    const policy = testPolicy({ rules: [{ id: 'approve-transfers', tools: ['transfer'], decision: 'require_approval', approval: { approvers: ['user:alice'] } }, { id: 'allow-rest', decision: 'allow' }] });
    const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'recorded policy change', requester: 'carol', key: `policy-change-${Date.now()}`, policy, script: [{ toolCalls: [{ name: 'transfer', args: { amount: 5, to: 'y' } }] }, { text: 'done' }] });
    await eventually(async () => (await bed.client.pendingApprovals(runId)).length === 1);
    await bed.store.setAppliedPolicy('test-agent', { policy: testPolicy({ rules: [{ id: 'freeze', tools: ['transfer'], decision: 'deny', reason: 'change freeze' }, { id: 'allow-rest', decision: 'allow' }] }), version: 'freeze', source: 'recording' });
    try {
      await bed.client.applyPolicy(runId, { by: 'ops' });
      await record(bed, 'policy-change-run', runId);
    } finally {
      await bed.store.removeAppliedPolicy('test-agent');
    }
  });

  test('rollback run', async () => {
    const policy = testPolicy({ rules: [{ id: 'big', tools: ['transfer'], when: 'args.amount > 100', decision: 'require_approval', approval: { approvers: ['user:alice'] } }, { id: 'allow-rest', decision: 'allow' }] });
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'recorded rollback',
      requester: 'carol',
      key: `rollback-${Date.now()}`,
      policy,
      script: [{ toolCalls: [{ name: 'transfer', args: { amount: 10, to: 'a' } }, { name: 'echo', args: { text: 'x' } }] }, { toolCalls: [{ name: 'transfer', args: { amount: 500, to: 'b' } }] }, { text: 'never' }],
    });
    await eventually(async () => (await bed.client.pendingApprovals(runId)).length === 1);
    await bed.client.pause(runId, { by: 'ops' });
    await bed.client.rollback(runId, { by: 'ops', reason: 'recorded' });
    await record(bed, 'rollback-run', runId);
  });
});

(recording ? describe : describe.skip)('record delegation histories', () => {
  let bed: TestBed;
  beforeAll(async () => {
    // The delegate's policy comes from the worker, as it always does.
    bed = await createTestBed({ agents: [delegatingAgent], policies: [testPolicy()], allowUnsignedDecisions: true });
  });
  afterAll(async () => bed?.close());

  test('delegation run: one delegation allowed (the child run with a tool call), one denied', async () => {
    const policy = parsePolicy(
      {
        agent: 'test-boss',
        tools: { echo: {}, 'agent:test-agent': {} },
        rules: [{ id: 'no-refusals', tools: ['agent:test-agent'], when: "args.goal.startsWith('no')", decision: 'deny', reason: 'recorded' }, { id: 'allow-rest', decision: 'allow' }],
        budgets: { maxToolCalls: 10 },
      },
      'recording',
    );
    const runId = await bed.client.startRun({
      agent: 'test-boss',
      goal: 'recorded delegation',
      requester: 'carol',
      key: `delegation-${Date.now()}`,
      policy,
      script: [
        { toolCalls: [{ name: 'echo', args: { text: 'first' } }] },
        {
          toolCalls: [
            { name: 'agent__test-agent', id: 'd1', args: { goal: 'move 10 to a' }, script: [{ toolCalls: [{ name: 'transfer', args: { amount: 10, to: 'a' } }] }, { text: 'moved' }] },
            { name: 'agent__test-agent', id: 'd2', args: { goal: 'no, do not' } },
          ],
        },
        { text: 'done' },
      ],
    });
    await bed.client.result(runId);
    const status = await bed.client.status(runId);
    const child = status.delegations?.[0]?.runId;
    if (!child) throw new Error('no delegate run');
    await record(bed, 'delegation-run', runId);
    await record(bed, 'delegate-run', child);
  });
});

describe('replay of recorded histories', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

  test('there are recorded histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(6);
  });

  test.each(files)('%s replays against the current workflow code', async (file) => {
    const { workflowId, history } = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as { workflowId: string; history: unknown };
    const codePath = process.env.WARDEN_TEST_WORKFLOW_BUNDLE;
    const bundle = codePath ? { workflowBundle: { codePath } } : { workflowsPath: require.resolve('../src/workflows') };
    await Worker.runReplayHistory({ ...bundle, dataConverter: { failureConverterPath: require.resolve('../src/codec/failure-converter'), payloadCodecs: [testPayloadCodec()] } }, historyFromJSON(history), workflowId);
  });
});
