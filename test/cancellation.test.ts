/**
 * Cancellation reaches the tool: a run cancelled, a rollback asked for, or a delegate cancelled
 * while a tool runs fires the tool's `ctx.signal` within about a second (Warden heartbeats the
 * call and the workflow cancels it), so the tool stops and writes no effect. A cancelled
 * delegate's spending is charged to its delegating run.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { defineAgent, defineTool } from '../src/agents';
import { parsePolicy, verifyAuditChain } from '../src/governance';
import type { ScriptTurn } from '../src/workflows/run-types';
import { createTestBed, eventually, type TestBed } from './helpers';

/** Well over the second or so a cancel takes to reach a tool, well under the tools' own waits. */
const STOPPED_WITHIN_MS = 10_000;

/** What the tools did, in order: `started`, `aborted`, `effect`, `undo`, each with its call's note and when. */
const events: { kind: 'started' | 'aborted' | 'effect' | 'undo'; note: string; at: number }[] = [];
const seen = (kind: string, note: string) => events.find((e) => e.kind === kind && e.note === note);

const wait = defineTool({
  name: 'wait',
  description: 'Waits, then writes its effect',
  input: z.object({ note: z.string(), ms: z.number().int() }),
  timeout: '2m',
  retry: { maximumAttempts: 1 },
  run: async ({ note, ms }, ctx) => {
    events.push({ kind: 'started', note, at: Date.now() });
    try {
      // The way tool authors are told to: hand ctx.signal on to whatever waits (setTimeout, fetch).
      await sleep(ms, undefined, { signal: ctx.signal });
    } catch (err) {
      events.push({ kind: 'aborted', note, at: Date.now() });
      throw err;
    }
    events.push({ kind: 'effect', note, at: Date.now() });
    return { waited: ms };
  },
});

const note = defineTool({
  name: 'note',
  description: 'Writes a note; its compensation takes it back',
  input: z.object({ note: z.string() }),
  run: ({ note }) => {
    events.push({ kind: 'effect', note, at: Date.now() });
    return { noted: note };
  },
  compensate: ({ note }) => {
    events.push({ kind: 'undo', note, at: Date.now() });
  },
});

const worker = defineAgent({ name: 'cancel-worker', instructions: 'You wait.', model: 'scripted', tools: [wait, note] });
const boss = defineAgent({ name: 'cancel-boss', instructions: 'You hand work on.', model: 'scripted', tools: [], delegates: [worker] });
const pricing = { scripted: { inputPerMTok: 1, outputPerMTok: 1 } };
const workerPolicy = parsePolicy({ agent: 'cancel-worker', tools: { wait: {}, note: {} }, rules: [{ id: 'allow', decision: 'allow' }], pricing }, 'cancel-worker policy');
const bossPolicy = parsePolicy({ agent: 'cancel-boss', tools: { 'agent:cancel-worker': {} }, rules: [{ id: 'allow', decision: 'allow' }], pricing }, 'cancel-boss policy');
const usage = { inputTokens: 1000, outputTokens: 100 };

let bed: TestBed;
let n = 0;
const key = () => `c${Date.now().toString(36)}-${++n}`;

beforeAll(async () => {
  bed = await createTestBed({ agents: [boss], policies: [workerPolicy], allowUnsignedOperators: true });
});
afterAll(async () => bed?.close());

function start(agent: string, script: ScriptTurn[]): Promise<string> {
  return bed.client.startRun({ agent, goal: 'wait for it', requester: 'carol', key: key(), script, policy: agent === 'cancel-boss' ? bossPolicy : workerPolicy });
}

test('cancelling a run stops its running tool within seconds, and the tool writes no effect', async () => {
  const runId = await start('cancel-worker', [{ toolCalls: [{ name: 'wait', args: { note: 'cancel-1', ms: 60_000 } }] }, { text: 'never' }]);
  await eventually(async () => seen('started', 'cancel-1'), 30_000, 'the tool to start');
  const cancelledAt = Date.now();
  await bed.client.cancel(runId);
  expect(await bed.client.result(runId)).toMatchObject({ status: 'cancelled' });
  const endedMs = Date.now() - cancelledAt;
  const aborted = await eventually(async () => seen('aborted', 'cancel-1'), 30_000, 'the tool to see its signal');
  const stoppedMs = aborted.at - cancelledAt;
  console.log(`cancellation: a 60 s tool stopped ${stoppedMs} ms after the run was cancelled; the run ended after ${endedMs} ms`);
  expect(stoppedMs).toBeLessThan(STOPPED_WITHIN_MS);
  await sleep(500);
  expect(seen('effect', 'cancel-1')).toBeUndefined();
});

test('a rollback asked for while a tool runs cancels the tool, then undoes what was done', async () => {
  const runId = await start('cancel-worker', [
    { toolCalls: [{ name: 'note', args: { note: 'rollback-note' } }] },
    { toolCalls: [{ name: 'wait', args: { note: 'rollback-wait', ms: 45_000 } }] },
    { text: 'never' },
  ]);
  await eventually(async () => seen('started', 'rollback-wait'), 30_000, 'the long tool to start');
  const askedAt = Date.now();
  await bed.client.rollback(runId, { by: 'olga', reason: 'stop it' });
  const outcome = await bed.client.result(runId);
  const rolledBackMs = Date.now() - askedAt;
  const aborted = seen('aborted', 'rollback-wait');
  console.log(`cancellation: a 45 s tool stopped ${(aborted?.at ?? NaN) - askedAt} ms after the rollback was asked for; the run was rolled back after ${rolledBackMs} ms`);
  expect(outcome).toMatchObject({ status: 'rolled_back', rollback: { undone: [expect.objectContaining({ tool: 'note' })], failed: [] } });
  expect(aborted).toBeDefined();
  expect(rolledBackMs).toBeLessThan(STOPPED_WITHIN_MS);
  expect(seen('effect', 'rollback-wait')).toBeUndefined();
  expect(seen('undo', 'rollback-note')).toBeDefined();
  const trail = await bed.client.auditTrail(runId, bed.store);
  expect(verifyAuditChain(trail)).toMatchObject({ ok: true });
  expect(trail.find((e) => e.type === 'tool_failed')?.data).toMatchObject({ tool: 'wait', cancelled: true });
});

test("a delegate cancelled mid-tool stops its tool, and what it spent is charged to its delegating run", async () => {
  const delegateScript: ScriptTurn[] = [{ usage, toolCalls: [{ name: 'wait', args: { note: 'delegate-wait', ms: 60_000 } }] }, { text: 'never' }];
  const runId = await start('cancel-boss', [{ usage, toolCalls: [{ name: 'agent__cancel-worker', args: { goal: 'wait a minute' }, script: delegateScript }] }, { text: 'never' }]);
  const childId = await eventually(async () => (await bed.client.status(runId)).delegations?.[0]?.runId, 30_000, 'the delegation to start');
  await eventually(async () => seen('started', 'delegate-wait'), 30_000, "the delegate's tool to start");
  const cancelledAt = Date.now();
  await bed.client.cancel(childId);
  const aborted = await eventually(async () => seen('aborted', 'delegate-wait'), 30_000, "the delegate's tool to see its signal");
  console.log(`cancellation: a delegate's 60 s tool stopped ${aborted.at - cancelledAt} ms after the delegate was cancelled`);
  expect(aborted.at - cancelledAt).toBeLessThan(STOPPED_WITHIN_MS);

  const outcome = await bed.client.result(runId);
  const childTrail = await bed.client.auditTrail(childId, bed.store);
  const childFinished = childTrail.find((e) => e.type === 'run_finished')?.data as { steps: number; usage: { inputTokens: number; outputTokens: number; costUsd: number } };
  expect(childFinished).toMatchObject({ status: 'cancelled', steps: 1, usage: { inputTokens: 1000, outputTokens: 100 } });
  // The delegating run counts the delegate's step and tokens as its own spending, and says how much was the delegate's.
  expect(outcome.delegated).toMatchObject({ steps: 1, inputTokens: 1000, outputTokens: 100 });
  expect(outcome.usage.inputTokens).toBe(2000);
  expect(outcome.usage.outputTokens).toBe(200);
  expect(outcome.usage.costUsd).toBeCloseTo(childFinished.usage.costUsd * 2, 10);
  const trail = await bed.client.auditTrail(runId, bed.store);
  expect(trail.find((e) => e.type === 'delegation_finished')?.data).toMatchObject({ runId: childId, status: 'cancelled', used: { steps: 1, inputTokens: 1000, outputTokens: 100 } });
  await sleep(500);
  expect(seen('effect', 'delegate-wait')).toBeUndefined();
});
