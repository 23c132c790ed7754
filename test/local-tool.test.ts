import { temporal } from '@temporalio/proto';
import { z } from 'zod';
import { defineAgent, defineTool, DefinitionError, ToolError } from '../src/agents';
import { parsePolicy, type AuditEvent } from '../src/governance';
import { createTestBed, type TestBed } from './helpers';

const EventType = temporal.api.enums.v1.EventType;
const ran: string[] = [];
let flakyAttempts = 0;

const lookup = defineTool({
  name: 'lookup',
  description: 'Looks a price up',
  input: z.object({ sku: z.string() }),
  local: true,
  run: ({ sku }) => {
    ran.push(sku);
    return { sku, price: 42 };
  },
});
const flakyTool = (name: string, local: boolean) =>
  defineTool({
    name,
    description: 'Fails once with a retryable ToolError, then answers',
    input: z.object({ sku: z.string() }),
    local,
    retry: { maximumAttempts: 3, initialInterval: '50ms' },
    run: ({ sku }) => {
      flakyAttempts++;
      if (flakyAttempts === 1) throw new ToolError('try again', { retryable: true });
      return { sku };
    },
  });
// Runs past 80% of the 10 s workflow task timeout, where the SDK heartbeats the task.
const slowLookup = defineTool({ name: 'slow_lookup', description: 'Takes 9 s', input: z.object({}), local: true, timeout: '30s', run: async () => new Promise((resolve) => setTimeout(() => resolve('ok'), 9000)) });
const localAgent = defineAgent({ name: 'local-agent', instructions: 'test', model: 'scripted', tools: [lookup, flakyTool('flaky_lookup', true), flakyTool('flaky_remote', false), slowLookup] });
const policy = parsePolicy(
  {
    agent: 'local-agent',
    tools: { lookup: {}, flaky_lookup: {}, flaky_remote: {}, slow_lookup: {} },
    rules: [
      { id: 'no-secret-skus', tools: ['lookup'], when: 'args.sku.startsWith("secret")', decision: 'deny', reason: 'secret' },
      { id: 'allow', decision: 'allow' },
    ],
  },
  'local test policy',
);

let bed: TestBed;
beforeAll(async () => {
  bed = await createTestBed({ agents: [localAgent] });
});
afterAll(async () => {
  await bed?.close();
});
beforeEach(() => {
  ran.length = 0;
  flakyAttempts = 0;
});

async function historyOf(runId: string) {
  const events = (await bed.client.client.workflow.getHandle(runId).fetchHistory()).events ?? [];
  const scheduled = events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name);
  // Local activities' markers; a patch's marker (core writes `patch-data`) is not one.
  const markers = events.filter((e) => e.eventType === EventType.EVENT_TYPE_MARKER_RECORDED && e.markerRecordedEventAttributes?.markerName !== 'core_patch').length;
  return { scheduled, markers };
}

test('a local tool runs in the worker, governed like any other: allowed calls run once, a denied one never', async () => {
  const runId = await bed.client.startRun({
    agent: 'local-agent',
    goal: 'prices',
    requester: 'carol',
    policy,
    script: [{ toolCalls: [{ name: 'lookup', args: { sku: 'A-1' } }, { name: 'lookup', args: { sku: 'secret-9' } }] }, { text: 'done' }],
  });
  const outcome = await bed.client.result(runId);
  expect(outcome).toMatchObject({ status: 'completed', toolCalls: 1 });
  expect(ran).toEqual(['A-1']);
  const { scheduled, markers } = await historyOf(runId);
  // The tool ran in the worker: no activity of its own went through the server.
  expect(scheduled).not.toContain('lookup');
  expect(scheduled).toContain('callModel');
  expect(markers).toBe(2); // the local activities of the one allowed call and of the run's last store write
  const decisions = (await bed.store.readAudit(runId)).filter((e) => e.type === 'policy_decision').map((e) => [e.data.decision, e.data.ruleId]);
  expect(decisions).toEqual([
    ['allow', 'allow'],
    ['deny', 'no-secret-skus'],
  ]);
});

test.each(['flaky_lookup', 'flaky_remote'])('%s: a retryable ToolError is retried by the retry policy, and the run sees one result', async (tool) => {
  const runId = await bed.client.startRun({ agent: 'local-agent', goal: 'flaky', requester: 'carol', policy, script: [{ toolCalls: [{ name: tool, args: { sku: 'B-2' } }] }, { text: 'done' }] });
  expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 1 });
  expect(flakyAttempts).toBe(2);
  const succeeded = (await bed.store.readAudit(runId)).find((e) => e.type === 'tool_succeeded');
  expect(succeeded?.data).toMatchObject({ tool, attempts: 2 });
});

test('a local call that outlasts the workflow task is replayed to the same audit trail the store holds', async () => {
  const runId = await bed.client.startRun({ agent: 'local-agent', goal: 'slow', requester: 'carol', policy, script: [{ toolCalls: [{ name: 'slow_lookup', args: {} }] }, { text: 'done' }] });
  expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 1 });
  // A new worker has nothing cached: the query replays the run from history.
  await bed.stopWorker();
  await bed.startWorker();
  const replayed = (await bed.client.handle(runId).query<{ events: AuditEvent[] }>('auditTrail')).events;
  const stored = await bed.store.readAudit(runId);
  expect(replayed.map((e) => [e.seq, e.at, e.hash])).toEqual(stored.map((e) => [e.seq, e.at, e.hash]));
  expect(await bed.client.verifyAuditTrail(runId, bed.store)).toMatchObject({ ok: true });
}, 60_000);

test('a high-risk tool cannot be local, and local must be a boolean', () => {
  const base = { name: 'pay', description: 'pays', input: z.object({}), run: () => 'ok' };
  expect(() => defineTool({ ...base, risk: 'high', local: true })).toThrow(new DefinitionError('tool pay: a high-risk tool cannot run as a local activity (local: true is for short, low-risk tools)'));
  expect(() => defineTool({ ...base, local: 'yes' as unknown as boolean })).toThrow(/local must be true or false/);
});
