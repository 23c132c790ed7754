/**
 * A quota verdict completed by someone else: a counted call is booked in the quota ledger by the
 * `reserveQuota` activity before its tool runs, and anyone with a Temporal client can complete a
 * running activity by its id with a result of their own. A forged "booked" would walk a call past
 * a hard limit, so the tool activity books the call again itself (a no-op for a booking the ledger
 * holds) and runs only on the ledger's own verdict. The first test ran the tool before that.
 */
import { Client, Connection } from '@temporalio/client';
import { defineAgent } from '../../src/agents';
import { parsePolicy } from '../../src/governance';
import type { QuotaReserveRequest, QuotaReserveResult } from '../../src/store/quota-ledger';
import type { RunOutcome } from '../../src/workflows/run-types';
import { effects, transfer } from '../fixtures/test-agents';
import { createTestBed, eventually, settings, type TestBed } from '../helpers';

const agent = defineAgent({ name: 'counted-agent', instructions: 'Move money when asked.', model: 'scripted', tools: [transfer] });
/** One transfer a day per agent: the second is refused by the ledger. */
const policy = parsePolicy(
  {
    agent: 'counted-agent',
    tools: { transfer: {} },
    rules: [{ id: 'transfers', tools: ['transfer'], decision: 'allow' }],
    quotas: [{ id: 'one-transfer', count: 'calls', tools: ['transfer'], scope: ['agent'], window: { rolling: '24h' }, thresholds: [{ above: 1, action: 'deny', reason: 'one transfer a day' }] }],
  },
  'counted policy',
);

let bed: TestBed;
let attacker: Client;

/** Holds the ledger's booking of a call ref until `release` (the window in which someone else completes the activity). */
class HeldBooking {
  private opened: (() => void) | null = null;
  private readonly gate = new Promise<void>((resolve) => (this.opened = resolve));
  readonly seen = new Set<string>();

  constructor(readonly holdRefNumber: number) {}

  wrap(real: (req: QuotaReserveRequest) => Promise<QuotaReserveResult>) {
    return async (req: QuotaReserveRequest): Promise<QuotaReserveResult> => {
      if (req.ref.startsWith('call:')) {
        this.seen.add(req.ref);
        if (this.seen.size === this.holdRefNumber) await this.gate;
      }
      return real(req);
    };
  }

  release(): void {
    this.opened?.();
  }
}

beforeAll(async () => {
  // Payloads in clear, as a worker without a payload key reads them: this defence does not lean on encryption.
  bed = await createTestBed({ payloadCodec: null, agents: [agent], policies: [policy], acceptRunInputPolicy: false });
  const { address, namespace } = settings();
  attacker = new Client({ connection: await Connection.connect({ address }), namespace });
});
afterAll(async () => {
  await attacker?.connection.close();
  await bed?.close();
});
beforeEach(() => effects.reset());

async function pendingActivity(workflowId: string, type: string): Promise<string> {
  return eventually(async () => {
    const desc = await attacker.workflow.getHandle(workflowId).describe();
    return desc.raw.pendingActivities?.find((a) => a.activityType?.name === type)?.activityId ?? undefined;
  }, 30_000, `pending ${type}`);
}

const transfers = (...amounts: number[]) => [...amounts.map((amount) => ({ toolCalls: [{ name: 'transfer', args: { amount, to: 'mallory' } }] })), { text: 'done' }];

test('a "booked" verdict completed by someone else runs no call past the quota', async () => {
  const real = bed.store.reserveQuota.bind(bed.store);
  const held = new HeldBooking(2);
  bed.store.reserveQuota = held.wrap(real);
  try {
    const runId = await bed.client.startRun({ agent: 'counted-agent', goal: 'move money twice', requester: 'mallory', script: transfers(10, 20) });
    // The first transfer is booked and runs; the second is over the quota, and its booking is held.
    await eventually(async () => (held.seen.size >= 2 ? true : undefined), 60_000, 'the second booking');
    const activityId = await pendingActivity(runId, 'reserveQuota');
    await attacker.activity.complete({ workflowId: runId, activityId }, { kind: 'booked', warnings: [], waitMs: 0 });
    held.release();
    const outcome = await attacker.workflow.getHandle<() => Promise<RunOutcome>>(runId).result();
    expect(outcome.status).toBe('completed');
    expect(effects.log.filter((e) => e.tool === 'transfer').map((e) => (e.args as { amount: number }).amount)).toEqual([10]);
    const trail = await bed.store.readAudit(runId);
    const failed = trail.filter((e) => e.type === 'tool_failed');
    expect(failed).toHaveLength(1);
    expect(String(failed[0]?.data.error)).toMatch(/refused: transfer not run: .*one transfer a day.*the quota ledger holds no such booking/);
    // What the ledger holds: the one transfer, committed; nothing for the refused one.
    const reservations = await bed.store.listQuotaReservations({ runId });
    expect(reservations.map((r) => r.state)).toEqual(['committed']);
  } finally {
    held.release();
    bed.store.reserveQuota = real;
  }
}, 180_000);

test('calls the ledger booked run as before, and the quota refuses the next', async () => {
  // The quota is per agent and a day long: what the test before booked is reset first.
  await bed.store.resetQuota({ quota: 'counted-agent/one-transfer' });
  const runId = await bed.client.startRun({ agent: 'counted-agent', goal: 'move money twice', requester: 'bob', script: transfers(30, 40) });
  const outcome = await bed.client.result(runId);
  expect(outcome.status).toBe('completed');
  expect(effects.log.filter((e) => e.tool === 'transfer').map((e) => (e.args as { amount: number }).amount)).toEqual([30]);
  const trail = await bed.store.readAudit(runId);
  expect(trail.filter((e) => e.type === 'quota_exceeded')).toHaveLength(1);
  expect(trail.filter((e) => e.type === 'tool_succeeded')).toHaveLength(1);
}, 180_000);
