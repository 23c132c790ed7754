/**
 * A cancelled delegate's spending, completed by someone else: a delegate that is cancelled returns
 * no outcome, so its delegating run asks the worker what the delegate's trail says it spent and
 * charges that to its own budgets. Asked with a regular activity, the answer could be completed
 * by anyone with a Temporal client (`RespondActivityTaskCompletedById`) with zero spending; the
 * delegating run charged what the attacker said. The test ran that way on the code before
 * DELEGATE_USAGE_LOCAL.
 */
import { Client, Connection } from '@temporalio/client';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { defineAgent } from '../../src/agents';
import { delegateUsageOf, parsePolicy } from '../../src/governance';
import type { ScriptTurn } from '../../src/workflows/run-types';
import { echo, effects, transfer } from '../fixtures/test-agents';
import { createTestBed, eventually, settings, type TestBed } from '../helpers';

const payments = defineAgent({ name: 'payments', instructions: 'You pay people.', model: 'scripted', tools: [echo, transfer] });
const triage = defineAgent({ name: 'triage', instructions: 'You route requests.', model: 'scripted', tools: [echo], delegates: [payments] });

const pricing = { scripted: { inputPerMTok: 1000, outputPerMTok: 1000 } };
/** The delegate's policy, as the worker loads it: transfers over 100 wait for finance. */
const paymentsPolicy = parsePolicy(
  {
    agent: 'payments',
    tools: { echo: {}, transfer: {} },
    rules: [
      { id: 'big-transfers', tools: ['transfer'], when: 'args.amount > 100', decision: 'require_approval', reason: 'finance looks first', approval: { approvers: ['group:finance'], timeout: '10m' } },
      { id: 'allow-rest', decision: 'allow' },
    ],
    pricing,
  },
  'payments policy',
);
const triagePolicy = parsePolicy({ agent: 'triage', tools: { echo: {}, 'agent:payments': {} }, rules: [{ id: 'allow-all', decision: 'allow' }], budgets: { maxCostUsd: 50 }, pricing }, 'triage policy');

/**
 * The worker's own `delegateSpending`, held until the test lets it go (as a slow store would hold
 * it): the attacker gets all the time it needs. The activity itself runs unchanged.
 */
const hold = { reached: false, released: false };
const holdSpending: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      if (ctx.info.activityType === 'delegateSpending') {
        hold.reached = true;
        while (!hold.released) await new Promise((r) => setTimeout(r, 20));
      }
      return next(input);
    },
  },
});

let bed: TestBed;
let attacker: Client;

beforeAll(async () => {
  // Payloads in clear, as a worker without a payload key reads them: this defence does not lean on encryption.
  bed = await createTestBed({ payloadCodec: null, agents: [triage], policies: [paymentsPolicy, triagePolicy], workerOptions: { interceptors: { activity: [holdSpending] } } });
  const { address, namespace } = settings();
  attacker = new Client({ connection: await Connection.connect({ address }), namespace });
});
afterAll(async () => {
  hold.released = true;
  await attacker?.connection.close();
  await bed?.close();
});

test("a cancelled delegate's spending completed by someone else as zero: the delegating run is charged what the delegate's trail says", async () => {
  effects.reset();
  const usage = { inputTokens: 2000, outputTokens: 300 };
  const script: ScriptTurn[] = [
    { toolCalls: [{ name: 'echo', args: { text: 'looking' } }], usage },
    { toolCalls: [{ name: 'transfer', args: { amount: 900, to: 'erin' } }], usage },
    { text: 'paid', usage },
  ];
  const runId = await bed.client.startRun({
    agent: 'triage',
    goal: 'route this',
    requester: 'carol',
    key: `spend-${Date.now().toString(36)}`,
    script: [{ toolCalls: [{ name: 'agent__payments', id: 'd1', args: { goal: 'pay erin 900' }, script }] }, { text: 'never' }],
  });
  const childId = `${runId.replace('warden/triage/', 'warden/payments/')}.d2`;
  // The delegate spent two model turns and one tool call, and waits for finance.
  await eventually(async () => (await bed.client.pendingApprovals(childId)).length > 0, 30_000, 'the delegate to wait for approval');

  await bed.client.cancel(runId);
  await eventually(async () => hold.reached, 30_000, "the worker's delegateSpending to start");
  // The attacker completes the run's pending delegateSpending, if there is one, with zero spending.
  const described = await attacker.workflow.getHandle(runId).describe();
  const pending = described.raw.pendingActivities?.find((a) => a.activityType?.name === 'delegateSpending');
  if (pending?.activityId) {
    await attacker.activity.complete({ workflowId: runId, activityId: pending.activityId }, { used: { steps: 0, toolCalls: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 } });
  }
  hold.released = true;

  expect(await bed.client.result(runId)).toMatchObject({ status: 'cancelled' });
  expect(await bed.client.result(childId)).toMatchObject({ status: 'cancelled' });
  const childSpent = delegateUsageOf(await bed.store.readAudit(childId));
  expect(childSpent).toMatchObject({ steps: 2, toolCalls: 1, inputTokens: 4000, outputTokens: 600 });
  expect(childSpent.costUsd).toBeGreaterThan(0);
  const finished = (await bed.store.readAudit(runId)).find((e) => e.type === 'delegation_finished');
  expect(finished?.data).toMatchObject({ runId: childId, status: 'cancelled', used: childSpent });
  // There was no regular activity to complete: the worker asked itself, in a local activity.
  expect(pending).toBeUndefined();
  expect(effects.count('transfer')).toBe(0);
}, 120_000);
