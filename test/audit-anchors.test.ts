/**
 * Where a run anchors its audit chain's head in Temporal (its memo, which the run store cannot
 * rewrite): every `audit.anchorEveryTurns` turns (10 unless the policy says), and always before it
 * waits for a resume or for people, and as it ends.
 */
import { temporal } from '@temporalio/proto';
import { z } from 'zod';
import { defineAgent, defineTool } from '../src/agents';
import { AUDIT_ANCHOR_MEMO } from '../src/workflows/audit-log';
import { echo } from './fixtures/test-agents';
import { createTestBed, eventually, testPolicy, type TestBed } from './helpers';

let release: () => void = () => {};
let holding = false;
/** A tool that runs until the test lets it finish. */
const hold = defineTool({
  name: 'hold',
  description: 'Holds until released',
  input: z.object({}),
  run: async () => {
    holding = true;
    await new Promise<void>((resolve) => (release = resolve));
    holding = false;
    return 'released';
  },
});
const agent = defineAgent({ name: 'test-agent', instructions: 'You are a test agent.', model: 'scripted', tools: [echo, hold] });
const policyWith = (audit?: { anchorEveryTurns: number }) => testPolicy({ tools: { echo: {}, hold: {} }, ...(audit ? { audit } : {}) });

let bed: TestBed;
beforeAll(async () => {
  // Payloads in clear: the test reads the anchored head from the memo.
  bed = await createTestBed({ payloadCodec: null, agents: [agent] });
});
afterAll(async () => {
  release();
  await bed?.close();
});

const echoes = (n: number) => [...Array.from({ length: n }, (_, i) => ({ toolCalls: [{ name: 'echo', args: { text: `turn ${i}` } }] })), { text: 'done' }];

async function memoUpserts(runId: string): Promise<number> {
  const history = await bed.client.client.workflow.getHandle(runId).fetchHistory();
  return (history.events ?? []).filter((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED).length;
}

async function anchoredHead(runId: string): Promise<{ seq: number; hash: string } | undefined> {
  const desc = await bed.client.client.workflow.getHandle(runId).describe();
  return desc.memo?.[AUDIT_ANCHOR_MEMO] as { seq: number; hash: string } | undefined;
}

test('a run anchors every 10 turns unless its policy says otherwise; anchorEveryTurns: 1 anchors every turn; both trails verify', async () => {
  const sparse = await bed.client.startRun({ agent: 'test-agent', goal: 'twelve turns', requester: 'carol', policy: policyWith(), script: echoes(12) });
  const every = await bed.client.startRun({ agent: 'test-agent', goal: 'twelve turns', requester: 'carol', policy: policyWith({ anchorEveryTurns: 1 }), script: echoes(12) });
  expect((await bed.client.result(sparse)).status).toBe('completed');
  expect((await bed.client.result(every)).status).toBe('completed');
  // Turn 11 and the end (turn 1 had nothing stored yet to anchor).
  expect(await memoUpserts(sparse)).toBe(2);
  expect(await memoUpserts(every)).toBeGreaterThanOrEqual(12);
  for (const runId of [sparse, every]) {
    expect(await bed.client.verifyAuditTrail(runId, bed.store)).toMatchObject({ ok: true });
    const stored = await bed.store.readAudit(runId);
    expect((await anchoredHead(runId))?.seq).toBe(stored[stored.length - 1]?.seq);
  }
}, 180_000);

test('a run paused between anchors anchors what the store has before it waits', async () => {
  const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'hold, then pause', requester: 'carol', policy: policyWith(), script: [{ toolCalls: [{ name: 'echo', args: { text: 'one' } }] }, { toolCalls: [{ name: 'hold', args: {} }] }, ...echoes(2)] });
  await eventually(async () => holding || undefined, 60_000, 'the hold tool running');
  const before = await anchoredHead(runId);
  await bed.client.pause(runId, { by: 'ops', reason: 'look first' });
  release();
  await eventually(async () => ((await bed.client.status(runId)).phase === 'paused' ? true : undefined), 60_000, 'the run paused');
  // Turn 2 was not an anchor turn: the head came with the pause, and it is what the store holds.
  const stored = await bed.store.readAudit(runId);
  const head = await eventually(async () => {
    const h = await anchoredHead(runId);
    return h && h.seq !== before?.seq ? h : undefined;
  }, 30_000, 'a new anchor');
  expect(head.seq).toBe(stored[stored.length - 1]?.seq);
  expect(head.hash).toBe(stored[stored.length - 1]?.hash);
  await bed.client.cancel(runId);
  await bed.client.result(runId).catch(() => undefined);
}, 180_000);

test('a policy with a bad anchorEveryTurns is refused, naming the field', () => {
  expect(() => policyWith({ anchorEveryTurns: 0 })).toThrow(/audit\.anchorEveryTurns.*at least 1/);
  expect(() => testPolicy({ audit: { anchorEvery: 3 } as never })).toThrow(/audit/);
});
