/**
 * Fleet quotas exact across worker processes: two workers on one PostgreSQL run store, 100
 * concurrent runs each refunding $60 under a refund quota of $1,000 a day. Exactly 16 refunds run
 * ($960), counted in the tool's own ledger; every other call is denied with the quota's reason.
 * The same again with one worker SIGKILLed halfway: still exactly $960, and nothing left held.
 */
import path from 'node:path';
import pg from 'pg';
import { WardenClient } from '../src/client';
import { parsePolicy, type AuditEvent } from '../src/governance';
import { createPostgresStore, type RunStore } from '../src/store';
import { PG_LEDGER_SCHEMA, postgresLedger, REFUND_AGENT, type EffectLedger } from './fixtures/quota/refund-agent';
import { eventually, settings, testPayloadCodec, testPayloadKeysFile } from './helpers';
import { describeWithPostgres } from './postgres';
import { killWorker, startWorkerProcess, stopWorkers, type WorkerProcess } from './worker-processes';

const RUNS = 100;
const FLEET = {
  quotas: [
    {
      id: 'refunds-per-day',
      count: { sum: 'args.amount' },
      tools: ['refund'],
      window: { calendar: 'day', timeZone: 'America/New_York' },
      thresholds: [{ above: 1000, action: 'deny', reason: 'refunds are capped at $1,000 a day across all refund runs' }],
    },
  ],
};

function startWorker(id: string, env: NodeJS.ProcessEnv): Promise<WorkerProcess> {
  return startWorkerProcess(id, env, { script: path.join(__dirname, 'fixtures', 'quota', 'quota-worker-process.ts'), idVariable: 'QUOTA_WORKER_ID', ownDir: 'warden-quota-worker-' });
}

const policy = parsePolicy({ agent: REFUND_AGENT, tools: { refund: {}, ping: {} }, rules: [{ id: 'allow-all', decision: 'allow', reason: 'test' }] }, 'quota multi-worker policy');
const types = (trail: AuditEvent[]) => trail.map((e) => e.type);

describeWithPostgres('fleet quotas across two worker processes on one PostgreSQL store', (server) => {
  const workers: WorkerProcess[] = [];
  let client: WardenClient | undefined;
  let store: RunStore | undefined;
  let ledger: EffectLedger | undefined;
  let admin: pg.Pool | undefined;
  let env: NodeJS.ProcessEnv = {};

  afterAll(async () => {
    await stopWorkers(workers);
    await client?.close();
    await store?.close();
    await ledger?.close();
    await admin?.end();
  });

  async function refundRuns(label: string): Promise<string[]> {
    if (!client) throw new Error('no client');
    const c = client;
    return Promise.all(Array.from({ length: RUNS }, (_, i) => c.startRun({ agent: REFUND_AGENT, goal: `${label}: refund order ${i}`, requester: 'carol', policy, script: [{ toolCalls: [{ name: 'refund', args: { order: `${label}-${i}`, amount: 60 } }] }, { text: 'done' }] })));
  }

  async function expectExactly960(runIds: string[]): Promise<void> {
    if (!client || !store || !ledger) throw new Error('not set up');
    const outcomes = await Promise.all(runIds.map((id) => client!.result(id)));
    expect(outcomes.every((o) => o.status === 'completed')).toBe(true);
    const effects = (await ledger.effects()).filter((e) => runIds.includes(e.runId));
    expect(effects).toHaveLength(16);
    expect(effects.reduce((sum, e) => sum + e.amount, 0)).toBe(960);
    const trails = await Promise.all(runIds.map((id) => client!.auditTrail(id, store)));
    const ran = runIds.filter((_, i) => types(trails[i] ?? []).includes('tool_succeeded'));
    expect(new Set(ran)).toEqual(new Set(effects.map((e) => e.runId)));
    const denied = trails.filter((t) => types(t).includes('quota_exceeded'));
    expect(denied).toHaveLength(RUNS - 16);
    for (const t of denied) {
      expect(t.find((e) => e.type === 'quota_exceeded')?.data).toMatchObject({ quota: 'fleet/refunds-per-day', action: 'deny', reason: 'refunds are capped at $1,000 a day across all refund runs' });
      expect(types(t)).not.toContain('tool_started');
    }
    // Nothing left held once the runs ended; what ran is committed, once each.
    const reservations = (await store.listQuotaReservations({ quota: 'fleet/refunds-per-day' })).filter((r) => runIds.includes(r.runId));
    expect(reservations.filter((r) => r.state === 'held')).toEqual([]);
    expect(reservations.filter((r) => r.state === 'committed').map((r) => r.runId).sort()).toEqual([...ran].sort());
  }

  test('100 concurrent runs on two workers: exactly 16 refunds of $60 under $1,000 a day', async () => {
    const url = await server().createDatabase('quota');
    admin = new pg.Pool({ connectionString: url, max: 2 });
    admin.on('error', () => undefined);
    await admin.query(PG_LEDGER_SCHEMA);
    ledger = postgresLedger(url);
    const { address, namespace } = settings();
    const taskQueue = `quota-mw-${Math.random().toString(36).slice(2, 10)}`;
    env = {
      ...process.env,
      WARDEN_STORE: url,
      QUOTA_LEDGER_URL: url,
      QUOTA_TASK_QUEUE: taskQueue,
      QUOTA_FLEET: JSON.stringify(FLEET),
      QUOTA_HOLD_MS: '400',
      WARDEN_TEST_TEMPORAL_ADDRESS: address,
      WARDEN_TEST_NAMESPACE: namespace,
      WARDEN_PAYLOAD_KEYS: testPayloadKeysFile(),
    };
    workers.push(...(await Promise.all([startWorker('a', env), startWorker('b', env)])));
    client = await WardenClient.connect({ address, namespace }, taskQueue, { payloadCodec: testPayloadCodec() });
    store = await createPostgresStore(url, { poolSize: 2 });

    const started = Date.now();
    const runIds = await refundRuns('both');
    await expectExactly960(runIds);
    const workersThatRefunded = await admin.query<{ worker: string }>('SELECT DISTINCT worker FROM refunds');
    expect(workersThatRefunded.rows.map((r) => r.worker).sort()).toEqual(['a', 'b']);
    console.log(`quota multi-worker: ${RUNS} runs on two workers in ${Date.now() - started} ms`);
  });

  test('the same with one worker SIGKILLed halfway: still exactly $960, nothing left held', async () => {
    if (!store || !admin) throw new Error('the first test sets up the store');
    // A new day for the quota: its counters reset, the ledger's earlier refunds kept apart by run.
    await store.resetQuota({ quota: 'fleet/refunds-per-day' });
    const [a] = workers;
    if (!a) throw new Error('no worker a');
    const runIds = await refundRuns('kill');
    // Kill a halfway: once some of this batch's refunds have run, a's among them (a refund holds 400 ms, so a has more in flight).
    const before = await eventually(
      async () => {
        const { rows } = await admin!.query<{ worker: string; n: string }>('SELECT worker, count(*) AS n FROM refunds WHERE run_id = ANY($1::text[]) GROUP BY worker', [runIds]);
        const byA = Number(rows.find((r) => r.worker === 'a')?.n ?? 0);
        const all = rows.reduce((sum, r) => sum + Number(r.n), 0);
        return byA >= 2 && all >= 6 ? all : undefined;
      },
      120_000,
      'worker a refunding in the second batch',
    );
    await killWorker(a);
    expect(a.child.signalCode).toBe('SIGKILL');
    await expectExactly960(runIds);
    console.log(`quota multi-worker: worker a killed after ${before} of 16 refunds`);
  });
});
