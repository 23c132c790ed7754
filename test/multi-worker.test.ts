/**
 * Two worker processes, as on two hosts (different working directories, nothing shared but the
 * Temporal server and the PostgreSQL run store), serve one task queue. One is killed with SIGKILL
 * while a tool call is in flight; every run still completes, the other worker picks the runs up
 * from the shared store, and each effect happened once per idempotency key.
 */
import path from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import pino from 'pino';
import { Context } from '@temporalio/activity';
import { WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { WardenClient } from '../src/client';
import { parsePolicy, verifyAuditChain } from '../src/governance';
import { createPostgresStore, type RunStore } from '../src/store';
import { LEDGER_SCHEMA } from './fixtures/multi-worker-agent';
import { callInFlight, toolAttempts } from './fixtures/multi-worker-ledger';
import { defineAgent } from '../src/agents';
import { echo, testAgent } from './fixtures/test-agents';
import { createTestBed, eventually, financeApprovalPolicy, settings, testPayloadCodec, testPayloadKeysFile, testPolicy, type TestBed } from './helpers';
import { describeWithPostgres } from './postgres';
import { killWorker, startWorkerProcess, stopWorkers, type WorkerProcess } from './worker-processes';

const RUNS = 6;
const CALLS_PER_RUN = 2;

function startWorker(id: string, env: NodeJS.ProcessEnv): Promise<WorkerProcess> {
  return startWorkerProcess(id, env, { script: path.join(__dirname, 'fixtures', 'multi-worker-process.ts'), idVariable: 'MULTI_WORKER_ID', ownDir: 'warden-worker-' });
}

async function query<R extends pg.QueryResultRow>(pool: pg.Pool, text: string, values: unknown[] = []): Promise<R[]> {
  return (await pool.query<R>(text, values)).rows;
}

describeWithPostgres('two worker processes on one PostgreSQL run store', (server) => {
  const workers: WorkerProcess[] = [];
  let ledger: pg.Pool | undefined;
  let store: RunStore | undefined;
  let client: WardenClient | undefined;
  let shared: { env: NodeJS.ProcessEnv; storeUrl: string; taskQueue: string } | undefined;

  afterAll(async () => {
    await stopWorkers(workers);
    await client?.close();
    await store?.close();
    await ledger?.end();
  });

  it('completes every run after one worker is killed mid-call, with one effect per idempotency key', async () => {
    const storeUrl = await server().createDatabase('runs');
    ledger = new pg.Pool({ connectionString: storeUrl, max: 2 });
    ledger.on('error', () => undefined);
    await ledger.query(LEDGER_SCHEMA);
    const { address, namespace } = settings();
    const taskQueue = `multi-worker-${Math.random().toString(36).slice(2, 10)}`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      WARDEN_STORE: storeUrl,
      MULTI_WORKER_LEDGER_URL: storeUrl,
      MULTI_WORKER_TASK_QUEUE: taskQueue,
      WARDEN_TEST_TEMPORAL_ADDRESS: address,
      WARDEN_TEST_NAMESPACE: namespace,
      WARDEN_PAYLOAD_KEYS: testPayloadKeysFile(),
    };
    // Both open the new database at once: the migration runs once under its advisory lock.
    workers.push(...(await Promise.all([startWorker('a', env), startWorker('b', env)])));
    const [a, b] = workers as [WorkerProcess, WorkerProcess];

    client = await WardenClient.connect({ address, namespace }, taskQueue, { payloadCodec: testPayloadCodec() });
    const policy = parsePolicy({ agent: 'ledger-agent', tools: { book: {} }, rules: [{ id: 'allow-all', decision: 'allow', reason: 'test' }] }, 'multi-worker policy');
    const runIds = await Promise.all(
      Array.from({ length: RUNS }, (_, r) =>
        client!.startRun({
          agent: 'ledger-agent',
          goal: `book run ${r}`,
          requester: 'carol',
          policy,
          script: [
            ...Array.from({ length: CALLS_PER_RUN }, (_, c) => ({ toolCalls: [{ name: 'book', args: { note: `run ${r} entry ${c}` } }] })),
            { text: `booked run ${r}` },
          ],
        }),
      ),
    );

    // Kill worker a once both have worked and a is inside a call: effect booked, answer not yet given.
    const inFlight = await callInFlight(ledger, 'a', 'b', 60_000);
    await killWorker(a);
    expect(a.child.signalCode).toBe('SIGKILL');

    const started = Date.now();
    const outcomes = await Promise.all(runIds.map((id) => client!.result(id)));
    const recoveryMs = Date.now() - started;
    for (const [i, outcome] of outcomes.entries()) expect(outcome).toMatchObject({ status: 'completed', text: `booked run ${i}`, toolCalls: CALLS_PER_RUN });

    // Every call booked exactly once: as many effects as calls, each under the key the run used.
    store = await createPostgresStore(storeUrl);
    const effects = await query<{ idempotency_key: string; run_id: string; note: string }>(ledger, 'SELECT idempotency_key, run_id, note FROM tool_effects ORDER BY note');
    expect(effects).toHaveLength(RUNS * CALLS_PER_RUN);
    expect(effects.map((e) => e.note).sort()).toEqual(Array.from({ length: RUNS }, (_, r) => Array.from({ length: CALLS_PER_RUN }, (_, c) => `run ${r} entry ${c}`)).flat().sort());
    const attempts = await toolAttempts(ledger);
    const keys = new Set(effects.map((e) => e.idempotency_key));
    expect(new Set(attempts.map((t) => t.idempotency_key))).toEqual(keys);

    // The call a died in was retried by b under the same key, and booked nothing the second time.
    const retried = attempts.filter((t) => t.idempotency_key === inFlight);
    expect(retried).toEqual(expect.arrayContaining([{ idempotency_key: inFlight, worker: 'a', finished: false }, { idempotency_key: inFlight, worker: 'b', finished: true }]));
    // Every call finished on some worker, and after the kill only b did.
    for (const key of keys) expect(attempts.some((t) => t.idempotency_key === key && t.finished)).toBe(true);
    expect(new Set(attempts.map((t) => t.worker))).toEqual(new Set(['a', 'b']));

    // Both workers wrote to the one store: each run's conversation reads without a gap and its trail verifies.
    for (const [i, runId] of runIds.entries()) {
      const trail = await store.readAudit(runId);
      expect(verifyAuditChain(trail)).toMatchObject({ ok: true });
      const booked = trail.filter((e) => e.type === 'tool_succeeded');
      expect(booked).toHaveLength(CALLS_PER_RUN);
      // goal, then per call the model's answer and the tool result, then the final answer.
      const messages = (await store.readMessages(runId, 2 + 2 * CALLS_PER_RUN)) as { role: string }[];
      expect(messages.map((m) => m.role)).toEqual(['user', ...Array.from({ length: CALLS_PER_RUN }, () => ['assistant', 'tool']).flat(), 'assistant']);
      expect(outcomes[i]?.steps).toBe(CALLS_PER_RUN + 1);
    }
    expect(new Set(effects.map((e) => e.run_id))).toEqual(new Set(runIds));
    expect(b.child.exitCode).toBeNull();
    console.log(`multi-worker: ${RUNS} runs × ${CALLS_PER_RUN} calls, ${attempts.length} tool attempts, all runs done ${recoveryMs} ms after the kill`);
    shared = { env, storeUrl, taskQueue };
  });

  it('a worker killed mid-delegation: the other finishes the delegate and the delegating run, each booking once', async () => {
    if (!shared || !client || !ledger) throw new Error('the first test sets up the store and the workers');
    // b is alive; c joins, so whichever holds the delegate's call when it is killed, the other carries on.
    workers.push(await startWorker('c', shared.env));
    const policy = parsePolicy({ agent: 'ledger-boss', tools: { 'agent:ledger-agent': {} }, rules: [{ id: 'delegate', decision: 'allow', reason: 'test' }] }, 'boss policy');
    const delegateScript = [{ toolCalls: [{ name: 'book', args: { note: 'delegated entry 0' } }] }, { toolCalls: [{ name: 'book', args: { note: 'delegated entry 1' } }] }, { text: 'booked both' }];
    const runId = await client.startRun({
      agent: 'ledger-boss',
      goal: 'get two entries booked',
      requester: 'carol',
      policy,
      script: [{ toolCalls: [{ name: 'agent__ledger-agent', args: { goal: 'book two entries' }, script: delegateScript }] }, { text: 'the ledger agent booked both' }],
    });
    const childId = `${runId.replace('warden/ledger-boss/', 'warden/ledger-agent/')}.d2`;
    const holder = await eventually(
      async () => (await query<{ worker: string }>(ledger!, 'SELECT worker FROM tool_attempts WHERE run_id = $1 AND finished_at IS NULL', [childId]))[0]?.worker,
      60_000,
      "a worker inside the delegate's first call",
    );
    const victim = workers.find((w) => w.id === holder);
    if (!victim) throw new Error(`no worker ${holder}`);
    await killWorker(victim);

    expect(await client.result(runId)).toMatchObject({ status: 'completed', text: 'the ledger agent booked both', toolCalls: 3, delegated: { toolCalls: 2, steps: 3 } });
    expect(await client.result(childId)).toMatchObject({ status: 'completed', text: 'booked both', toolCalls: 2 });
    const booked = await query<{ note: string }>(ledger, 'SELECT note FROM tool_effects WHERE run_id = $1 ORDER BY note', [childId]);
    expect(booked.map((r) => r.note)).toEqual(['delegated entry 0', 'delegated entry 1']);
    const survivor = await query<{ worker: string }>(ledger, 'SELECT DISTINCT worker FROM tool_attempts WHERE run_id = $1 AND finished_at IS NOT NULL', [childId]);
    expect(survivor.map((r) => r.worker)).not.toContain(holder);
    store ??= await createPostgresStore(shared.storeUrl);
    expect(verifyAuditChain(await store.readAudit(runId))).toMatchObject({ ok: true });
    expect(verifyAuditChain(await store.readAudit(childId))).toMatchObject({ ok: true });
  });
});

describe('a worker whose agents module lacks an agent, on a shared task queue', () => {
  const beds: TestBed[] = [];
  afterAll(async () => {
    for (const bed of beds) await bed.close();
  });

  it('refuses the agent loudly, naming it and the worker, and hands the call to a worker that serves it', async () => {
    const other = defineAgent({ name: 'other-agent', instructions: 'You echo.', model: 'scripted', tools: [echo] });
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) }));
    // The first worker serves test-agent only; both share the task queue and the run store.
    const lacking = await createTestBed({ agents: [testAgent], logger, workerOptions: { identity: 'lacking-worker' } });
    beds.push(lacking);
    const runId = await lacking.client.startRun({ agent: 'other-agent', goal: 'echo once', requester: 'carol', policy: testPolicy({ agent: 'other-agent' }), script: [{ toolCalls: [{ name: 'echo', args: { text: 'hi' } }] }, { text: 'echoed' }] });
    const refusal = await eventually(async () => lines.find((l) => l.level === 50 && typeof l.msg === 'string' && l.msg.includes('does not serve it')), 30_000, 'the refusal in the log');
    console.log(`missing agent: ${String(refusal.msg)}`);
    expect(refusal).toMatchObject({ agent: 'other-agent', served: 'test-agent', taskQueue: lacking.taskQueue, workflowId: runId });
    expect(refusal.msg).toContain('unknown agent "other-agent": worker lacking-worker');
    // The run waits for a worker that serves its agent; its status query answers meanwhile.
    expect((await lacking.client.status(runId)).outcome ?? null).toBeNull();

    const serving = await createTestBed({ agents: [testAgent, other], taskQueue: lacking.taskQueue, storePath: lacking.storePath });
    beds.push(serving);
    await lacking.stopWorker();
    expect(await serving.client.result(runId)).toMatchObject({ status: 'completed', text: 'echoed', toolCalls: 1 });
  }, 200_000);
});

describe('approve under load', () => {
  let bed: TestBed | undefined;
  afterAll(async () => bed?.close());

  it('a decision whose call timed out is sent again under its Update id: counted once, and the reply is the real outcome', async () => {
    // A worker under load: verifying a decision takes 1.5 s, longer than the client's 500 ms per try.
    const slowVerify = () => ({
      inbound: {
        async execute(input: unknown, next: (input: unknown) => Promise<unknown>) {
          if (Context.current().info.activityType === 'verifyDecision') await sleep(1500);
          return next(input);
        },
      },
    });
    bed = await createTestBed({ allowUnsignedDecisions: true, workerOptions: { interceptors: { activity: [slowVerify as never] } } });
    const client = bed.client;
    const start = (to: string) => client.startRun({ agent: 'test-agent', goal: `pay ${to}`, requester: 'carol', policy: financeApprovalPolicy(), script: [{ toolCalls: [{ name: 'transfer', args: { amount: 50, to } }] }, { text: 'paid' }] });
    const pendingOf = async (runId: string) => eventually(async () => (await client.pendingApprovals(runId))[0], 30_000, 'the approval');

    // One try only: the call fails with the deadline, yet the run counts the decision.
    const first = await start('dora');
    const firstApproval = await pendingOf(first);
    await expect(client.approve(first, { approvalId: firstApproval.approvalId, approver: 'alice', groups: ['finance'] }, { rpcTimeoutMs: 500, attempts: 1 })).rejects.toBeInstanceOf(WorkflowUpdateRPCTimeoutOrCancelledError);
    expect(await client.result(first)).toMatchObject({ status: 'completed' });

    // With retries (the default), the same Update id again until the run answers: the real outcome.
    const second = await start('erin');
    const secondApproval = await pendingOf(second);
    const started = Date.now();
    const reply = await client.approve(second, { approvalId: secondApproval.approvalId, approver: 'alice', groups: ['finance'] }, { rpcTimeoutMs: 500 });
    console.log(`approve under load: the reply came after ${Date.now() - started} ms, past the 500 ms deadline of each try`);
    expect(reply).toMatchObject({ status: 'accepted', approvalId: secondApproval.approvalId, decided: true, state: 'approved', by: 'alice' });
    expect(await client.result(second)).toMatchObject({ status: 'completed', text: 'paid' });
    const trail = await client.auditTrail(second, bed.store);
    expect(trail.filter((e) => e.type === 'approval_accepted')).toHaveLength(1);
    expect(trail.filter((e) => e.type === 'approval_refused')).toHaveLength(0);
  }, 200_000);
});
