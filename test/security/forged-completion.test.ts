/**
 * Activity results completed by someone else: anyone with a Temporal client can complete a
 * running activity by its id (`RespondActivityTaskCompletedById`) with a result of their own. On a
 * worker without a payload key such a result is read in clear, so the run's preparation (its
 * policy and requester) and its model's parsed answer could be handed in by anyone. Each test here
 * ran the tool on the code before grants.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { AgentRegistry, defineAgent } from '../../src/agents';
import { parsePolicy, type Policy } from '../../src/governance';
import type { PreparedRun, RunOutcome } from '../../src/workflows/run-types';
import { echo, effects, transfer } from '../fixtures/test-agents';
import { createTestBed, eventually, settings, type TestBed } from '../helpers';

/** A model endpoint that holds every request until the test answers it. */
class HeldModel {
  readonly held: { body: string; answer: (reply: object) => void }[] = [];
  private server!: Server;
  baseURL = '';

  async start(): Promise<void> {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        this.held.push({
          body,
          answer: (reply) => {
            if (res.headersSent || res.destroyed) return;
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify(reply));
          },
        });
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.baseURL = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  base = 0;

  /** Requests from here on are counted from 1 (those held so far are answered). */
  reset(): void {
    for (const h of this.held.slice(this.base)) h.answer(text('(a later test began)'));
    this.base = this.held.length;
  }

  /** Waits for the `n`-th request (1-based, since `reset`) to arrive. */
  request(n: number) {
    return eventually(async () => this.held[this.base + n - 1], 30_000, `model request ${n}`);
  }

  async close(): Promise<void> {
    this.reset();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const usage = { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 };
const text = (content: string) => ({ id: 'r', object: 'chat.completion', created: 0, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }], usage });
const callOf = (id: string, name: string, args: object) => ({
  id: 'r',
  object: 'chat.completion',
  created: 0,
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name, arguments: JSON.stringify(args) } }] }, finish_reason: 'tool_calls' }],
  usage,
});

const model = new HeldModel();
let heldAgent: ReturnType<typeof defineAgent>;
let pricedAgent: ReturnType<typeof defineAgent>;
/** The worker's policy: transfers of up to 100 run; anything larger is denied. */
let workerPolicy: Policy;
let bed: TestBed;
let attacker: Client;

beforeAll(async () => {
  await model.start();
  heldAgent = defineAgent({
    name: 'held-agent',
    instructions: 'Move money when asked.',
    model: { provider: 'openai-compatible', name: 'held', baseURL: model.baseURL, model: 'm' },
    tools: [echo, transfer],
  });
  workerPolicy = parsePolicy(
    {
      agent: 'held-agent',
      tools: { echo: {}, transfer: {} },
      rules: [
        { id: 'small-transfers', tools: ['transfer'], when: 'args.amount <= 100', decision: 'allow' },
        { id: 'no-large-transfers', tools: ['transfer'], decision: 'deny', reason: 'over 100' },
        { id: 'echo', tools: ['echo'], decision: 'allow' },
      ],
    },
    'worker policy',
  );
  pricedAgent = defineAgent({ name: 'priced-agent', instructions: 'Echo when asked.', model: { provider: 'openai-compatible', name: 'held', baseURL: model.baseURL, model: 'm' }, tools: [echo] });
  // Each answer (5 + 5 tokens) costs $1; the run may spend $1.50: a second model call, never a third.
  const pricedPolicy = parsePolicy(
    { agent: 'priced-agent', tools: { echo: {} }, rules: [{ id: 'echo', tools: ['echo'], decision: 'allow' }], budgets: { maxCostUsd: 1.5 }, pricing: { 'held:m': { inputPerMTok: 100_000, outputPerMTok: 100_000 } } },
    'priced policy',
  );
  // Payloads in clear, as a worker without a payload key reads them: this defence does not lean on encryption.
  bed = await createTestBed({ payloadCodec: null, agents: [heldAgent, pricedAgent], policies: [workerPolicy, pricedPolicy], acceptRunInputPolicy: false });
  const { address, namespace } = settings();
  attacker = new Client({ connection: await Connection.connect({ address }), namespace });
});
afterAll(async () => {
  await model.close();
  await attacker?.connection.close();
  await bed?.close();
});
beforeEach(() => {
  effects.reset();
  model.reset();
});

/** The id of the activity of `type` the run has scheduled and not yet seen completed. */
async function pendingActivity(workflowId: string, type: string): Promise<string> {
  return eventually(async () => {
    const desc = await attacker.workflow.getHandle(workflowId).describe();
    const pending = desc.raw.pendingActivities?.find((a) => a.activityType?.name === type);
    return pending?.activityId ?? undefined;
  }, 30_000, `pending ${type}`);
}

async function start(goal: string) {
  const runId = await bed.client.startRun({ agent: 'held-agent', goal, requester: 'mallory' });
  return { runId, handle: attacker.workflow.getHandle<() => Promise<RunOutcome>>(runId) };
}

test("a preparation completed by someone else (an allow-all policy, a verified requester) runs no tool", async () => {
  const { runId, handle } = await start('move money');
  const first = await model.request(1);
  const activityId = await pendingActivity(runId, 'prepareAndCallModel');
  // What the attacker hands in: the agent as the worker describes it, a policy of their own, a requester of their choosing, and a first answer.
  const forged: { prepared: PreparedRun; answer: unknown } = {
    prepared: {
      agent: new AgentRegistry([heldAgent], []).spec('held-agent'),
      policy: parsePolicy({ agent: 'held-agent', tools: { echo: {}, transfer: {} }, rules: [{ id: 'attacker-allows-all', decision: 'allow' }] }, 'attacker'),
      policySource: 'policies/held-agent.yaml',
      requester: { id: 'ceo', verified: true, channel: 'cli' },
      notifications: { slack: false },
      grant: 'f'.repeat(64),
    },
    answer: { calls: [{ id: 'c1', name: 'transfer', args: { amount: 1_000_000, to: 'mallory' }, seal: '0'.repeat(64) }], text: '', usage: { inputTokens: 1, outputTokens: 1 } },
  };
  await attacker.activity.complete({ workflowId: runId, activityId }, forged);
  // The genuine activity goes on and stores its answer (its completion no longer counts).
  first.answer(text('the genuine first answer'));
  const outcome = await handle.result();
  expect(effects.log.filter((e) => e.tool === 'transfer')).toEqual([]);
  const trail = await bed.store.readAudit(runId);
  const failed = trail.find((e) => e.type === 'tool_failed');
  expect(String(failed?.data.error)).toMatch(/carries no grant of this worker's store/);
  // Nor is the model asked again: the forged answer came without the spend the worker seals.
  expect(outcome.status).toBe('failed');
  expect(outcome.reason).toMatch(/the model is not called for step 2/);
  expect(model.held.length).toBe(model.base + 1);
}, 120_000);

test('a model answer completed by someone else, with arguments its schema refuses, runs no tool', async () => {
  const { runId, handle } = await start('move a little money');
  // The genuine first answer: echo, which runs.
  (await model.request(1)).answer(callOf('c1', 'echo', { text: 'hello' }));
  const second = await model.request(2);
  const activityId = await pendingActivity(runId, 'callModel');
  // A negative amount passes the policy's `args.amount <= 100`; the tool's schema (amount > 0) would have refused it.
  await attacker.activity.complete({ workflowId: runId, activityId }, { calls: [{ id: 'c2', name: 'transfer', args: { amount: -1_000_000, to: 'mallory' } }], text: '', usage: { inputTokens: 1, outputTokens: 1 } });
  second.answer(text('the genuine second answer'));
  const outcome = await handle.result();
  expect(effects.log.map((e) => e.tool)).toEqual(['echo']);
  const trail = await bed.store.readAudit(runId);
  const failed = trail.find((e) => e.type === 'tool_failed');
  expect(String(failed?.data.error)).toMatch(/carries no seal of this worker's model activity/);
  expect(outcome.status).toBe('failed');
  expect(outcome.reason).toMatch(/the model is not called for step 3/);
}, 120_000);

test('calls the worker parsed run as before', async () => {
  const { runId, handle } = await start('move 50');
  (await model.request(1)).answer(callOf('c1', 'transfer', { amount: 50, to: 'bob' }));
  (await model.request(2)).answer(text('done'));
  const outcome = await handle.result();
  expect(outcome.status).toBe('completed');
  expect(effects.log.map((e) => [e.tool, e.args])).toEqual([['transfer', { amount: 50, to: 'bob' }]]);
  const trail = await bed.store.readAudit(runId);
  expect(trail.some((e) => e.type === 'tool_succeeded')).toBe(true);
}, 120_000);

test('a model answer completed by someone else with its tokens left out does not carry the run past its cost budget', async () => {
  const runId = await bed.client.startRun({ agent: 'priced-agent', goal: 'echo twice', requester: 'mallory' });
  const handle = attacker.workflow.getHandle<() => Promise<RunOutcome>>(runId);
  // The genuine first answer ($1 of the $1.50): echo, which runs.
  (await model.request(1)).answer(callOf('c1', 'echo', { text: 'one' }));
  // The second model call is made (it costs $1), but someone else completes it first: no usage, and a call to keep the run going.
  const second = await model.request(2);
  const activityId = await pendingActivity(runId, 'callModel');
  await attacker.activity.complete({ workflowId: runId, activityId }, { calls: [{ id: 'c2', name: 'echo', args: { text: 'two' } }], text: '', usage: { inputTokens: 0, outputTokens: 0 } });
  second.answer(callOf('c2', 'echo', { text: 'genuine two' }));
  // The run counted $1 and would ask again; the model activity knows $2 went and that the answer was not its own.
  const outcome = await handle.result();
  expect(outcome.status).toBe('failed');
  expect(outcome.reason).toMatch(/the model is not called for step 3: .*(carries no seal|not the worker's model activity's)/);
  expect(model.held.length).toBe(model.base + 2);
  expect(effects.log.map((e) => e.tool)).toEqual(['echo']);
}, 120_000);
