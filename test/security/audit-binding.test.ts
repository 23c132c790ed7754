/**
 * `warden audit --verify` checks a trail only against what the run itself wrote into Temporal:
 * the latest execution under the run id must be an `agentRun` of the run's own chain of
 * executions, its anchor must decrypt with the client's payload key, and a run Warden ended has
 * its anchor on its last event. The attacker holds a plain Temporal client (no payload key) and,
 * in some tests, write access to the run store.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { nextAuditEvent, type AuditEvent } from '../../src/governance';
import { createSqliteStore, type RunStore } from '../../src/store';
import { AUDIT_ANCHOR_MEMO } from '../../src/workflows/audit-log';
import { createTestBed, eventually, financeApprovalPolicy, settings, testPolicy, type TestBed } from '../helpers';

let bed: TestBed;
let connection: Connection;
/** What anyone with namespace access holds: the plain SDK, no codec, no Warden secret. */
let attacker: Client;
const started: string[] = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-audit-binding-'));

beforeAll(async () => {
  bed = await createTestBed();
  connection = await Connection.connect({ address: settings().address });
  attacker = new Client({ connection, namespace: settings().namespace });
});
afterAll(async () => {
  // The forged executions wait on a task queue nobody serves: end them, other files list runs too.
  await Promise.all(started.map((id) => attacker.workflow.getHandle(id).terminate('test over').catch(() => undefined)));
  await connection?.close();
  await bed?.close();
});

async function completedRun(): Promise<string> {
  const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'say hi', requester: 'carol', policy: testPolicy(), script: [{ toolCalls: [{ name: 'echo', args: { text: 'hi' } }] }, { text: 'done' }] });
  expect(await bed.client.result(runId)).toMatchObject({ status: 'completed' });
  return runId;
}

/** The event a forger appends after the last one: a tool call the run never made. */
function forgedAfter(events: AuditEvent[]): AuditEvent {
  const last = events[events.length - 1];
  if (!last) throw new Error('no events to append to');
  return nextAuditEvent(last, 'tool_succeeded', { callId: 'forged', tool: 'transfer', attempts: 1, summary: 'sent 9000 to acct-mallory' }, new Date().toISOString());
}

/** The trail with the requester changed and every hash from there on recomputed, in a store of its own. */
async function rewrittenStore(runId: string, events: AuditEvent[]): Promise<{ store: RunStore; head: AuditEvent }> {
  let head = { seq: 0, hash: '0'.repeat(64) };
  const rewritten = events.map((e) => {
    const next = nextAuditEvent(head, e.type, e.type === 'run_started' ? { ...e.data, requester: 'mallory' } : e.data, e.at);
    head = { seq: next.seq, hash: next.hash };
    return next;
  });
  const store = createSqliteStore(path.join(tmp, `${randomUUID()}.db`));
  await store.appendAudit(runId, rewritten);
  const last = rewritten[rewritten.length - 1];
  if (!last) throw new Error('no events');
  return { store, head: last };
}

/** A new execution under `runId`, on a task queue no worker serves. */
async function startUnder(runId: string, type: string, memo: Record<string, unknown>): Promise<void> {
  await attacker.workflow.start(type, { workflowId: runId, taskQueue: `nobody-${randomUUID()}`, args: [], memo });
  started.push(runId);
}

test('an event appended after the anchored head of a completed run fails verification, with or without a worker', async () => {
  const runId = await completedRun();
  expect(await bed.client.verifyAuditTrail(runId, bed.store)).toMatchObject({ ok: true });
  const events = await bed.store.readAudit(runId);
  const forged = forgedAfter(events);
  await bed.store.appendAudit(runId, [forged]);

  const expected = { ok: false, problemSeq: forged.seq, problem: `1 event after the anchored head (seq ${forged.seq - 1}): appended after the run ended` };
  expect(await bed.client.verifyAuditTrail(runId, bed.store)).toMatchObject(expected);
  await bed.stopWorker();
  try {
    expect(await bed.client.verifyAuditTrail(runId, bed.store)).toMatchObject(expected);
  } finally {
    await bed.startWorker();
  }
});

test('a new execution under a finished run id with an anchor in clear does not vouch for a rewritten store', async () => {
  const runId = await completedRun();
  const { store, head } = await rewrittenStore(runId, await bed.store.readAudit(runId));
  try {
    expect(await bed.client.verifyAuditTrail(runId, store)).toMatchObject({ ok: false });
    await startUnder(runId, 'agentRun', { [AUDIT_ANCHOR_MEMO]: { seq: head.seq, hash: head.hash } });
    const check = await bed.client.verifyAuditTrail(runId, store);
    expect(check.ok).toBe(false);
    expect(check.problem).toMatch(/memo field wardenAuditHead .*is not encrypted/);
  } finally {
    await store.close();
  }
});

test('a new execution of another workflow type under a finished run id is named, not verified against', async () => {
  const runId = await completedRun();
  const { store, head } = await rewrittenStore(runId, await bed.store.readAudit(runId));
  try {
    await startUnder(runId, 'notAWardenRun', { [AUDIT_ANCHOR_MEMO]: { seq: head.seq, hash: head.hash } });
    const check = await bed.client.verifyAuditTrail(runId, store);
    expect(check.ok).toBe(false);
    expect(check.problem).toMatch(/latest execution under this run id .* is a "notAWardenRun" workflow, not an agentRun/);
  } finally {
    await store.close();
  }
});

test("a run's own encrypted anchor copied into a new execution under its id does not make appended events pass", async () => {
  const runId = await completedRun();
  const desc = await attacker.workflowService.describeWorkflowExecution({ namespace: settings().namespace, execution: { workflowId: runId } });
  const anchor = desc.workflowExecutionInfo?.memo?.fields?.[AUDIT_ANCHOR_MEMO];
  if (!anchor) throw new Error('the run has no anchor');
  // The ciphertext as Temporal holds it: the attacker cannot read it, but can start a run carrying it.
  await attacker.workflowService.startWorkflowExecution({
    namespace: settings().namespace,
    workflowId: runId,
    workflowType: { name: 'agentRun' },
    taskQueue: { name: `nobody-${randomUUID()}` },
    memo: { fields: { [AUDIT_ANCHOR_MEMO]: anchor } },
    requestId: randomUUID(),
  });
  started.push(runId);
  await bed.store.appendAudit(runId, [forgedAfter(await bed.store.readAudit(runId))]);

  const check = await bed.client.verifyAuditTrail(runId, bed.store);
  expect(check.ok).toBe(false);
  expect(check.problem).toMatch(/run id was used again/);
});

test('a running run: events past its own head fail while a worker answers; with none, events past the anchor are reported as not anchored yet', async () => {
  // An allowed call first, so the store holds events and the run anchors them before it waits.
  const runId = await bed.client.startRun({
    agent: 'test-agent',
    goal: 'pay',
    requester: 'carol',
    policy: financeApprovalPolicy(),
    script: [{ toolCalls: [{ name: 'echo', args: { text: 'hi' } }] }, { toolCalls: [{ name: 'transfer', args: { amount: 5, to: 'acct-1' } }] }, { text: 'done' }],
  });
  await eventually(async () => (await bed.client.pendingApprovals(runId)).length === 1, 20_000, 'a pending approval');
  const honest = await bed.client.verifyAuditTrail(runId, bed.store);
  expect(honest).toMatchObject({ ok: true, unanchored: 0 });
  const anchored = honest.anchor?.seq ?? 0;
  const runHead = honest.head?.seq ?? 0;
  expect(anchored).toBeGreaterThan(0);
  // The forger copies the run's own tail (anyone may query it) into the store and appends one event.
  const forged = forgedAfter(honest.events);
  await bed.store.appendAudit(runId, [...honest.events.filter((e) => e.seq > anchored), forged]);

  expect(await bed.client.verifyAuditTrail(runId, bed.store)).toMatchObject({ ok: false, problemSeq: forged.seq, problem: `1 event after the run's own head (seq ${runHead}): the run never recorded it` });
  await bed.stopWorker();
  try {
    // Nothing in Temporal tells these from events an activity stored just before the worker stopped.
    expect(await bed.client.verifyAuditTrail(runId, bed.store)).toMatchObject({ ok: true, unanchored: forged.seq - anchored, anchor: { seq: anchored } });
  } finally {
    await bed.startWorker();
  }
  await bed.client.cancel(runId);
  await bed.client.result(runId);
  // Once the run ended, its own events follow its head and its anchor is its last event: the forged one no longer holds.
  expect((await bed.client.verifyAuditTrail(runId, bed.store)).ok).toBe(false);
});

test('honest runs still verify: continued as new, and terminated while waiting', async () => {
  const continued = await bed.client.startRun({
    agent: 'test-agent',
    goal: 'two steps',
    requester: 'carol',
    policy: testPolicy(),
    continueAsNewAfterSteps: 1,
    script: [{ toolCalls: [{ name: 'echo', args: { text: 'a' } }] }, { toolCalls: [{ name: 'echo', args: { text: 'b' } }] }, { text: 'done' }],
  });
  expect(await bed.client.result(continued)).toMatchObject({ status: 'completed' });
  expect(await bed.client.verifyAuditTrail(continued, bed.store)).toMatchObject({ ok: true, unanchored: 0 });

  const waiting = await bed.client.startRun({ agent: 'test-agent', goal: 'pay', requester: 'carol', policy: financeApprovalPolicy(), script: [{ toolCalls: [{ name: 'transfer', args: { amount: 5, to: 'acct-1' } }] }, { text: 'done' }] });
  await eventually(async () => (await bed.client.pendingApprovals(waiting)).length === 1, 20_000, 'a pending approval');
  await bed.client.handle(waiting).terminate('operator pulled the plug');
  expect(await bed.client.verifyAuditTrail(waiting, bed.store)).toMatchObject({ ok: true });
});
