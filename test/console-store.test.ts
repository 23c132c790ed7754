/**
 * The run store's console reads (fleet aggregates, approval waits, run digests) and agents' kill
 * switches, on SQLite and on a real PostgreSQL server: the same known trails give the same figures.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { emptyAuditHead, nextAuditEvent, type AuditEvent, type AuditEventType } from '../src/governance';
import { createPostgresStore, createSqliteStore, StoreError, type RunStore } from '../src/store';
import { describeWithPostgres } from './postgres';

function trail(events: [AuditEventType, Record<string, unknown>, string][]): AuditEvent[] {
  let head = emptyAuditHead();
  return events.map(([type, data, at]) => {
    const e = nextAuditEvent(head, type, data, at);
    head = { seq: e.seq, hash: e.hash };
    return e;
  });
}

const DAY = { from: '2026-03-01T00:00:00.000Z', to: '2026-03-02T00:00:00.000Z' };

async function seed(store: RunStore): Promise<void> {
  await store.appendAudit('warden/alpha/1', trail([
    ['run_started', { agent: 'alpha', tenant: 't1' }, '2026-03-01T01:00:00.000Z'],
    ['model_turn', { inputTokens: 100, outputTokens: 10, costUsd: 0.5, text: 'a long answer with {"json": "inside"}' }, '2026-03-01T01:00:01.000Z'],
    ['policy_decision', { decision: 'require_approval' }, '2026-03-01T01:00:02.000Z'],
    ['approval_requested', { approvalId: 'x1' }, '2026-03-01T01:00:02.000Z'],
    ['approval_decided', { approvalId: 'x1', decision: 'rejected' }, '2026-03-01T01:00:12.500Z'],
    ['tool_started', { callId: 'c1' }, '2026-03-01T01:00:13.000Z'],
    ['run_finished', { status: 'completed' }, '2026-03-01T02:00:00.000Z'],
  ]));
  await store.appendAudit('warden/alpha_x/2', trail([
    ['run_started', { agent: 'alpha_x', tenant: 't2' }, '2026-03-01T01:30:00.000Z'],
    ['model_turn', { inputTokens: 7, outputTokens: 3, costUsd: 0.25 }, '2026-03-01T01:30:01.000Z'],
    ['policy_decision', { decision: 'deny' }, '2026-03-01T01:30:02.000Z'],
    ['approval_requested', { approvalId: 'y1' }, '2026-03-01T01:30:02.000Z'],
    ['approval_expired', { approvalId: 'y1' }, '2026-03-01T01:40:02.000Z'],
    ['budget_exhausted', { limit: 'maxSteps' }, '2026-03-01T01:41:00.000Z'],
    ['run_finished', { status: 'budget_exhausted' }, '2026-03-01T01:41:00.000Z'],
  ]));
  // The day after: outside the range.
  await store.appendAudit('warden/alpha/3', trail([['model_turn', { inputTokens: 1, outputTokens: 1, costUsd: 9 }, '2026-03-02T00:00:00.000Z']]));
}

function storeSuite(open: () => Promise<RunStore>): void {
  let store: RunStore;
  beforeAll(async () => {
    store = await open();
    await seed(store);
  });
  afterAll(async () => {
    await store?.close();
  });

  test('fleetActivity counts the events of the range by hour, type, decision and outcome, with model figures summed; an agent filter is its runs only (no LIKE wildcards)', async () => {
    const rows = await store.fleetActivity({ ...DAY, bucket: 'hour' });
    const pick = (type: string, extra: Record<string, unknown> = {}) => rows.filter((r) => r.type === type && Object.entries(extra).every(([k, v]) => (r as unknown as Record<string, unknown>)[k] === v));
    expect(pick('model_turn')).toEqual([{ bucket: '2026-03-01T01', type: 'model_turn', decision: null, status: null, count: 2, inputTokens: 107, outputTokens: 13, costUsd: 0.75 }]);
    expect(pick('policy_decision').map((r) => [r.decision, r.count])).toEqual(expect.arrayContaining([['require_approval', 1], ['deny', 1]]));
    expect(pick('run_finished').map((r) => [r.bucket, r.status, r.count])).toEqual(expect.arrayContaining([['2026-03-01T02', 'completed', 1], ['2026-03-01T01', 'budget_exhausted', 1]]));
    expect(pick('budget_exhausted')[0]?.count).toBe(1);
    const alpha = await store.fleetActivity({ ...DAY, bucket: 'day', agent: 'alpha' });
    expect(alpha.find((r) => r.type === 'model_turn')).toMatchObject({ bucket: '2026-03-01', count: 1, costUsd: 0.5 });
    // "alpha_x" is another agent: "_" is no wildcard.
    expect(alpha.some((r) => r.status === 'budget_exhausted')).toBe(false);
    const tenant = await store.fleetActivity({ ...DAY, bucket: 'day', tenant: 't2' });
    expect(tenant.find((r) => r.type === 'model_turn')).toMatchObject({ count: 1, inputTokens: 7 });
  });

  test('approvalWaits pairs each settled approval with its request', async () => {
    const waits = await store.approvalWaits({ ...DAY, bucket: 'hour' });
    expect(waits.sort((a, b) => a.waitMs - b.waitMs)).toEqual([
      { bucket: '2026-03-01T01', waitMs: 10_500, outcome: 'rejected' },
      { bucket: '2026-03-01T01', waitMs: 600_000, outcome: 'expired' },
    ]);
  });

  test('runDigests sums each named run in one read; runs without events are left out', async () => {
    const digests = await store.runDigests(['warden/alpha/1', 'warden/alpha_x/2', 'warden/none/0']);
    expect(digests.sort((a, b) => (a.runId < b.runId ? -1 : 1))).toEqual([
      { runId: 'warden/alpha/1', steps: 1, toolCalls: 1, inputTokens: 100, outputTokens: 10, costUsd: 0.5, lastType: 'run_finished', lastAt: '2026-03-01T02:00:00.000Z' },
      { runId: 'warden/alpha_x/2', steps: 1, toolCalls: 0, inputTokens: 7, outputTokens: 3, costUsd: 0.25, lastType: 'run_finished', lastAt: '2026-03-01T01:41:00.000Z' },
    ]);
    expect(await store.runDigests([])).toEqual([]);
  });

  test('a bad range is a StoreError naming what is wrong', async () => {
    await expect(store.fleetActivity({ from: 'yesterday', to: DAY.to, bucket: 'hour' })).rejects.toThrow(StoreError);
    await expect(store.approvalWaits({ ...DAY, bucket: 'minute' as 'hour' })).rejects.toThrow('buckets by hour or day, not minute');
  });

  test('kill switches: engaged, lifted, listed, each change kept', async () => {
    expect(await store.killSwitch('alpha')).toBeNull();
    await store.setKillSwitch('alpha', { engaged: true, by: 'olga', reason: 'runaway' });
    await store.setKillSwitch('beta', { engaged: true, by: 'olga', reason: 'audit' });
    await store.setKillSwitch('alpha', { engaged: false, by: 'omar', reason: 'fixed' });
    expect(await store.killSwitch('alpha')).toMatchObject({ agent: 'alpha', engaged: false, by: 'omar', reason: 'fixed' });
    expect((await store.listKillSwitches()).map((k) => [k.agent, k.engaged])).toEqual([
      ['alpha', false],
      ['beta', true],
    ]);
    expect((await store.killSwitchHistory('alpha')).map((k) => k.reason)).toEqual(['fixed', 'runaway']);
    await expect(store.setKillSwitch('alpha', { engaged: true, by: ' ', reason: 'x' })).rejects.toThrow('say who engages it');
    await expect(store.setKillSwitch('', { engaged: true, by: 'olga', reason: 'x' })).rejects.toThrow('needs an agent');
  });
}

describe('SQLite run store: console reads and kill switches', () => {
  storeSuite(async () => createSqliteStore(path.join(mkdtempSync(path.join(os.tmpdir(), 'warden-console-store-')), 'runs.db')));
});

describeWithPostgres('PostgreSQL run store: console reads and kill switches', (server) => {
  storeSuite(async () => createPostgresStore(await server().createDatabase('console')));
});
