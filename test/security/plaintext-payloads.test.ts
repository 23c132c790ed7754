/**
 * A worker that holds a payload key takes only what a key holder wrote: a start, a decision, an
 * operator signal or an activity input that arrives unencrypted is refused (and audited), except
 * a pause, which only asks for a safer state. Attacked with the plain SDK's client, the Temporal
 * CLI and a worker of the attacker's own, none of which holds the key. A refusal never fails a
 * workflow task: the run goes on.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, type Payload, type PayloadCodec } from '@temporalio/common';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';
import { NativeConnection, Worker } from '@temporalio/worker';
import pino from 'pino';
import { DecisionSigner, createInboxServer, localUsersAuthenticator, type InboxServer } from '../../src/approvals';
import { hashPassword } from '../../src/approvals/auth/password';
import { acceptPlaintextFromEnv } from '../../src/cli/context';
import { ENCRYPTED_ENCODING } from '../../src/codec';
import { PlaintextMarkingCodec } from '../../src/codec/plaintext-codec';
import { resolveTemporalBinary } from '../../src/dev-server';
import { generateSigningKey, type AuditEvent } from '../../src/governance';
import type { PendingApproval } from '../../src/workflows/run-types';
import { effects } from '../fixtures/test-agents';
import { createTestBed, eventually, financeApprovalPolicy, settings, testPayloadCodec, testPolicy, type TestBed } from '../helpers';

const FAILURE_CONVERTER_PATH = require.resolve('../../src/codec/failure-converter');
const codec = testPayloadCodec();

/** A pino logger whose lines land in `lines` (parsed), to check what the worker said. */
function capturingLogger(lines: Record<string, unknown>[]) {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return pino({ level: 'warn' }, sink);
}

/**
 * The attacker's client: it writes every payload in clear (no key), yet reads the worker's
 * encrypted answers, so the test can see what it was told. An attacker sees only ciphertext there.
 */
async function plaintextSender(): Promise<Client> {
  const { address, namespace } = settings();
  const sendsInClear: PayloadCodec = { encode: async (payloads) => payloads, decode: (payloads) => codec.decode(payloads) };
  return new Client({ connection: await Connection.connect({ address }), namespace, dataConverter: { payloadCodecs: [sendsInClear] } });
}

async function rawHistory(client: Client, workflowId: string): Promise<temporal.api.history.v1.IHistory> {
  return client.workflow.getHandle(workflowId).fetchHistory();
}

/** The workflow task failures of a run: a payload the worker cannot take must never cause one. */
async function workflowTaskFailures(client: Client, workflowId: string): Promise<string[]> {
  const { events } = await rawHistory(client, workflowId);
  return (events ?? []).filter((e) => e.workflowTaskFailedEventAttributes).map((e) => e.workflowTaskFailedEventAttributes?.failure?.message ?? '?');
}

const transferScript = () => [{ toolCalls: [{ name: 'transfer', args: { amount: 5, to: 'acct-1' } }] }, { text: 'paid' }];

async function startWaiting(bed: TestBed): Promise<{ runId: string; approval: PendingApproval }> {
  const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'pay acct-1', requester: 'carol', policy: financeApprovalPolicy(), script: transferScript() });
  const [approval] = await eventually(async () => {
    const pending = await bed.client.pendingApprovals(runId);
    return pending.length > 0 ? pending : undefined;
  }, 20_000, 'the approval');
  if (!approval) throw new Error('no approval');
  return { runId, approval };
}

const unencrypted = (trail: AuditEvent[]) => trail.filter((e) => e.type === 'unencrypted_message').map((e) => e.data);

describe('a worker with a payload key refuses plaintext payloads', () => {
  let bed: TestBed;
  let plain: Client;
  const logged: Record<string, unknown>[] = [];
  const trail = (runId: string) => bed.client.auditTrail(runId, bed.store);

  beforeAll(async () => {
    // Unsigned decisions count here: what stops the plaintext ones below is that they are plaintext.
    bed = await createTestBed({ allowUnsignedDecisions: true, logger: capturingLogger(logged) });
    plain = await plaintextSender();
  });
  afterAll(async () => {
    await plain?.connection.close();
    await bed?.close();
  });
  beforeEach(() => effects.reset());

  test('a plaintext approve or reject (signal or Update), resume, rollback or applyPolicy is refused and audited; the run is unaffected', async () => {
    const { runId, approval } = await startWaiting(bed);
    const decision = { approvalId: approval.approvalId, approver: 'alice', groups: ['finance'], comment: 'sent in clear' };
    const handle = plain.workflow.getHandle(runId);

    await handle.signal('approve', decision);
    await eventually(async () => unencrypted(await trail(runId)).length === 1, 10_000, 'the refused approve signal in the trail');
    // An Update is refused by its validator: nothing enters the history, the caller is told why.
    const update = await handle.executeUpdate('approve', { args: [decision] }).then(
      () => null,
      (err: unknown) => err as { cause?: Error },
    );
    expect(update?.cause?.message).toBe(
      'plaintext payload refused: this worker holds a payload key, and the approve Update arrived unencrypted (send it with a Warden client that has the payload keys, or encode it through the codec endpoint)',
    );
    await handle.signal('reject', { approvalId: approval.approvalId, approver: 'alice', groups: ['finance'], reason: 'in clear' });

    // A pause that came encrypted, then a resume in clear: the run stays paused.
    await bed.client.pause(runId, { by: 'ops', reason: 'look first' });
    await eventually(async () => (await bed.client.status(runId)).paused, 10_000, 'paused');
    await handle.signal('resume', { by: 'mallory' });
    await handle.signal('rollback', { by: 'mallory' });
    await handle.signal('applyPolicy', { by: 'mallory' });
    const refused = await eventually(async () => {
      const found = unencrypted(await trail(runId));
      return found.length === 5 ? found : undefined;
    }, 10_000, 'five refusals in the trail');
    expect(refused.map((d) => d.message)).toEqual(['approve', 'reject', 'resume', 'rollback', 'applyPolicy']);
    for (const d of refused) {
      expect(d).toMatchObject({ via: 'signal', accepted: false, encoding: 'json/plain' });
      expect(d.reason).toBe(`plaintext payload refused: this worker holds a payload key, and the ${String(d.message)} signal arrived unencrypted (send it with a Warden client that has the payload keys, or encode it through the codec endpoint)`);
    }
    const types = (await trail(runId)).map((e) => e.type);
    expect(types).not.toContain('approval_accepted');
    expect(types).not.toContain('rejection_accepted');
    expect(types).not.toContain('resumed');
    expect(types).not.toContain('rollback_requested');
    expect(types).not.toContain('policy_applied');
    expect(await bed.client.status(runId)).toMatchObject({ paused: true });
    expect(await bed.client.pendingApprovals(runId)).toHaveLength(1);
    expect(effects.count('transfer')).toBe(0);

    // The run still takes what key holders send.
    await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice', groups: ['finance'] });
    await bed.client.cancel(runId);
    await bed.client.result(runId).catch(() => undefined);
    expect(await workflowTaskFailures(plain, runId)).toEqual([]);

    // The history replays on a worker that refuses plaintext the same way (the refusals are deterministic).
    const history = await rawHistory(plain, runId);
    const workflowBundle = { codePath: process.env.WARDEN_TEST_WORKFLOW_BUNDLE ?? '' };
    await Worker.runReplayHistory({ workflowBundle, dataConverter: { failureConverterPath: FAILURE_CONVERTER_PATH, payloadCodecs: [new PlaintextMarkingCodec(testPayloadCodec())] } }, history, runId);
  });

  test('a plaintext approve to a run that is not paused never lets the call run; the run completes when a key holder approves', async () => {
    const { runId, approval } = await startWaiting(bed);
    await plain.workflow.getHandle(runId).signal('approve', { approvalId: approval.approvalId, approver: 'alice', groups: ['finance'] });
    // Time enough for the worker to act on it, had it counted.
    await new Promise((r) => setTimeout(r, 1500));
    expect(effects.count('transfer')).toBe(0);
    expect(await bed.client.pendingApprovals(runId)).toHaveLength(1);
    await eventually(async () => unencrypted(await trail(runId)).length === 1, 10_000, 'the refusal');
    await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice', groups: ['finance'] });
    expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 1 });
    expect(effects.count('transfer')).toBe(1);
    expect(await workflowTaskFailures(plain, runId)).toEqual([]);
  });

  test('a plaintext start of agentRun is refused with a clear reason before it does anything', async () => {
    const workflowId = `warden/test-agent/plaintext-${randomUUID().slice(0, 8)}`;
    const handle: WorkflowHandle = await plain.workflow.start('agentRun', {
      taskQueue: bed.taskQueue,
      workflowId,
      args: [{ agent: 'test-agent', goal: 'echo', requester: 'mallory', policy: testPolicy(), script: [{ toolCalls: [{ name: 'echo', args: { text: 'hi' } }] }, { text: 'done' }] }],
    });
    const failed = await handle.result().then(
      () => null,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(WorkflowFailedError);
    const cause = (failed as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe('PlaintextPayloadError');
    expect((cause as ApplicationFailure).nonRetryable).toBe(true);
    expect(cause?.message).toBe(
      'plaintext payload refused: this worker holds a payload key, and the start input of agentRun arrived unencrypted (send it with a Warden client that has the payload keys, or encode it through the codec endpoint)',
    );
    const { events } = await rawHistory(plain, workflowId);
    expect((events ?? []).some((e) => e.activityTaskScheduledEventAttributes || e.markerRecordedEventAttributes)).toBe(false);
    expect(await workflowTaskFailures(plain, workflowId)).toEqual([]);
    expect(effects.count('echo')).toBe(0);
  });

  test('a plaintext pause still pauses (temporal workflow signal without a codec); it is audited as unencrypted', async () => {
    const { runId } = await startWaiting(bed);
    const { address, namespace } = settings();
    execFileSync(await resolveTemporalBinary(), ['workflow', 'signal', '--workflow-id', runId, '--name', 'pause', '--input', '{"by": "mallory", "reason": "looks odd"}', '--address', address, '--namespace', namespace]);
    await eventually(async () => (await bed.client.status(runId)).paused, 10_000, 'paused by a plaintext signal');
    const events = await trail(runId);
    expect(unencrypted(events)).toEqual([{ message: 'pause', via: 'signal', accepted: true, encoding: 'json/plain' }]);
    expect(events.find((e) => e.type === 'paused')?.data).toMatchObject({ by: 'mallory', reason: 'looks odd' });
    // And with no input at all, as the CLI sends it without --input.
    const second = await startWaiting(bed);
    execFileSync(await resolveTemporalBinary(), ['workflow', 'signal', '--workflow-id', second.runId, '--name', 'pause', '--address', address, '--namespace', namespace]);
    await eventually(async () => (await bed.client.status(second.runId)).paused, 10_000, 'paused by a signal without input');
    for (const id of [runId, second.runId]) {
      await bed.client.cancel(id);
      await bed.client.result(id).catch(() => undefined);
      expect(await workflowTaskFailures(plain, id)).toEqual([]);
    }
  });

  test('an activity scheduled by an attacker\'s workflow with its input in clear is refused before the tool runs', async () => {
    const { address, namespace } = settings();
    const connection = await NativeConnection.connect({ address });
    const taskQueue = `attacker-${randomUUID().slice(0, 8)}`;
    const attacker = await Worker.create({ connection, namespace, taskQueue, workflowsPath: require.resolve('../fixtures/plaintext-attacker') });
    const running = attacker.run();
    const workflowId = `attack-${randomUUID().slice(0, 8)}`;
    try {
      await plain.workflow.start('scheduleWardenTool', { taskQueue, workflowId, args: [bed.taskQueue] });
      const failure = await eventually(async () => {
        const { events } = await rawHistory(plain, workflowId);
        return (events ?? []).find((e) => e.activityTaskFailedEventAttributes || e.activityTaskCompletedEventAttributes);
      }, 20_000, 'the activity to end');
      expect(failure.activityTaskCompletedEventAttributes).toBeFalsy();
      const info = failure.activityTaskFailedEventAttributes?.failure?.applicationFailureInfo;
      expect(info).toMatchObject({ type: 'PlaintextPayloadError', nonRetryable: true });
      expect(effects.count('echo')).toBe(0);
      expect(logged).toEqual(expect.arrayContaining([expect.objectContaining({ activity: 'echo', workflowId, msg: expect.stringContaining('the input of activity echo arrived unencrypted') as unknown })]));
    } finally {
      await plain.workflow.getHandle(workflowId).terminate('test over').catch(() => undefined);
      attacker.shutdown();
      await running;
      await connection.close();
    }
  });

  test('a pause sent the way the Temporal UI sends it (input encoded by an operator through /codec/encode) pauses the run', async () => {
    const users = [{ id: 'olga', groups: ['operators'], password: await hashPassword('olga-pw-123') }];
    const inbox: InboxServer = await createInboxServer({
      client: bed.client,
      signer: new DecisionSigner({ keyId: 'test-web', ...generateSigningKey() }),
      auth: localUsersAuthenticator(users),
      logger: pino({ level: 'silent' }),
      codec: { codec, uiOrigin: 'http://127.0.0.1:1' },
    });
    try {
      const { runId } = await startWaiting(bed);
      const login = await fetch(`${inbox.url}/login`, { method: 'POST', body: new URLSearchParams({ username: 'olga', password: 'olga-pw-123', next: '/' }), redirect: 'manual' });
      const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
      const input = { metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from(JSON.stringify({ by: 'olga', reason: 'from the UI' })).toString('base64') };
      const res = await fetch(`${inbox.url}/codec/encode`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-namespace': settings().namespace, cookie }, body: JSON.stringify({ payloads: [input] }) });
      expect(res.status).toBe(200);
      const [encoded] = ((await res.json()) as { payloads: { metadata: Record<string, string>; data: string }[] }).payloads;
      const payload: Payload = { metadata: Object.fromEntries(Object.entries(encoded?.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])), data: Buffer.from(encoded?.data ?? '', 'base64') };
      expect(Buffer.from(payload.metadata?.encoding ?? []).toString()).toBe(ENCRYPTED_ENCODING);
      // What the UI then does: signal with the encoded payload as it is.
      await plain.workflowService.signalWorkflowExecution({
        namespace: settings().namespace,
        workflowExecution: { workflowId: runId },
        signalName: 'pause',
        input: { payloads: [payload] },
        identity: 'temporal-ui',
        requestId: randomUUID(),
      });
      await eventually(async () => (await bed.client.status(runId)).paused, 10_000, 'paused from the UI');
      const events = await trail(runId);
      expect(events.find((e) => e.type === 'paused')?.data).toMatchObject({ by: 'olga', reason: 'from the UI' });
      expect(unencrypted(events)).toEqual([]);
      await bed.client.cancel(runId);
    } finally {
      await inbox.close();
    }
  });
});

describe('recorded histories', () => {
  const dir = path.join(__dirname, '..', 'histories');
  // Encrypted with the test key, so a worker that refuses plaintext replays them as recorded.
  test.each(readdirSync(dir).filter((f) => f.endsWith('.json')))('%s replays on a worker that refuses plaintext', async (file) => {
    const { workflowId, history } = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as { workflowId: string; history: unknown };
    const workflowBundle = { codePath: process.env.WARDEN_TEST_WORKFLOW_BUNDLE ?? '' };
    await Worker.runReplayHistory({ workflowBundle, dataConverter: { failureConverterPath: FAILURE_CONVERTER_PATH, payloadCodecs: [new PlaintextMarkingCodec(testPayloadCodec())] } }, historyFromJSON(history), workflowId);
  });
});

describe('acceptPlaintextPayloads (migration)', () => {
  test('the CLI worker reads it from WARDEN_ACCEPT_PLAINTEXT_PAYLOADS=1; any value but 1, 0 or none is refused', () => {
    const before = process.env.WARDEN_ACCEPT_PLAINTEXT_PAYLOADS;
    try {
      for (const [value, accept] of [[undefined, false], ['', false], ['0', false], ['1', true]] as const) {
        if (value === undefined) delete process.env.WARDEN_ACCEPT_PLAINTEXT_PAYLOADS;
        else process.env.WARDEN_ACCEPT_PLAINTEXT_PAYLOADS = value;
        expect(acceptPlaintextFromEnv()).toBe(accept);
      }
      process.env.WARDEN_ACCEPT_PLAINTEXT_PAYLOADS = 'yes';
      expect(() => acceptPlaintextFromEnv()).toThrow('WARDEN_ACCEPT_PLAINTEXT_PAYLOADS is "yes": set it to 1 to take unencrypted payloads (migration only), or unset it');
    } finally {
      if (before === undefined) delete process.env.WARDEN_ACCEPT_PLAINTEXT_PAYLOADS;
      else process.env.WARDEN_ACCEPT_PLAINTEXT_PAYLOADS = before;
    }
  });

  test('the worker takes plaintext again, and says so loudly', async () => {
    const logged: Record<string, unknown>[] = [];
    const bed = await createTestBed({ acceptPlaintextPayloads: true, allowUnsignedDecisions: true, logger: capturingLogger(logged) });
    const plain = await plaintextSender();
    try {
      expect(logged).toEqual(expect.arrayContaining([expect.objectContaining({ level: 40, msg: expect.stringContaining('PLAINTEXT ACCEPTED: this worker holds a payload key but takes unencrypted payloads too') as unknown })]));
      const workflowId = `warden/test-agent/migrated-${randomUUID().slice(0, 8)}`;
      const handle = await plain.workflow.start('agentRun', {
        taskQueue: bed.taskQueue,
        workflowId,
        args: [{ agent: 'test-agent', goal: 'pay', requester: 'carol', policy: financeApprovalPolicy(), script: transferScript() }],
      });
      const [approval] = await eventually(async () => {
        const pending = await bed.client.pendingApprovals(workflowId);
        return pending.length > 0 ? pending : undefined;
      }, 20_000, 'the approval');
      await handle.signal('approve', { approvalId: approval?.approvalId ?? '', approver: 'alice', groups: ['finance'] });
      await expect(handle.result()).resolves.toMatchObject({ status: 'completed', toolCalls: 1 });
      expect(unencrypted(await bed.client.auditTrail(workflowId, bed.store))).toEqual([]);
    } finally {
      await plain.connection.close();
      await bed.close();
    }
  });
});
