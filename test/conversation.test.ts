/**
 * What a real model's output leaves in a run: a refused oversized call is not sent back to the
 * model, a schema-rejected call is audited with what the model sent, and an agent's context
 * policy bounds what each model call is sent (and the audit says when it did).
 */
import { statSync } from 'node:fs';
import { z } from 'zod';
import { defineAgent, defineTool } from '../src/agents';
import type { AuditEvent } from '../src/governance';
import { echo, effects, transfer } from './fixtures/test-agents';
import { createTestBed, testPolicy, type TestBed } from './helpers';

const big = 'x'.repeat(5 * 1024 * 1024);
const secretive = defineTool({
  name: 'secretive',
  description: 'Takes a PIN',
  input: z.object({ account: z.string().max(10), pin: z.string().meta({ sensitive: true }) }),
  run: () => ({ ok: true }),
});

const hostile = defineAgent({
  name: 'hostile-agent',
  instructions: 'You test limits.',
  model: {
    provider: 'scripted',
    script: [
      { toolCalls: [{ name: 'echo', args: { text: big } }] },
      { toolCalls: [{ name: 'secretive', args: { account: 'a-very-long-account-name', pin: '4321', extra: 'y'.repeat(500) } }] },
      { toolCalls: [{ name: 'echo', args: { text: 'small' } }] },
      { text: 'done' },
    ],
  },
  tools: [echo, transfer, secretive],
});

// Echo calls with ~2 KB each until the step budget ends the run: a conversation that outgrows a
// 2,000-token window. (The scripted model picks its turn by the answers it is sent, so once the
// window leaves some out it repeats a turn: every turn is alike.)
const long = defineAgent({
  name: 'long-agent',
  instructions: 'You echo a lot.',
  model: { provider: 'scripted', script: Array.from({ length: 40 }, (_, i) => ({ toolCalls: [{ name: 'echo', args: { text: `${i % 2}:${'z'.repeat(2000)}` } }] })) },
  tools: [echo],
  context: { maxTokens: 2000 },
});

let bed: TestBed;

beforeAll(async () => {
  bed = await createTestBed({ agents: [hostile, long] });
}, 120_000);
afterAll(async () => {
  await bed?.close();
});

const policyFor = (agent: string) => testPolicy({ agent, tools: { echo: {}, transfer: {}, secretive: {} } });
const ofType = (trail: AuditEvent[], type: string) => trail.filter((e) => e.type === type);

test('a refused 5 MB argument is cut from the conversation, the model is told, and the later calls are small', async () => {
  effects.reset();
  const runId = await bed.client.startRun({ agent: 'hostile-agent', goal: 'push the limits', requester: 'carol', policy: policyFor('hostile-agent') });
  const outcome = await bed.client.result(runId);
  expect(outcome.status).toBe('completed');
  // Only the small echo ran.
  expect(effects.log.map((e) => e.tool)).toEqual(['echo']);

  let count = 0;
  while (await bed.store.readMessages(runId, count + 1, count).then(() => true, () => false)) count += 1;
  const messages = (await bed.store.readMessages(runId, count, 0)) as { role: string; content: unknown }[];
  const first = messages.find((m) => m.role === 'assistant') as { content: { type: string; input?: Record<string, unknown> }[] };
  const input = first.content.find((p) => p.type === 'tool-call')?.input ?? {};
  expect(JSON.stringify(input).length).toBeLessThan(500);
  expect(input['[cut]']).toMatch(/5\.0 MiB of arguments removed from the conversation \(over the 64 KiB limit\); the call was refused and nothing ran/);
  expect(JSON.stringify(messages).length).toBeLessThan(20_000);

  // The scripted model estimates input tokens from what it is sent: each later call was sent a small conversation.
  const turns = ofType(await bed.store.readAudit(runId), 'model_turn');
  expect(turns).toHaveLength(4);
  for (const turn of turns.slice(1)) expect(turn.data.inputTokens).toBeLessThan(5_000);
  // The store holds no copy of the 5 MB either (the audit keeps a cut version).
  expect(statSync(bed.storePath).size).toBeLessThan(2 * 1024 * 1024);
}, 120_000);

test('a schema-rejected call is audited with what the model sent, cut short and redacted', async () => {
  const runId = await bed.client.startRun({ agent: 'hostile-agent', goal: 'again', requester: 'carol', policy: policyFor('hostile-agent') });
  await bed.client.result(runId);
  const trail = await bed.store.readAudit(runId);
  const proposed = ofType(trail, 'call_proposed');
  const oversized = proposed[0]!.data.args as Record<string, unknown>;
  expect(oversized.text).toMatch(/^x{200}… \(5242880 characters\)$/);
  expect(oversized['[cut]']).toMatch(/5\.0 MiB sent; cut for the audit trail/);
  const rejected = proposed[1]!.data.args as Record<string, unknown>;
  expect(rejected).toMatchObject({ account: 'a-very-long-account-name', pin: '[redacted]' });
  expect(rejected.extra).toMatch(/^y{200}… \(500 characters\)$/);
  expect(ofType(trail, 'schema_rejected').map((e) => e.data.tool)).toEqual(['echo', 'secretive']);
  expect(JSON.stringify(trail)).not.toContain('4321');
}, 120_000);

test("an agent's context policy bounds each call, keeps the goal and whole turns, and the audit says when it applied", async () => {
  const runId = await bed.client.startRun({ agent: 'long-agent', goal: 'echo all day', requester: 'carol', policy: testPolicy({ agent: 'long-agent', tools: { echo: {} }, budgets: { maxSteps: 12 } }) });
  const outcome = await bed.client.result(runId);
  expect(outcome.status).toBe('budget_exhausted');
  const turns = ofType(await bed.store.readAudit(runId), 'model_turn');
  expect(turns).toHaveLength(12);
  // Early calls fit; later ones are windowed, each within the limit (system, goal, newest turns).
  expect(turns[0]!.data.context).toBeUndefined();
  const windowed = turns.filter((t) => t.data.context !== undefined);
  expect(windowed.length).toBeGreaterThan(5);
  for (const t of windowed) {
    expect(t.data.context).toMatchObject({ limit: 2000, unit: 'tokens', omittedMessages: expect.any(Number) });
    expect((t.data.context as { size: number }).size).toBeLessThanOrEqual(2000);
    // The scripted model's estimate of what it was sent agrees.
    expect(t.data.inputTokens).toBeLessThanOrEqual(2200);
  }
  // Without the window the last call would have been sent all 12 turns (~6,000 tokens).
  expect(turns.at(-1)!.data.inputTokens).toBeLessThan(2200);
}, 400_000);
