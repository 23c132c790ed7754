/**
 * What-if and quotas: the calls a candidate lets run, replayed in the order they were made across
 * runs, against the candidate's quotas (`replayQuotas`, judged by the store's own `judgeQuota`);
 * what it does not evaluate is said plainly. Hand-built trails, no server.
 */
import { CompiledPolicy, nextAuditEvent, parsePolicy, type AuditEvent, type AuditEventType, type PolicyInput } from '../../src/governance';
import { recordedRun, whatIf } from '../../src/governance/change-safety/what-if';
import { quotaLines, whatIfLines } from '../../src/cli/support/what-if-report';
import { quotaSetFor } from '../../src/governance/quota';
import { runCli } from '../fixtures/run-cli';

const T0 = Date.parse('2025-03-01T10:00:00Z');

/** A hash-chained trail of `[seconds after T0, type, data]`. */
function trail(...entries: [number, AuditEventType, Record<string, unknown>][]): AuditEvent[] {
  let head = { seq: 0, hash: '0'.repeat(64) };
  return entries.map(([s, type, data]) => {
    const e = nextAuditEvent(head, type, data, new Date(T0 + s * 1000).toISOString());
    head = { seq: e.seq, hash: e.hash };
    return e;
  });
}

/** A run of `tenant` whose calls (`[second, amount, tool]`, a transfer unless said) were all allowed when recorded. */
function run(id: string, tenant: string | null, transfers: [number, number | '[redacted]', string?][]) {
  const events: [number, AuditEventType, Record<string, unknown>][] = [[0, 'run_started', { agent: 'payer', requester: 'carol', requesterVerified: true, policyVersion: 'pv_old', ...(tenant ? { tenant } : {}) }]];
  transfers.forEach(([s, amount, tool = 'transfer'], i) => {
    events.push([s, 'call_proposed', { callId: `c${i}`, tool, args: { amount } }]);
    events.push([s, 'policy_decision', { callId: `c${i}`, tool, decision: 'allow', ruleId: 'all', reason: 'all', policyVersion: 'pv_old' }]);
  });
  return recordedRun(`warden/payer/${id}`, trail(...events));
}

const base: PolicyInput = {
  agent: 'payer',
  tools: { transfer: {}, refund: {} },
  rules: [
    { id: 'huge', tools: ['transfer'], when: 'args.amount > 900', decision: 'deny' },
    { id: 'all', decision: 'allow' },
  ],
};

const withQuotas = (): CompiledPolicy =>
  new CompiledPolicy(
    parsePolicy(
      {
        ...base,
        quotas: [
          {
            id: 'transfers-per-day',
            count: 'calls',
            tools: ['transfer'],
            scope: ['tenant'],
            window: { calendar: 'day' },
            thresholds: [
              { above: 1, action: 'warn', reason: 'busy' },
              { above: 2, action: 'require_approval', reason: 'many transfers', approval: { approvers: ['group:finance'] } },
              { above: 3, action: 'deny', reason: 'the daily limit' },
            ],
          },
          { id: 'transfer-sum', count: { sum: 'args.amount' }, tools: ['transfer', 'refund'], window: { rolling: '1h' }, thresholds: [{ above: 1000, action: 'deny', reason: 'the hourly budget' }] },
          { id: 'spend', count: 'costUsd', window: { rolling: '24h' }, thresholds: [{ above: 5, action: 'deny', reason: 'model spend' }] },
        ],
        rateLimits: [{ tool: 'transfer', rate: '10/s' }],
      },
      'candidate',
    ),
  );

describe('what-if replays the candidate quotas over recorded calls', () => {
  test('in recorded order across runs: counters per tenant, thresholds as the store judges them, rule denials book nothing', () => {
    // acme makes 5 transfers in one day, interleaved with globex's 2; the 950 is denied by a rule (books nothing).
    const runs = [run('a', 'acme', [[1, 100], [3, 100], [5, 950], [6, 100], [8, 100], [9, 100]]), run('g', 'globex', [[2, 300], [4, 300]])];
    const report = whatIf(runs, withQuotas());
    const q = report.quotas;
    if (!q) throw new Error('whatIf sets quotas');
    expect(q.evaluated).toEqual(['payer/transfers-per-day', 'payer/transfer-sum']);
    // acme's 3rd transfer (at 6s) crosses 2: approval; its 4th (8s) crosses 3: denied; its 5th (9s) is denied too (denied calls book nothing).
    expect(q.hits.map((h) => [h.runId, h.callId, h.quota, h.action, h.used, h.amount])).toEqual([
      ['warden/payer/a', 'c3', 'payer/transfers-per-day', 'require_approval', 2, 1],
      ['warden/payer/a', 'c4', 'payer/transfers-per-day', 'deny', 3, 1],
      ['warden/payer/a', 'c5', 'payer/transfers-per-day', 'deny', 3, 1],
    ]);
    const perDay = q.effects.find((e) => e.quota === 'payer/transfers-per-day');
    // acme 3 (the approved one counted), globex 2; warnings: acme's 2nd and globex's 2nd cross 1.
    expect(perDay).toEqual({ quota: 'payer/transfers-per-day', counted: 5, denied: 2, approvalsAdded: 1, warnings: 2, peak: 3 });
    // The sum: 100 + 300 + 100 + 300 + 100 = 900, under 1000; the denied calls added nothing.
    expect(q.effects.find((e) => e.quota === 'payer/transfer-sum')).toEqual({ quota: 'payer/transfer-sum', counted: 5, denied: 0, approvalsAdded: 0, warnings: 0, peak: 900 });
    expect(q.notEvaluated.map((n) => n.quota)).toEqual(['payer/spend', 'payer/transfer:10/s', 'the fleet file']);
    expect(q.assumptions[0]).toContain('counters start at zero');
  });

  test('a rolling window lets old bookings go; a run without a tenant counts under one counter; a redacted amount is not counted', () => {
    // The refund's amount was redacted in the trail: the sum cannot count it (no rule reads it, so the candidate allows it).
    const hourly = run('h', null, [[0, 600], [3000, 300], [3700, 600], [3800, 50], [3900, '[redacted]', 'refund']]);
    const q = whatIf([hourly], withQuotas()).quotas;
    if (!q) throw new Error('whatIf sets quotas');
    // At 3700s the first 600 (at 0s) is out of the 1h window: 300 + 600 = 900, no hit.
    expect(q.hits.filter((h) => h.quota === 'payer/transfer-sum')).toEqual([]);
    expect(q.hits.map((h) => h.counter)).toEqual(['payer/transfers-per-day|tenant=-', 'payer/transfers-per-day|tenant=-']);
    expect(q.unreadable).toEqual([{ quota: 'payer/transfer-sum', calls: 1 }]);
  });

  test('the report says what it replayed and, plainly, what it did not', () => {
    const report = whatIf([run('a', 'acme', [[1, 100], [3, 100], [5, 100], [7, 100]])], withQuotas());
    const lines = whatIfLines('candidate.yaml', report).join('\n');
    expect(lines).toContain('quotas (the calls the candidate lets run, replayed in the order they were made, across these runs):');
    expect(lines).toMatch(/payer\/transfers-per-day\s+3\s+1\s+1\s+1\s+3/);
    expect(lines).toMatch(/warden\/payer\/a\s+c2\s+transfer\s+payer\/transfers-per-day\s+require_approval\s+2 \+ 1 > 2/);
    expect(lines).toContain('note: counters start at zero');
    expect(lines).toContain('not evaluated: payer/spend: counts model spend, which is charged after it is made and never refuses a call');
    expect(lines).toContain('not evaluated: payer/transfer:10/s: a rate limit delays calls and never refuses one');
    expect(lines).toContain("not evaluated: the fleet file: its quotas reach every agent's runs; what-if replays the candidate's own");

    const none = whatIf([run('a', 'acme', [[1, 100]])], new CompiledPolicy(parsePolicy(base, 'plain')));
    expect(none.quotas && quotaLines(none.quotas)[0]).toBe('quotas: the candidate defines none; none replayed');
  });
});

test('the tenant run_started recorded is run.tenant when a candidate decides', () => {
  const byTenant = new CompiledPolicy(parsePolicy({ ...base, rules: [{ id: 'acme-only', when: "run.tenant == 'acme'", decision: 'allow' }] }, 'tenant candidate'));
  const report = whatIf([run('a', 'acme', [[1, 5]]), run('g', 'globex', [[2, 5]]), run('n', null, [[3, 5]])], byTenant);
  expect(report.diffs.map((d) => [d.runId, d.kind, d.after.ruleId])).toEqual([
    ['warden/payer/a', 'rule-changed', 'acme-only'],
    ['warden/payer/g', 'allow-to-deny', 'default:no-match'],
    ['warden/payer/n', 'allow-to-deny', 'default:no-match'],
  ]);
});

describe("the fleet file's quotas", () => {
  const fleet = { quotas: [{ id: 'all-transfers', count: 'calls' as const, tools: ['transfer'], scope: [], window: { rolling: '24h' }, thresholds: [{ above: 1, action: 'deny' as const, reason: 'one transfer a day, fleet-wide' }] }], rateLimits: [] };

  test('given the fleet file, its quotas that reach the agent are replayed too, and it is no longer named as not evaluated', () => {
    const candidate = withQuotas();
    const report = whatIf([run('a', 'acme', [[1, 10], [2, 10]])], candidate, { quotas: quotaSetFor('payer', candidate.policy, fleet) });
    expect(report.quotas?.evaluated).toEqual(['payer/transfers-per-day', 'payer/transfer-sum', 'fleet/all-transfers']);
    expect(report.quotas?.hits.map((h) => [h.callId, h.quota, h.action])).toEqual([['c1', 'fleet/all-transfers', 'deny']]);
    expect(report.quotas?.notEvaluated.map((n) => n.quota)).not.toContain('the fleet file');
  });

  test('warden policy what-if --fleet refuses a fleet file it cannot read or that is invalid, before reading any run', async () => {
    const missing = await runCli(['policy', 'what-if', 'policies/refund-agent.yaml', '--fleet', '/nonexistent/fleet.yaml'], { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('/nonexistent/fleet.yaml');
    const bad = await runCli(['policy', 'what-if', 'policies/refund-agent.yaml', '--fleet', 'policies/refund-agent.yaml'], { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('policies/refund-agent.yaml');
    expect(bad.stderr).not.toContain('cannot reach Temporal');
  });
});
