import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadFleetPolicy, loadPolicies } from '../../src/agents';
import { callAmount, counterKey, fleetPolicySchema, judgeQuota, parseFleetPolicyText, parsePolicy, parsePolicyText, PolicyError, quotaSetFor, quotaWindowAt, rateSlot, rateInterval, rulesForCall, type QuotaThreshold } from '../../src/governance';
import { createSqliteStore, type QuotaBooking, type RunStore } from '../../src/store';

const deny = (above: number): QuotaThreshold => ({ above, action: 'deny', reason: 'refunds are capped per day' });
const warn = (above: number): QuotaThreshold => ({ above, action: 'warn', reason: 'most of the day’s refunds are spent' });
const ask = (above: number): QuotaThreshold => ({ above, action: 'require_approval', reason: 'finance looks at refunds past the soft limit', approval: { approvers: ['group:finance'], quorum: 1, timeout: '24h' } });

describe('quota windows', () => {
  test('a calendar day in Europe/Berlin starts at local midnight, and is 23 hours long on the spring DST day', () => {
    const at = Date.parse('2026-03-29T10:00:00Z'); // clocks go 02:00 → 03:00 that night
    const w = quotaWindowAt({ calendar: 'day', timeZone: 'Europe/Berlin' }, at);
    expect(w.key).toBe('day:2026-03-29@Europe/Berlin');
    expect(new Date(w.sinceMs).toISOString()).toBe('2026-03-28T23:00:00.000Z');
    expect(new Date(w.untilMs).toISOString()).toBe('2026-03-29T22:00:00.000Z');
  });

  test('an autumn DST day is 25 hours long; just before local midnight is still the same day', () => {
    const w = quotaWindowAt({ calendar: 'day', timeZone: 'Europe/Berlin' }, Date.parse('2026-10-25T22:59:59Z'));
    expect(w.key).toBe('day:2026-10-25@Europe/Berlin');
    expect(w.untilMs - w.sinceMs).toBe(25 * 3_600_000);
    expect(quotaWindowAt({ calendar: 'day', timeZone: 'Europe/Berlin' }, Date.parse('2026-10-25T23:00:00Z')).key).toBe('day:2026-10-26@Europe/Berlin');
  });

  test('calendar months and hours, in a zone west of UTC; UTC by default', () => {
    const at = Date.parse('2027-01-01T03:30:00Z'); // still December 31 in New York
    const month = quotaWindowAt({ calendar: 'month', timeZone: 'America/New_York' }, at);
    expect(month.key).toBe('month:2026-12@America/New_York');
    expect(new Date(month.sinceMs).toISOString()).toBe('2026-12-01T05:00:00.000Z');
    expect(new Date(month.untilMs).toISOString()).toBe('2027-01-01T05:00:00.000Z');
    const hour = quotaWindowAt({ calendar: 'hour' }, at);
    expect(hour).toEqual({ key: 'hour:2027-01-01T03@UTC', sinceMs: Date.parse('2027-01-01T03:00:00Z'), untilMs: Date.parse('2027-01-01T04:00:00Z') });
    const india = quotaWindowAt({ calendar: 'hour', timeZone: 'Asia/Kolkata' }, at);
    expect(new Date(india.sinceMs).toISOString()).toBe('2027-01-01T03:30:00.000Z');
  });

  test('a rolling window moves with now', () => {
    expect(quotaWindowAt({ rolling: '24h' }, 100_000_000)).toEqual({ key: 'rolling:24h', sinceMs: 100_000_000 - 86_400_000, untilMs: 100_000_000 });
  });
});

describe('quota rules', () => {
  const refunds = { id: 'refunds', count: { sum: 'args.amount' }, tools: ['issue_refund'], scope: ['tenant', 'tool'] as ('tenant' | 'tool')[], window: { calendar: 'day' as const }, thresholds: [deny(1000)] };

  test('a run of an agent gets its own quotas and the fleet quotas that reach it, by name', () => {
    const set = quotaSetFor('refund-agent', { quotas: [refunds] }, { quotas: [{ ...refunds, id: 'all', agents: ['other'] }, { ...refunds, id: 'every' }], rateLimits: [{ tool: 'issue_refund', rate: '10/s', burst: 1, scope: [] }] });
    expect(set.quotas.map((q) => q.name)).toEqual(['refund-agent/refunds', 'fleet/every']);
    expect(set.rateLimits.map((r) => r.name)).toEqual(['fleet/issue_refund:10/s']);
    expect(rulesForCall(set, 'lookup_order')).toEqual({ quotas: [], rateLimits: [] });
    expect(rulesForCall(set, 'issue_refund').quotas).toHaveLength(2);
  });

  test('counters are keyed by the scoped dimensions; a run without tenant shares one counter', () => {
    expect(counterKey('fleet/refunds', ['tenant', 'tool'], { agent: 'a', tenant: 'acme', requester: 'carol', tool: 'issue_refund' })).toBe('fleet/refunds|tenant=acme,tool=issue_refund');
    expect(counterKey('fleet/refunds', ['tenant'], { agent: 'a', tenant: null, requester: 'carol' })).toBe('fleet/refunds|tenant=-');
    expect(counterKey('fleet/runs', [], { agent: 'a', tenant: 'acme', requester: 'carol' })).toBe('fleet/runs');
  });

  test('a sum reads the argument; one that is not a number ≥ 0 is an error', () => {
    expect(callAmount(refunds, { amount: 60 })).toEqual({ amount: 60 });
    expect(callAmount(refunds, { amount: '60' })).toEqual({ error: 'quota refunds counts args.amount, which is not a number ≥ 0 in this call' });
    expect(callAmount(refunds, { amount: -5 })).toHaveProperty('error');
    expect(callAmount({ ...refunds, count: 'calls' }, {})).toEqual({ amount: 1 });
  });

  test('thresholds: the hard limit denies, the soft limit asks unless approved, a warning comes once as it is crossed', () => {
    const t = [warn(800), ask(900), deny(1000)];
    expect(judgeQuota(t, 700, 60)).toEqual({ kind: 'allow', warnings: [] });
    expect(judgeQuota(t, 780, 60)).toEqual({ kind: 'allow', warnings: [t[0]] });
    expect(judgeQuota(t, 840, 60)).toEqual({ kind: 'allow', warnings: [] });
    expect(judgeQuota(t, 860, 60)).toEqual({ kind: 'require_approval', threshold: t[1] });
    expect(judgeQuota(t, 860, 60, true)).toEqual({ kind: 'allow', warnings: [] });
    expect(judgeQuota(t, 960, 60, true)).toEqual({ kind: 'deny', threshold: t[2] });
    expect(judgeQuota([deny(1000)], 940, 60)).toEqual({ kind: 'allow', warnings: [] }); // exactly at the limit is allowed
    // A check before spending (amount 0): spent is at or above the limit.
    expect(judgeQuota([deny(5)], 4.99, 0).kind).toBe('allow');
    expect(judgeQuota([deny(5)], 5, 0).kind).toBe('deny');
  });

  test('rate limits: GCRA slots, evenly spaced at burst 1, a burst goes at once', () => {
    expect(rateInterval('10/s')).toBe(100);
    expect(rateInterval('600/m')).toBe(100);
    let tat: number | null = null;
    const slots: number[] = [];
    for (let i = 0; i < 5; i++) {
      const s = rateSlot(tat, 1000, 100, 1);
      slots.push(s.slotMs);
      tat = s.nextTatMs;
    }
    expect(slots).toEqual([1000, 1100, 1200, 1300, 1400]);
    tat = null;
    const burst: number[] = [];
    for (let i = 0; i < 4; i++) {
      const s = rateSlot(tat, 0, 100, 3);
      burst.push(s.slotMs);
      tat = s.nextTatMs;
    }
    expect(burst).toEqual([0, 0, 0, 100]);
    // A limit idle for long starts from now again.
    expect(rateSlot(500, 10_000, 100, 1)).toEqual({ slotMs: 10_000, nextTatMs: 10_100 });
  });
});

describe('quota definitions are validated, each error naming the field', () => {
  const base = { agent: 'refund-agent', tools: { issue_refund: {} }, rules: [{ id: 'r', decision: 'allow' }] };
  const quota = { id: 'refunds', count: { sum: 'args.amount' }, tools: ['issue_refund'], window: { calendar: 'day', timeZone: 'Europe/Berlin' }, thresholds: [{ above: 1000, action: 'deny', reason: 'capped' }] };
  const problems = (quotas: unknown[]): string[] => {
    try {
      parsePolicy({ ...base, quotas }, 'p.yaml');
    } catch (err) {
      if (err instanceof PolicyError) return [...err.issues];
      throw err;
    }
    return [];
  };

  test('a good quota parses, and a policy without quotas has no quotas field (its version is unchanged)', () => {
    expect(parsePolicy({ ...base, quotas: [quota] }, 'p.yaml').quotas?.[0]).toMatchObject({ id: 'refunds', scope: [] });
    expect(parsePolicy(base, 'p.yaml')).not.toHaveProperty('quotas');
  });

  test.each([
    [{ window: { calendar: 'day', timeZone: 'Mars/Olympus' } }, 'quotas[0].window.timeZone: must be an IANA time zone'],
    [{ window: { rolling: '1 day' } }, 'quotas[0].window.rolling: must be a duration'],
    [{ window: { rolling: '24h', calendar: 'day' } }, 'quotas[0].window: must be { rolling'],
    [{ window: { calendar: 'week' } }, 'quotas[0].window.calendar'],
    [{ count: 'dollars' }, 'quotas[0].count: must be runs, calls, costUsd, tokens or { sum: args.<field> }'],
    [{ count: { sum: 'amount' } }, 'quotas[0].count'],
    [{ thresholds: [] }, 'quotas[0].thresholds: a quota needs at least one threshold'],
    [{ thresholds: [{ above: 10, action: 'require_approval', reason: 'x' }] }, 'quotas[0].thresholds[0].approval: require_approval needs an approval block'],
    [{ thresholds: [{ above: 10, action: 'deny' }] }, 'quotas[0].thresholds[0].reason'],
    [{ thresholds: [{ above: -1, action: 'deny', reason: 'x' }] }, 'quotas[0].thresholds[0].above'],
    [{ scope: ['team'] }, 'quotas[0].scope[0]'],
    [{ count: 'costUsd' }, 'quotas[0].tools: tools applies only to quotas that count calls'],
    [{ agents: ['other'] }, 'quotas[0].agents: agents belongs in the fleet file'],
    [{ id: 'Refunds!' }, 'quotas[0].id: must be an id'],
    [{ limit: 5 }, 'quotas[0].limit: unknown field "limit"'],
  ])('%j', (change, expected) => {
    expect(problems([{ ...quota, ...change }]).join('\n')).toContain(expected);
  });

  test('duplicate ids and a require_approval on a runs quota are refused', () => {
    expect(problems([quota, quota]).join('\n')).toContain('quotas[1].id: duplicate quota id "refunds"');
    const runs = { id: 'runs', count: 'runs', window: { rolling: '1h' }, thresholds: [{ above: 1, action: 'require_approval', reason: 'x', approval: { approvers: ['user:a'] } }] };
    expect(problems([runs]).join('\n')).toContain('quotas[0].thresholds[0].action: require_approval applies to quotas that count calls');
  });

  test('rate limits and the fleet file', () => {
    expect(fleetPolicySchema.parse({ rateLimits: [{ tool: 'issue_refund', rate: '10/s' }] })).toEqual({ quotas: [], rateLimits: [{ tool: 'issue_refund', rate: '10/s', burst: 1, scope: [] }] });
    expect(() => parsePolicy({ ...base, rateLimits: [{ tool: 'issue_refund', rate: '10 per second' }] }, 'p.yaml')).toThrow(/rateLimits\[0\]\.rate: must be calls per second, minute or hour/);
    expect(fleetPolicySchema.safeParse({ quotas: [{ ...quota, agents: ['refund-agent'] }] }).success).toBe(true);
  });
});

describe('the SQLite quota ledger', () => {
  let dir: string;
  let store: RunStore;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'warden-quota-'));
    store = createSqliteStore(path.join(dir, 'warden.db'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const booking = (amount: number, thresholds = [deny(1000)]): QuotaBooking => ({ quota: 'fleet/refunds', counter: 'fleet/refunds|tenant=acme', window: 'day:2026-12-06@UTC', sinceMs: 0, amount, thresholds });
  const reserve = (runId: string, ref: string, amount: number, extra: Partial<Parameters<RunStore['reserveQuota']>[0]> = {}) =>
    store.reserveQuota({ runId, ref, tenant: 'acme', nowMs: 1000, expiresAtMs: 10_000, mode: 'reserve', bookings: [booking(amount)], ...extra });

  test('reserves up to the hard limit, idempotently; commit, release and refund move the totals', async () => {
    for (let i = 0; i < 16; i++) expect(await reserve(`run-${i}`, 'call:1', 60)).toMatchObject({ ok: true });
    expect(await reserve('run-16', 'call:1', 60)).toMatchObject({ ok: false, hit: { action: 'deny', used: 960, amount: 60, above: 1000, reason: 'refunds are capped per day' } });
    // A retried activity books nothing twice.
    expect(await reserve('run-0', 'call:1', 60)).toMatchObject({ ok: true, warnings: [] });
    expect(await store.quotaUsage({ nowMs: 1000 })).toEqual([{ quota: 'fleet/refunds', counter: 'fleet/refunds|tenant=acme', window: 'day:2026-12-06@UTC', committed: 0, held: 960, reservations: 16, lastAtMs: 1000 }]);
    expect(await store.settleQuota('run-0', { ref: 'call:1', from: 'held', to: 'committed' })).toBe(1);
    expect(await store.settleQuota('run-1', { from: 'held', to: 'released' })).toBe(1);
    expect(await reserve('run-16', 'call:1', 60)).toMatchObject({ ok: true });
    expect(await store.settleQuota('run-0', { ref: 'call:1', from: 'committed', to: 'refunded' })).toBe(1);
    expect((await store.quotaUsage({ nowMs: 1000 }))[0]).toMatchObject({ committed: 0, held: 900 });
    await expect(store.settleQuota('run-0', { from: 'committed', to: 'held' as 'released' })).rejects.toThrow('does not move from committed to held');
    expect((await store.listQuotaReservations({ runId: 'run-0' }))[0]).toMatchObject({ id: 'run-0|call:1|fleet/refunds', state: 'refunded', amount: 60, tenant: 'acme' });
  });

  test('expired holds stop counting; charges book spend whatever the limit; checks book nothing', async () => {
    expect(await reserve('run-a', 'call:1', 990)).toMatchObject({ ok: true });
    expect(await reserve('run-b', 'call:1', 60, { nowMs: 20_000, expiresAtMs: 30_000 })).toMatchObject({ ok: true });
    expect(await store.reserveQuota({ runId: 'run-c', ref: 'model:1', tenant: 'acme', nowMs: 20_000, expiresAtMs: 0, mode: 'charge', bookings: [booking(2000)] })).toMatchObject({ ok: true, warnings: [{ action: 'deny', used: 60 }] });
    expect(await store.reserveQuota({ runId: 'run-c', ref: 'model:2', tenant: 'acme', nowMs: 20_000, expiresAtMs: 0, mode: 'check', bookings: [booking(0)] })).toMatchObject({ ok: false, hit: { action: 'deny', used: 2060 } });
    expect(await store.listQuotaReservations({ runId: 'run-c' })).toHaveLength(1);
    expect(await store.resetQuota({ quota: 'fleet/refunds' })).toBe(3);
    expect(await store.quotaUsage({ nowMs: 20_000 })).toEqual([]);
  });

  test('a booking over several quotas books all or nothing', async () => {
    const tight = { ...booking(60, [deny(100)]), quota: 'fleet/tight', counter: 'fleet/tight' };
    expect(await store.reserveQuota({ runId: 'r', ref: 'call:1', tenant: null, nowMs: 1, expiresAtMs: 10, mode: 'reserve', bookings: [booking(60), tight] })).toMatchObject({ ok: true });
    expect(await store.reserveQuota({ runId: 'r', ref: 'call:2', tenant: null, nowMs: 1, expiresAtMs: 10, mode: 'reserve', bookings: [booking(60), tight] })).toMatchObject({ ok: false, hit: { quota: 'fleet/tight' } });
    expect(await store.listQuotaReservations({ states: ['held'] })).toHaveLength(2);
  });

  test('rate slots are booked in order, once per id', async () => {
    const slots = [];
    for (let i = 0; i < 3; i++) slots.push((await store.takeRateSlot({ id: `c${i}`, limit: 'fleet/issue_refund:10/s', nowMs: 5000, intervalMs: 100, burst: 1 })).slotMs);
    expect(slots).toEqual([5000, 5100, 5200]);
    expect(await store.takeRateSlot({ id: 'c1', limit: 'fleet/issue_refund:10/s', nowMs: 9000, intervalMs: 100, burst: 1 })).toEqual({ slotMs: 5100 });
  });
});

describe('the fleet file', () => {
  const root = path.join(__dirname, '..', '..');

  test("the repository's policies/fleet.yaml loads with the policy directory, which skips it as an agent policy", () => {
    const loaded = loadFleetPolicy(path.join(root, 'policies'));
    expect(loaded?.source).toBe(path.join(root, 'policies', 'fleet.yaml'));
    expect(loaded?.fleet.quotas.map((q) => q.id)).toEqual(['model-spend']);
    expect(loaded?.fleet.rateLimits).toEqual([{ tool: 'issue_refund', rate: '10/s', burst: 1, scope: [] }]);
    expect(loadPolicies(path.join(root, 'policies')).map((p) => p.policy.agent).sort()).toEqual(['procurement-agent', 'refund-agent', 'triage-agent']);
    expect(parsePolicyText(readFileSync(path.join(root, 'policies', 'refund-agent.yaml'), 'utf8'), 'refund-agent.yaml').quotas?.map((q) => q.id)).toEqual(['refunds-per-day']);
  });

  test('a bad fleet file is refused with the file, the field, its line and column', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-fleet-'));
    try {
      writeFileSync(path.join(dir, 'fleet.yaml'), ['quotas:', '  - id: spend', '    count: costUsd', '    window: { calendar: fortnight }', '    thresholds: [{ above: 5, action: deny, reason: spent }]', 'rateLimits:', '  - tool: pay', '    rate: 10 a second'].join('\n'));
      let error: unknown;
      try {
        loadFleetPolicy(dir);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(PolicyError);
      const issues = (error as PolicyError).issues.join('\n');
      expect(issues).toContain(`${path.join(dir, 'fleet.yaml')}:4:25: quotas[0].window.calendar`);
      expect(issues).toContain(`${path.join(dir, 'fleet.yaml')}:8:11: rateLimits[0].rate: must be calls per second, minute or hour, such as 10/s or 600/m`);
      expect(() => parseFleetPolicyText('quotas: [{ id: x, count: runs, agents: [a], window: { rolling: 1h }, thresholds: [{ above: 1, action: deny, reason: r }] }]', 'fleet.yaml')).not.toThrow();
      writeFileSync(path.join(dir, 'fleet.json'), '{}');
      expect(() => loadFleetPolicy(dir)).toThrow(/more than one fleet file \(fleet\.yaml, fleet\.json\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('warden policy check on quotas', () => {
  const root = path.join(__dirname, '..', '..');
  const cli = (args: string[]) => spawnSync(process.execPath, [path.join(root, 'bin', 'warden.js'), ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 });

  test('the fleet file checks, and a bad quota in an agent policy is reported with its field, line and column', () => {
    const ok = cli(['policy', 'check', path.join(root, 'policies', 'fleet.yaml')]);
    expect(ok.stdout).toContain('fleet file, valid: 1 quota(s) (model-spend), 1 rate limit(s) (issue_refund:10/s)');
    expect(ok.status).toBe(0);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-quota-check-'));
    try {
      const bad = path.join(dir, 'refund-agent.yaml');
      writeFileSync(bad, ['agent: refund-agent', 'tools: { issue_refund: }', 'quotas:', '  - id: refunds', '    count: { sum: args.amount }', '    window: { calendar: day, timeZone: Mars/Base }', '    thresholds: [{ above: 10, action: deny, reason: capped }]'].join('\n'));
      const refused = cli(['policy', 'check', bad]);
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toContain(`${bad}:6:40: quotas[0].window.timeZone: must be an IANA time zone such as UTC or Europe/Berlin`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
