/**
 * Fleet quotas and rate limits on one worker and its SQLite run store, against the real dev
 * server: a $1,000-a-day refund quota over 100 concurrent runs lets exactly 16 refunds of $60 run
 * (counted in the tool's own ledger), a rollback gives its $60 back, a soft limit sends a call to
 * people with the quota's reason, a rate limit spaces calls out instead of failing them, and a run
 * without quotas records no quota work in its history.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fleetPolicySchema, parsePolicy, type AuditEvent, type PolicyInput } from '../src/governance';
import { createTestBed, eventually, type TestBed } from './helpers';
import { refundAgent, REFUND_AGENT, sqliteLedger, type EffectLedger } from './fixtures/quota/refund-agent';
import { startFakeSlack } from './fixtures/approvals/fake-slack';
import { startOtlpReceiver, type OtlpReceiver } from './otlp-receiver';
import { createTelemetry, type WardenTelemetry } from '../src/telemetry';

const DAY_QUOTA = {
  id: 'refunds-per-day',
  count: { sum: 'args.amount' },
  tools: ['refund'],
  window: { calendar: 'day', timeZone: 'Europe/Berlin' },
  thresholds: [
    { above: 900, action: 'warn', reason: 'most of the day’s refund budget is spent' },
    { above: 1000, action: 'deny', reason: 'refunds are capped at $1,000 a day across all refund runs; tell the customer it will be processed tomorrow' },
  ],
} as const;

function policy(extra: Partial<PolicyInput> = {}) {
  return parsePolicy({ agent: REFUND_AGENT, tools: { refund: {}, ping: {} }, rules: [{ id: 'allow-all', decision: 'allow', reason: 'test' }], ...extra }, 'quota test policy');
}

const refundTurn = (order: string, amount = 60) => ({ toolCalls: [{ name: 'refund', args: { order, amount } }] });
const types = (trail: AuditEvent[]) => trail.map((e) => e.type);

describe('fleet quotas on one worker (SQLite)', () => {
  let dir: string;
  let ledger: EffectLedger;
  let bed: TestBed;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'warden-quota-'));
    ledger = sqliteLedger(path.join(dir, 'ledger.db'));
    bed = await createTestBed({ agents: [refundAgent(ledger)], fleet: fleetPolicySchema.parse({ quotas: [DAY_QUOTA] }), allowUnsignedDecisions: true, allowUnsignedOperators: true });
  });
  afterAll(async () => {
    await bed?.close();
    await ledger?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('100 concurrent runs refunding $60 under $1,000 a day: exactly 16 refunds run, the rest are denied with the quota’s reason', async () => {
    const runIds = await Promise.all(Array.from({ length: 100 }, (_, i) => bed.client.startRun({ agent: REFUND_AGENT, goal: `refund order ${i}`, requester: 'carol', policy: policy(), script: [refundTurn(`o-${i}`), { text: 'done' }] })));
    const outcomes = await Promise.all(runIds.map((id) => bed.client.result(id)));
    expect(outcomes.every((o) => o.status === 'completed')).toBe(true);

    const effects = await ledger.effects();
    expect(effects).toHaveLength(16);
    expect(effects.reduce((sum, e) => sum + e.amount, 0)).toBe(960);

    const trails = await Promise.all(runIds.map((id) => bed.client.auditTrail(id, bed.store)));
    const ran = trails.filter((t) => types(t).includes('tool_succeeded'));
    const denied = trails.filter((t) => types(t).includes('quota_exceeded'));
    expect(ran).toHaveLength(16);
    expect(denied).toHaveLength(84);
    expect(new Set(effects.map((e) => e.runId))).toEqual(new Set(ran.map((t) => t.find((e) => e.type === 'run_started')?.data.runId ?? runIds[trails.indexOf(t)])));
    for (const t of denied) {
      expect(t.find((e) => e.type === 'quota_exceeded')?.data).toMatchObject({ quota: 'fleet/refunds-per-day', action: 'deny', above: 1000, amount: 60 });
      expect(types(t)).not.toContain('tool_started');
    }
    // The model read the quota's reason.
    const refused = (await bed.store.readMessages(runIds[trails.indexOf(denied[0] ?? [])] ?? '', 3)) as { content?: { output?: { value?: string } }[] }[];
    expect(refused[2]?.content?.[0]?.output?.value).toContain('denied by quota fleet/refunds-per-day: refunds are capped at $1,000 a day');
    // The warning as the total crossed $900, once.
    expect(trails.flat().filter((e) => e.type === 'quota_warning')).toHaveLength(1);
    // Nothing is left held: every reservation committed (the 16) with none released or expired in between.
    expect(await bed.store.listQuotaReservations({ states: ['held'] })).toEqual([]);
    const usage = await bed.store.quotaUsage();
    expect(usage).toHaveLength(1);
    expect(usage[0]).toMatchObject({ quota: 'fleet/refunds-per-day', committed: 960, held: 0, reservations: 16 });
  });

  test('rolling a run back gives its $60 back: the next refund runs', async () => {
    // The day is spent ($960): a fresh run is denied.
    const before = await bed.client.startRun({ agent: REFUND_AGENT, goal: 'refund once more', requester: 'carol', policy: policy(), script: [refundTurn('late-1'), { text: 'done' }] });
    await bed.client.result(before);
    expect(types(await bed.client.auditTrail(before, bed.store))).toContain('quota_exceeded');

    // Reset, then a run that refunds $60 and then waits (a ping that needs approval) is rolled back.
    await bed.store.resetQuota({ quota: 'fleet/refunds-per-day' });
    const spend = await Promise.all(Array.from({ length: 15 }, (_, i) => bed.client.startRun({ agent: REFUND_AGENT, goal: `refund ${i}`, requester: 'carol', policy: policy(), script: [refundTurn(`again-${i}`), { text: 'done' }] })));
    await Promise.all(spend.map((id) => bed.client.result(id)));
    const waiting = policy({ rules: [{ id: 'ping-needs-ops', tools: ['ping'], decision: 'require_approval', reason: 'hold', approval: { approvers: ['group:ops'] } }, { id: 'allow-rest', decision: 'allow' }] });
    const rolled = await bed.client.startRun({ agent: REFUND_AGENT, goal: 'refund then wait', requester: 'carol', policy: waiting, script: [refundTurn('undo-me'), { toolCalls: [{ name: 'ping', args: { n: 1 } }] }, { text: 'done' }] });
    await eventually(async () => (await bed.client.pendingApprovals(rolled)).length > 0, 60_000, 'the rolled-back run waiting');
    expect((await bed.store.quotaUsage())[0]).toMatchObject({ committed: 960 });
    const denied = await bed.client.startRun({ agent: REFUND_AGENT, goal: 'one too many', requester: 'carol', policy: policy(), script: [refundTurn('too-many'), { text: 'done' }] });
    await bed.client.result(denied);
    expect(types(await bed.client.auditTrail(denied, bed.store))).toContain('quota_exceeded');

    await bed.client.rollback(rolled, { by: 'olga', reason: 'wrong customer' });
    expect(await bed.client.result(rolled)).toMatchObject({ status: 'rolled_back' });
    expect((await bed.store.quotaUsage())[0]).toMatchObject({ committed: 900, held: 0 });
    expect((await bed.store.listQuotaReservations({ runId: rolled }))[0]).toMatchObject({ state: 'refunded', amount: 60 });
    expect((await ledger.effects()).filter((e) => e.runId === rolled)).toEqual([]);

    const after = await bed.client.startRun({ agent: REFUND_AGENT, goal: 'refund after the rollback', requester: 'carol', policy: policy(), script: [refundTurn('after'), { text: 'done' }] });
    await bed.client.result(after);
    expect(types(await bed.client.auditTrail(after, bed.store))).toContain('tool_succeeded');
    expect((await bed.store.quotaUsage())[0]).toMatchObject({ committed: 960 });
  });

  test('past a soft limit a call waits for people, with the quota’s reason; approved, it runs', async () => {
    await bed.store.resetQuota({ quota: 'fleet/refunds-per-day' });
    const soft = {
      id: 'big-refunds',
      count: { sum: 'args.amount' },
      tools: ['refund'],
      scope: ['requester'],
      window: { rolling: '1h' },
      thresholds: [
        { above: 100, action: 'require_approval', reason: 'more than $100 an hour for one requester needs finance', approval: { approvers: ['group:finance'], timeout: '10m' } },
        { above: 1000, action: 'deny', reason: 'hard cap' },
      ],
    };
    const runId = await bed.client.startRun({ agent: REFUND_AGENT, goal: 'two refunds', requester: 'dave', policy: policy({ quotas: [soft as never] }), script: [refundTurn('s-1', 80), refundTurn('s-2', 80), { text: 'done' }] });
    const [pending] = await eventually(async () => {
      const p = await bed.client.pendingApprovals(runId);
      return p.length > 0 ? p : undefined;
    }, 60_000, 'the quota approval');
    expect(pending).toMatchObject({ tool: 'refund', ruleId: `quota:${REFUND_AGENT}/big-refunds` });
    expect(pending?.reason).toContain('needs approval by quota quota-refund-agent/big-refunds: more than $100 an hour for one requester needs finance (80 used, this call adds 80, limit 100)');
    expect((await bed.client.status(runId)).currentDetails).toContain('refund awaits approval by group:finance');
    await bed.client.approve(runId, { approvalId: pending?.approvalId ?? '', approver: 'fran', groups: ['finance'] });
    expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 2 });
    const mine = await bed.store.listQuotaReservations({ runId, quota: `${REFUND_AGENT}/big-refunds` });
    expect(mine.map((r) => [r.state, r.amount, r.counter])).toEqual([
      ['committed', 80, `${REFUND_AGENT}/big-refunds|requester=dave`],
      ['committed', 80, `${REFUND_AGENT}/big-refunds|requester=dave`],
    ]);
  });

  test('a run without quotas records no quota marker; a run with them does', async () => {
    const other = await createTestBed({ agents: [refundAgent(ledger)] });
    try {
      const plain = await other.client.startRun({ agent: REFUND_AGENT, goal: 'ping', requester: 'carol', policy: policy(), script: [{ toolCalls: [{ name: 'ping', args: { n: 1 } }] }, { text: 'done' }] });
      await other.client.result(plain);
      const history = await other.client.client.workflow.getHandle(plain).fetchHistory();
      const text = JSON.stringify(history.events);
      expect(text).not.toContain('warden-quotas');
      expect(history.events?.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'reserveQuota')).toEqual([]);
    } finally {
      await other.close();
    }
    const counted = await bed.client.startRun({ agent: REFUND_AGENT, goal: 'ping', requester: 'carol', policy: policy(), script: [{ toolCalls: [{ name: 'ping', args: { n: 1 } }] }, { text: 'done' }] });
    await bed.client.result(counted);
    // The fleet's refund quota does not count pings: a marker (the run has quotas) but no booking.
    const history = await bed.client.client.workflow.getHandle(counted).fetchHistory();
    expect(history.events?.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'reserveQuota')).toEqual([]);
  });

  test('a policy with a bad quota is refused before the run starts, naming the field', async () => {
    await expect(
      bed.client.startRun({ agent: REFUND_AGENT, goal: 'x', requester: 'carol', policy: { ...policy(), quotas: [{ ...DAY_QUOTA, window: { calendar: 'day', timeZone: 'Europe/Nowhere' } }] } as never }),
    ).rejects.toThrow(/quotas\[0\]\.window\.timeZone: must be an IANA time zone/);
  });
});

describe('rate limits (SQLite)', () => {
  let dir: string;
  let ledger: EffectLedger;
  let bed: TestBed;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'warden-rate-'));
    ledger = sqliteLedger(path.join(dir, 'ledger.db'));
    bed = await createTestBed({ agents: [refundAgent(ledger)], fleet: fleetPolicySchema.parse({ rateLimits: [{ tool: 'ping', rate: '10/s' }] }) });
  });
  afterAll(async () => {
    await bed?.close();
    await ledger?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('10 calls a second: 50 calls complete, none fails, the last at least 4.9 s after the first; the wait shows in status', async () => {
    const pings = (r: number) => ({ toolCalls: Array.from({ length: 10 }, (_, i) => ({ name: 'ping', args: { n: r * 10 + i } })) });
    const runIds = await Promise.all(Array.from({ length: 5 }, (_, r) => bed.client.startRun({ agent: REFUND_AGENT, goal: `pings ${r}`, requester: 'carol', policy: policy(), script: [pings(r), { text: 'done' }] })));
    const waiting = await eventually(async () => {
      for (const id of runIds) {
        const details = (await bed.client.status(id)).currentDetails;
        if (details.includes('ping waits for rate limit ping:10/s')) return details;
      }
      return undefined;
    }, 60_000, 'a call waiting for the rate limit');
    expect(waiting).toMatch(/^step 1: .*ping waits for rate limit ping:10\/s/);
    const outcomes = await Promise.all(runIds.map((id) => bed.client.result(id)));
    for (const o of outcomes) expect(o).toMatchObject({ status: 'completed', toolCalls: 10 });
    const trails = await Promise.all(runIds.map((id) => bed.client.auditTrail(id, bed.store)));
    expect(trails.flat().filter((e) => e.type === 'tool_succeeded')).toHaveLength(50);
    expect(trails.flat().filter((e) => e.type === 'tool_failed')).toHaveLength(0);
    const at = await ledger.pings();
    expect(at).toHaveLength(50);
    const first = at[0] ?? 0;
    const last = at[49] ?? 0;
    expect(last - first).toBeGreaterThanOrEqual(4900);
    console.log(`rate limit 10/s: 50 calls over ${last - first} ms`);
  });
});

describe('quota notices in Slack', () => {
  let dir: string;
  let ledger: EffectLedger;
  let bed: TestBed;
  let fake: Awaited<ReturnType<typeof startFakeSlack>>;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'warden-quota-slack-'));
    ledger = sqliteLedger(path.join(dir, 'ledger.db'));
    fake = await startFakeSlack();
    const fleet = fleetPolicySchema.parse({
      quotas: [
        {
          id: 'refunds-per-hour',
          count: { sum: 'args.amount' },
          tools: ['refund'],
          window: { rolling: '1h' },
          thresholds: [
            { above: 100, action: 'warn', reason: 'refunds are running high this hour', notify: { slack: { channel: 'C0QUOTAS' } } },
            { above: 200, action: 'deny', reason: 'refunds are capped at $200 an hour', notify: { slack: { channel: 'C0QUOTAS' } } },
          ],
        },
      ],
    });
    bed = await createTestBed({ agents: [refundAgent(ledger)], fleet, slack: { botToken: 'xoxb-test', slackApiUrl: fake.url } });
  });
  afterAll(async () => {
    await bed?.close();
    await fake?.close();
    await ledger?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a threshold with notify.slack posts to its channel as a booking crosses it', async () => {
    const runId = await bed.client.startRun({ agent: REFUND_AGENT, goal: 'three refunds', requester: 'carol', policy: policy(), script: [refundTurn('h-1', 80), refundTurn('h-2', 80), refundTurn('h-3', 80), { text: 'done' }] });
    expect(await bed.client.result(runId)).toMatchObject({ status: 'completed' });
    expect((await ledger.effects()).map((e) => e.amount)).toEqual([80, 80]);
    const posts = fake.calls.filter((c) => c.method === 'chat.postMessage' && c.args.channel === 'C0QUOTAS').map((c) => String(c.args.text));
    expect(posts).toEqual([
      `Quota fleet/refunds-per-hour (fleet/refunds-per-hour, rolling:1h) passed 100: refunds are running high this hour (160 with refund in run ${runId})`,
      `Quota fleet/refunds-per-hour (fleet/refunds-per-hour, rolling:1h) refused a booking at 200: refunds are capped at $200 an hour (240 with refund in run ${runId})`,
    ]);
    const trail = await bed.client.auditTrail(runId, bed.store);
    expect(trail.filter((e) => e.type === 'quota_warning').map((e) => e.data.above)).toEqual([100]);
    expect(trail.filter((e) => e.type === 'quota_exceeded').map((e) => e.data.above)).toEqual([200]);
  });
});

describe('quota metrics', () => {
  let dir: string;
  let ledger: EffectLedger;
  let bed: TestBed;
  let receiver: OtlpReceiver;
  let telemetry: WardenTelemetry;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'warden-quota-metrics-'));
    ledger = sqliteLedger(path.join(dir, 'ledger.db'));
    receiver = await startOtlpReceiver();
    telemetry = createTelemetry({ endpoint: receiver.url, serviceName: 'warden-quota-test', metricIntervalMs: 10 * 60_000 });
    const fleet = fleetPolicySchema.parse({ quotas: [{ id: 'two-refunds', count: 'calls', tools: ['refund'], window: { rolling: '1h' }, thresholds: [{ above: 1, action: 'warn', reason: 'a second refund' }, { above: 2, action: 'deny', reason: 'two refunds an hour' }] }] });
    bed = await createTestBed({ agents: [refundAgent(ledger)], fleet, telemetry });
  });
  afterAll(async () => {
    await bed?.close();
    await telemetry?.shutdown();
    await receiver?.close();
    await ledger?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('warden.quota.used counts what was booked, warden.quota.exceeded the thresholds reached, by quota and action', async () => {
    const runId = await bed.client.startRun({ agent: REFUND_AGENT, goal: 'three refunds', requester: 'carol', policy: policy(), script: [refundTurn('m-1', 5), refundTurn('m-2', 5), refundTurn('m-3', 5), { text: 'done' }] });
    await bed.client.result(runId);
    await telemetry.forceFlush();
    const latest = (name: string) => [...receiver.metrics].reverse().find((m) => m.name === name);
    expect(latest('warden.quota.used')?.points).toEqual([expect.objectContaining({ attributes: { 'warden.quota.name': 'fleet/two-refunds', 'warden.quota.count': 'calls' }, value: 2 })]);
    const exceeded = latest('warden.quota.exceeded')?.points ?? [];
    expect(exceeded.map((p) => [p.attributes['warden.quota.action'], p.value]).sort()).toEqual([
      ['deny', 1],
      ['warn', 1],
    ]);
  });
});

describe('a cancelled run gives back what it holds', () => {
  let dir: string;
  let ledger: EffectLedger;
  let bed: TestBed;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'warden-quota-cancel-'));
    ledger = sqliteLedger(path.join(dir, 'ledger.db'));
    // One refund an hour: the second call of a turn holds its reservation while it waits for its slot.
    const fleet = fleetPolicySchema.parse({ quotas: [DAY_QUOTA], rateLimits: [{ tool: 'refund', rate: '1/h' }] });
    bed = await createTestBed({ agents: [refundAgent(ledger)], fleet });
  });
  afterAll(async () => {
    await bed?.close();
    await ledger?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a call waiting for its rate-limit slot holds its amount; cancelling the run releases it', async () => {
    const runId = await bed.client.startRun({ agent: REFUND_AGENT, goal: 'two refunds', requester: 'carol', policy: policy(), script: [{ toolCalls: [{ name: 'refund', args: { order: 'c-1', amount: 60 } }, { name: 'refund', args: { order: 'c-2', amount: 70 } }] }, { text: 'done' }] });
    await eventually(async () => (await bed.client.status(runId)).currentDetails.includes('refund waits for rate limit refund:1/h'), 60_000, 'the second refund waiting for its slot');
    const states = async () => (await bed.store.listQuotaReservations({ runId })).map((r) => [r.amount, r.state]).sort((a, b) => Number(a[0]) - Number(b[0]));
    expect(await states()).toEqual([
      [60, 'committed'],
      [70, 'held'],
    ]);
    await bed.client.cancel(runId);
    expect(await bed.client.result(runId)).toMatchObject({ status: 'cancelled' });
    expect(await states()).toEqual([
      [60, 'committed'],
      [70, 'released'],
    ]);
    expect((await ledger.effects()).map((e) => e.amount)).toEqual([60]);
  });
});
