/**
 * `warden policy what-if`: recorded calls decided again under a candidate policy. Pure tests of
 * src/governance/change-safety/what-if.ts on hand-built trails, then the command end to end on runs recorded by a
 * real worker against the suite's dev server.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { CompiledPolicy, nextAuditEvent, parsePolicy, type AuditEvent, type AuditEventType, type PolicyInput } from '../src/governance';
import { diffKindOf, recordedRun, whatIf, type Verdict, type WhatIfReport } from '../src/governance/change-safety/what-if';
import { effects, testAgent } from './fixtures/test-agents';
import { runCli } from './fixtures/run-cli';
import { createTestBed, eventually, settings, testPolicy, type TestBed } from './helpers';

const RUN = 'warden/test-agent/unit';

/** A hash-chained trail of `[type, data]`, one second apart, as the workflow records it. */
function trail(...entries: [AuditEventType, Record<string, unknown>][]): AuditEvent[] {
  let head = { seq: 0, hash: '0'.repeat(64) };
  const t0 = Date.parse('2025-01-01T00:00:00Z');
  return entries.map(([type, data], i) => {
    const e = nextAuditEvent(head, type, data, new Date(t0 + i * 1000).toISOString());
    head = { seq: e.seq, hash: e.hash };
    return e;
  });
}

const started = (requester = 'carol', verified = false): [AuditEventType, Record<string, unknown>] => ['run_started', { agent: 'test-agent', requester, requesterVerified: verified, policyVersion: 'pv_old' }];
const turn = (step: number, costUsd = 0.01): [AuditEventType, Record<string, unknown>] => ['model_turn', { step, inputTokens: 100, outputTokens: 10, costUsd, calls: [] }];
const proposed = (callId: string, tool: string, args: Record<string, unknown>): [AuditEventType, Record<string, unknown>] => ['call_proposed', { callId, tool, args }];
const decided = (callId: string, tool: string, decision: string, ruleId: string): [AuditEventType, Record<string, unknown>] => ['policy_decision', { callId, tool, decision, ruleId, reason: `rule ${ruleId}`, policyVersion: 'pv_old' }];

const candidate = (input: Partial<PolicyInput>) => new CompiledPolicy(testPolicy(input));

describe('recorded facts', () => {
  test('each call gets the step, tokens, cost, tool counts and requester it was decided with', () => {
    const run = recordedRun(
      RUN,
      trail(
        started('dana', true),
        turn(1, 0.02),
        proposed('c1', 'echo', { text: 'a' }),
        decided('c1', 'echo', 'allow', 'allow-all'),
        proposed('c2', 'transfer', { amount: 50, to: 'x' }),
        decided('c2', 'transfer', 'require_approval', 'transfers'),
        ['approval_requested', { approvalId: 'apr_1', callId: 'c2', tool: 'transfer', ruleId: 'transfers', approvers: ['group:finance'] }],
        ['tool_started', { callId: 'c1', tool: 'echo' }],
        ['tool_started', { callId: 'c2', tool: 'transfer' }],
        turn(2, 0.03),
        proposed('c3', 'transfer', { amount: 5, to: 'y' }),
        decided('c3', 'transfer', 'deny', 'no-more'),
        proposed('c4', 'echo', { text: '' }),
        ['schema_rejected', { callId: 'c4', tool: 'echo', issues: ['too short'] }],
      ),
    );
    expect(run.missing).toEqual([]);
    expect(run.calls.map((c) => c.callId)).toEqual(['c1', 'c2', 'c3']);
    const [c1, c2, c3] = run.calls;
    expect(c1?.run).toMatchObject({ requester: 'dana', requesterVerified: true, step: 1, toolCalls: 0, inputTokens: 100, outputTokens: 10 });
    expect(c1?.run.costUsd).toBeCloseTo(0.02);
    // The allowed echo is counted when it is allowed, before the transfer is decided.
    expect(c2?.run.toolCalls).toBe(1);
    expect(c2?.recorded).toEqual({ decision: 'require_approval', ruleId: 'transfers', reason: 'rule transfers', approvers: ['group:finance'] });
    // The approved transfer is counted when it starts.
    expect(c3?.usage).toMatchObject({ steps: 2, toolCalls: 2, toolCallsByTool: { echo: 1, transfer: 1 }, inputTokens: 200 });
    expect(c3?.run.costUsd).toBeCloseTo(0.05);
    expect(c3?.elapsedMs).toBe(10_000);
  });

  test("a delegate's usage counts in the facts of the delegating run's later calls; an approved delegation is counted when it starts", () => {
    const run = recordedRun(
      RUN,
      trail(
        started(),
        turn(1, 0.01),
        proposed('d1', 'agent:payments', { goal: 'pay' }),
        decided('d1', 'agent:payments', 'require_approval', 'delegations'),
        ['delegation_started', { callId: 'd1', tool: 'agent:payments', agent: 'payments', runId: `${RUN}.d2` }],
        ['delegation_finished', { callId: 'd1', agent: 'payments', runId: `${RUN}.d2`, status: 'completed', used: { steps: 2, toolCalls: 3, inputTokens: 50, outputTokens: 5, costUsd: 0.2 } }],
        turn(2, 0.01),
        proposed('c2', 'echo', { text: 'a' }),
        decided('c2', 'echo', 'allow', 'allow-all'),
      ),
    );
    const c2 = run.calls[1];
    expect(c2?.run).toMatchObject({ step: 2, toolCalls: 4, inputTokens: 250, outputTokens: 25 });
    expect(c2?.run.costUsd).toBeCloseTo(0.22);
  });

  test('budget and loop refusals are verdicts too; redacted arguments and a trail without its start are reported missing', () => {
    const run = recordedRun(
      RUN,
      trail(
        turn(1),
        proposed('c1', 'transfer', { amount: 5, to: 'x', pin: '[redacted]' }),
        ['budget_exhausted', { callId: 'c1', limit: 'maxToolCalls', used: 3, max: 3, message: 'tool call budget exhausted: used 3 of 3' }],
        proposed('c2', 'echo', { text: 'a' }),
        ['loop_detected', { callId: 'c2', tool: 'echo', repeats: 3, window: 6, action: 'stop_tool' }],
      ),
    );
    expect(run.missing[0]).toContain('run_started');
    expect(run.calls.map((c) => c.recorded.ruleId)).toEqual(['budget:maxToolCalls', 'loop:stop_tool']);
    expect(run.calls[0]?.missing).toEqual(['args.pin (sensitive, redacted in the trail)']);
  });
});

describe('what the candidate changes', () => {
  const events = trail(
    started('carol', false),
    turn(1),
    proposed('c1', 'echo', { text: 'hi' }),
    decided('c1', 'echo', 'allow', 'allow-all'),
    proposed('c2', 'transfer', { amount: 5000, to: 'x' }),
    decided('c2', 'transfer', 'deny', 'no-big-transfers'),
    proposed('c3', 'transfer', { amount: 50, to: 'x' }),
    decided('c3', 'transfer', 'require_approval', 'transfers-need-finance'),
    ['approval_requested', { approvalId: 'apr_1', callId: 'c3', tool: 'transfer', ruleId: 'transfers-need-finance', approvers: ['group:finance'] }],
    turn(2),
    proposed('c4', 'transfer', { amount: 60, to: 'x' }),
    decided('c4', 'transfer', 'allow', 'allow-all'),
    proposed('c5', 'echo', { text: 'later' }),
    decided('c5', 'echo', 'allow', 'allow-all'),
  );
  const runs = [recordedRun(RUN, events)];

  test('every kind of difference is found, counted by kind and by rule; unchanged calls are not listed', () => {
    const report = whatIf(
      runs,
      candidate({
        rules: [
          { id: 'no-hi', tools: ['echo'], when: "args.text == 'hi'", decision: 'deny' },
          { id: 'big-needs-leads', tools: ['transfer'], when: 'args.amount > 1000', decision: 'require_approval', approval: { approvers: ['group:finance-leads'] } },
          { id: 'second-step-transfers', tools: ['transfer'], when: 'run.step >= 2', decision: 'require_approval', approval: { approvers: ['group:finance'] } },
          { id: 'small-transfers', tools: ['transfer'], decision: 'allow' },
          { id: 'allow-all', decision: 'allow' },
        ],
      }),
    );
    expect(report.calls).toBe(5);
    expect(report.diffs.map((d) => [d.callId, d.kind, d.after.ruleId])).toEqual([
      ['c1', 'allow-to-deny', 'no-hi'],
      ['c2', 'deny-to-allow', 'big-needs-leads'],
      ['c3', 'approval-removed', 'small-transfers'],
      ['c4', 'approval-added', 'second-step-transfers'],
    ]);
    expect(report.unchanged).toBe(1);
    expect(report.byKind).toEqual({ 'allow-to-deny': 1, 'deny-to-allow': 1, 'approval-removed': 1, 'approval-added': 1, 'rule-changed': 0 });
    expect(report.byRule).toContainEqual({ kind: 'allow-to-deny', from: 'allow-all', to: 'no-hi', count: 1 });
    expect(report.missing).toEqual([{ fact: 'tool.risk (not recorded: pass the agents to know it; taken as low)', calls: 5 }]);
  });

  test('the recorded requester verification and tool counts decide, and the candidate budgets apply', () => {
    const report = whatIf(
      runs,
      candidate({
        tools: { echo: {}, transfer: { requireVerifiedRequester: true }, flaky: {}, broken: {}, undo_fails: {} },
        budgets: { maxToolCalls: 2 },
        rules: [{ id: 'allow-all', decision: 'allow' }],
      }),
      { tools: new Map(testAgent.tools.map((t) => [t.name, { name: t.name, inputSchema: {}, risk: t.name === 'transfer' ? 'high' : 'low' }])) },
    );
    const byCall = Object.fromEntries(report.diffs.map((d) => [d.callId, d.after.ruleId]));
    // carol was not verified: transfers are denied before any rule.
    expect(byCall.c3).toBe('default:unverified-requester');
    expect(byCall.c4).toBe('default:unverified-requester');
    // Before c5 the run had counted c1 and c4 (allowed when recorded; c3 never started): over maxToolCalls 2.
    expect(byCall.c5).toBe('budget:maxToolCalls');
    expect(report.missing).toEqual([]);
  });

  test('the same decision by another rule, or with other approvers, is rule-changed', () => {
    const v = (decision: Verdict['decision'], ruleId: string, approvers?: string[]): Verdict => ({ decision, ruleId, reason: '', ...(approvers ? { approvers } : {}) });
    expect(diffKindOf(v('allow', 'a'), v('allow', 'b'))).toBe('rule-changed');
    expect(diffKindOf(v('require_approval', 'a', ['group:x']), v('require_approval', 'a', ['group:y']))).toBe('rule-changed');
    expect(diffKindOf(v('require_approval', 'a'), v('require_approval', 'a', ['group:y']))).toBeNull();
    expect(diffKindOf(v('require_approval', 'a'), v('deny', 'a'))).toBe('allow-to-deny');
    expect(diffKindOf(v('deny', 'a'), v('require_approval', 'b'))).toBe('deny-to-allow');
    expect(diffKindOf(v('deny', 'a'), v('deny', 'a'))).toBeNull();
  });

  test('runs of another agent are not decided', () => {
    const report = whatIf(runs, new CompiledPolicy(parsePolicy({ agent: 'other-agent', tools: { echo: {} } }, 'x')));
    expect(report.runs).toBe(0);
    expect(report.calls).toBe(0);
  });
});

describe('warden policy what-if', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-what-if-'));
  const unique = Math.random().toString(36).slice(2, 8);
  const enforced = testPolicy({
    rules: [
      { id: 'no-big-transfers', tools: ['transfer'], when: 'args.amount > 1000', decision: 'deny', reason: 'too much' },
      { id: 'transfers-need-finance', tools: ['transfer'], decision: 'require_approval', approval: { approvers: ['group:finance'], timeout: '10m' } },
      { id: 'allow-rest', decision: 'allow' },
    ],
  });
  let bed: TestBed;
  const env = () => ({ ...process.env, TEMPORAL_ADDRESS: settings().address, WARDEN_HOME: path.join(tmp, 'home'), WARDEN_DB: bed.storePath, WARDEN_TASK_QUEUE: bed.taskQueue });
  const runsQuery = `WorkflowId STARTS_WITH 'warden/test-agent/what-if-${unique}'`;
  const candidateFile = path.join(tmp, 'candidate.yaml');

  beforeAll(async () => {
    bed = await createTestBed({ policies: [enforced], acceptRunInputPolicy: false, allowUnsignedDecisions: true });
    effects.reset();
    const done = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'echo and a big transfer',
      requester: 'carol',
      key: `what-if-${unique}-1`,
      script: [{ toolCalls: [{ name: 'echo', args: { text: 'hi' } }, { name: 'transfer', args: { amount: 5000, to: 'acct-1' } }] }, { text: 'done' }],
    });
    const waiting = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'a small transfer',
      requester: 'carol',
      key: `what-if-${unique}-2`,
      script: [{ toolCalls: [{ name: 'transfer', args: { amount: 50, to: 'acct-2' } }] }, { text: 'done' }],
    });
    const approval = await eventually(async () => (await bed.client.pendingApprovals(waiting))[0], 30_000, 'the approval');
    expect((await bed.client.approve(waiting, { approvalId: approval.approvalId, approver: 'alice', groups: ['finance'] })).status).toBe('accepted');
    expect((await bed.client.result(done)).status).toBe('completed');
    expect((await bed.client.result(waiting)).status).toBe('completed');
    expect(effects.count('transfer')).toBe(1);
    // The candidate: "hi" is no longer echoed, big transfers wait for finance leads, small ones run at once.
    const candidatePolicy = {
      ...enforced,
      rules: [
        { id: 'no-hi', tools: ['echo'], when: "args.text == 'hi'", decision: 'deny' },
        { id: 'big-needs-leads', tools: ['transfer'], when: 'args.amount > 1000', decision: 'require_approval', approval: { approvers: ['group:finance-leads'], timeout: '10m' } },
        { id: 'small-transfers', tools: ['transfer'], decision: 'allow' },
        { id: 'allow-rest', decision: 'allow' },
      ],
    };
    writeFileSync(candidateFile, toYaml(candidatePolicy));
  }, 120_000);
  afterAll(async () => {
    await bed?.close();
  });

  /** Visibility is eventually consistent: waits until both runs are listed as completed. */
  async function whatIfJson(extra: string[] = []) {
    return eventually(async () => {
      const r = await runCli(['policy', 'what-if', candidateFile, '--runs', runsQuery, '--json', ...extra], env());
      const report = JSON.parse(r.stdout) as WhatIfReport & { failing: number };
      return report.runs === 2 ? { r, report } : undefined;
    }, 60_000, 'both runs in the what-if report');
  }

  test('prints the differences by kind, by rule and by call, with --agents knowing the tools', async () => {
    await whatIfJson();
    const r = await runCli(['policy', 'what-if', candidateFile, '--runs', runsQuery, '--agents', path.join(__dirname, 'fixtures', 'test-agents.ts')], env());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('3 recorded calls in 2 runs decided again, 3 decided differently');
    expect(r.stdout).toMatch(/allow-to-deny\s+1/);
    expect(r.stdout).toMatch(/deny-to-allow\s+1/);
    expect(r.stdout).toMatch(/approval-removed\s+1/);
    expect(r.stdout).toMatch(/allow-to-deny\s+allow-rest\s+no-hi\s+1/);
    expect(r.stdout).toMatch(/deny-to-allow\s+no-big-transfers\s+big-needs-leads\s+1/);
    expect(r.stdout).toMatch(/approval-removed\s+transfers-need-finance\s+small-transfers\s+1/);
    expect(r.stdout).toContain(`warden/test-agent/what-if-${unique}-1`);
    expect(r.stdout).not.toContain('facts the trails do not hold');
  }, 120_000);

  test('--json for CI, and --fail-on sets exit code 20 only for a listed kind', async () => {
    const { r, report } = await whatIfJson(['--fail-on', 'deny-to-allow']);
    expect(r.code).toBe(20);
    expect(report.failing).toBe(1);
    expect(report.byKind).toMatchObject({ 'allow-to-deny': 1, 'deny-to-allow': 1, 'approval-removed': 1, 'approval-added': 0 });
    expect(report.diffs.find((d) => d.kind === 'deny-to-allow')?.after).toMatchObject({ decision: 'require_approval', ruleId: 'big-needs-leads', approvers: ['group:finance-leads'] });
    expect(report.missing.map((m) => m.fact)).toEqual(['tool.risk (not recorded: pass the agents to know it; taken as low)']);
    const quiet = await runCli(['policy', 'what-if', candidateFile, '--runs', runsQuery, '--json', '--fail-on', 'approval-added,rule-changed'], env());
    expect(quiet.code).toBe(0);
    const bad = await runCli(['policy', 'what-if', candidateFile, '--fail-on', 'deny-to-alow'], env());
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--fail-on takes a comma-separated list');
    const otherAgent = await runCli(['policy', 'what-if', candidateFile, '--agent', 'refund-agent'], env());
    expect(otherAgent.code).toBe(2);
    expect(otherAgent.stderr).toContain('is a policy for test-agent');
  }, 120_000);
});
