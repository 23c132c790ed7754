/**
 * Shadow policies against the suite's dev server: a candidate named by the enforced policy decides
 * every call too; only the enforced one acts, disagreements are audited and counted, reported by
 * `warden policy shadow-report`, and `warden policy promote-shadow` makes the candidate the policy.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { defineAgent } from '../src/agents';
import type { AuditEvent, Policy } from '../src/governance';
import type { RunStatusView } from '../src/workflows/run-types';
import { effects, testAgent } from './fixtures/test-agents';
import { runCli } from './fixtures/run-cli';
import { createTestBed, eventually, settings, testPolicy, type TestBed } from './helpers';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-shadow-'));
const unique = Math.random().toString(36).slice(2, 8);
const shadowAgent = defineAgent({ name: 'shadow-agent', instructions: 'You are a test agent.', model: 'scripted', tools: testAgent.tools });

const rules = [
  { id: 'transfers-need-finance', tools: ['transfer'], decision: 'require_approval' as const, approval: { approvers: ['group:finance'], timeout: '10m' } },
  { id: 'allow-rest', decision: 'allow' as const },
];
const denyAllFile = path.join(tmp, 'deny-all.yaml');
writeFileSync(denyAllFile, toYaml({ agent: 'shadow-agent', tools: { echo: null, transfer: null, flaky: null, broken: null, undo_fails: null }, rules: [{ id: 'deny-everything', decision: 'deny', reason: 'the candidate refuses all' }] }));

const plain: Policy = testPolicy({ rules });
const shadowed: Policy = testPolicy({ agent: 'shadow-agent', rules, shadow: { file: denyAllFile } });

let bed: TestBed;
beforeAll(async () => {
  bed = await createTestBed({ agents: [testAgent, shadowAgent], policies: [plain, shadowed], allowUnsignedDecisions: true });
});
afterAll(async () => {
  await bed?.close();
});

const env = () => ({ ...process.env, TEMPORAL_ADDRESS: settings().address, WARDEN_HOME: path.join(tmp, 'home'), WARDEN_DB: bed.storePath, WARDEN_TASK_QUEUE: bed.taskQueue });
const script = [{ toolCalls: [{ name: 'echo', args: { text: 'hi' } }, { name: 'transfer', args: { amount: 50, to: 'acct-1' } }] }, { text: 'done' }];

/** Runs the script on an agent, approving its transfer; returns the run id and its trail. */
async function approvedRun(agent: string, key: string): Promise<{ runId: string; trail: AuditEvent[] }> {
  const runId = await bed.client.startRun({ agent, goal: 'echo and pay', requester: 'carol', key, script });
  const approval = await eventually(async () => (await bed.client.pendingApprovals(runId))[0], 30_000, `the approval of ${runId}`);
  expect((await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'alice', groups: ['finance'] })).status).toBe('accepted');
  expect((await bed.client.result(runId)).status).toBe('completed');
  return { runId, trail: await bed.store.readAudit(runId) };
}

const shape = (trail: AuditEvent[]) => trail.filter((e) => e.type !== 'policy_shadow_diff').map((e) => (e.type === 'policy_decision' ? `${e.type}:${String(e.data.tool)}:${String(e.data.decision)}:${String(e.data.ruleId)}` : e.type));

let shadowRunId = '';

describe('a shadow policy', () => {
  test('that denies everything changes nothing but the audit and the counters', async () => {
    effects.reset();
    const enforcedOnly = await approvedRun('test-agent', `plain-${unique}`);
    expect(effects.count('echo')).toBe(1);
    expect(effects.count('transfer')).toBe(1);
    effects.reset();
    const withShadow = await approvedRun('shadow-agent', `shadowed-${unique}`);
    shadowRunId = withShadow.runId;
    expect(effects.count('echo')).toBe(1);
    expect(effects.count('transfer')).toBe(1);
    // The same events; the echo call runs while the transfer waits, so their order may vary.
    expect(shape(withShadow.trail).sort()).toEqual(shape(enforcedOnly.trail).sort());
    const decisions = (trail: AuditEvent[]) => shape(trail).filter((e) => e.startsWith('policy_decision'));
    expect(decisions(withShadow.trail)).toEqual(decisions(enforcedOnly.trail));

    const started = withShadow.trail.find((e) => e.type === 'run_started')?.data;
    expect(started).toMatchObject({ shadowSource: denyAllFile });
    expect(String(started?.shadowPolicyVersion)).toMatch(/^pv_/);
    expect(enforcedOnly.trail.find((e) => e.type === 'run_started')?.data).not.toHaveProperty('shadowSource');
    const diffs = withShadow.trail.filter((e) => e.type === 'policy_shadow_diff').map((e) => e.data);
    expect(diffs).toEqual([
      expect.objectContaining({ tool: 'echo', kind: 'allow-to-deny', enforced: expect.objectContaining({ decision: 'allow', ruleId: 'allow-rest' }), shadow: expect.objectContaining({ decision: 'deny', ruleId: 'deny-everything' }) }),
      expect.objectContaining({ tool: 'transfer', kind: 'allow-to-deny', enforced: expect.objectContaining({ decision: 'require_approval', ruleId: 'transfers-need-finance', approvers: ['group:finance'] }), shadow: expect.objectContaining({ decision: 'deny', ruleId: 'deny-everything' }) }),
    ]);
    const status = await bed.client.status(withShadow.runId);
    expect(status.shadow).toEqual({ source: denyAllFile, version: started?.shadowPolicyVersion, calls: 2, diffs: 2 });
    expect((await bed.client.status(enforcedOnly.runId)).shadow).toBeNull();
    expect(status.budget.used).toEqual((await bed.client.status(enforcedOnly.runId)).budget.used);
  }, 120_000);

  test('is counted in warden status and grouped by rule in warden policy shadow-report', async () => {
    const status = await runCli(['status', shadowRunId], env());
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/shadow\s+pv_\w+ from .*deny-all\.yaml: 2 of 2 call\(s\) decided differently/);
    const statusJson = JSON.parse((await runCli(['status', shadowRunId, '--json'], env())).stdout) as RunStatusView;
    expect(statusJson.shadow).toMatchObject({ calls: 2, diffs: 2 });

    const query = `WorkflowId = '${shadowRunId}'`;
    const report = await eventually(async () => {
      const r = await runCli(['policy', 'shadow-report', '--agent', 'shadow-agent', '--runs', query], env());
      return r.stdout.includes('2 disagreements') ? r : undefined;
    }, 60_000, 'the shadow report');
    expect(report.code).toBe(0);
    expect(report.stdout).toContain('1 run (1 with a shadow policy), 2 disagreements');
    expect(report.stdout).toMatch(/allow-to-deny\s+2/);
    expect(report.stdout).toMatch(/allow-to-deny\s+allow-rest\s+deny-everything\s+1/);
    expect(report.stdout).toMatch(/allow-to-deny\s+transfers-need-finance\s+deny-everything\s+1/);
    const json = JSON.parse((await runCli(['policy', 'shadow-report', '--agent', 'shadow-agent', '--runs', query, '--json'], env())).stdout) as { diffs: number; byRule: { from: string; to: string; count: number }[] };
    expect(json.diffs).toBe(2);
    expect(json.byRule).toHaveLength(2);
  }, 120_000);

  test('named by a policy in a start input is never loaded, even on a test worker that takes the policy', async () => {
    const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'echo', requester: 'carol', policy: { ...plain, shadow: { file: denyAllFile } }, script: [{ toolCalls: [{ name: 'echo', args: { text: 'x' } }] }, { text: 'done' }] });
    expect((await bed.client.result(runId)).status).toBe('completed');
    expect((await bed.client.status(runId)).shadow).toBeNull();
    const trail = await bed.store.readAudit(runId);
    expect(trail.some((e) => e.type === 'policy_shadow_diff')).toBe(false);
  }, 60_000);

  test('a bad shadow block is refused with the path; a shadow file that cannot be read is refused by apply', async () => {
    const bad = path.join(tmp, 'bad-shadow.yaml');
    writeFileSync(bad, toYaml({ ...plain, shadow: 'deny-all.yaml' }));
    const check = await runCli(['policy', 'check', bad], env());
    expect(check.code).toBe(1);
    expect(check.stderr).toContain('shadow: must be { file: <path of the candidate policy file, relative to this one> }');
    const missing = path.join(tmp, 'missing-shadow.yaml');
    writeFileSync(missing, toYaml({ ...shadowed, shadow: { file: 'nowhere.yaml' } }));
    const apply = await runCli(['policy', 'apply', missing], env());
    expect(apply.code).toBe(1);
    expect(apply.stderr).toContain('cannot read shadow policy');
  }, 60_000);

  test('applied with a relative shadow file, then promoted with one command: the candidate decides new runs', async () => {
    const enforcedFile = path.join(tmp, 'shadow-agent.yaml');
    writeFileSync(enforcedFile, toYaml({ ...shadowed, shadow: { file: 'deny-all.yaml' } }));
    const applied = await runCli(['policy', 'apply', enforcedFile], env());
    expect(applied.code).toBe(0);
    effects.reset();
    const { trail } = await approvedRun('shadow-agent', `applied-${unique}`);
    expect(effects.count('transfer')).toBe(1);
    expect(trail.filter((e) => e.type === 'policy_shadow_diff')).toHaveLength(2);

    const promoted = await runCli(['policy', 'promote-shadow', 'shadow-agent'], env());
    expect(promoted.stderr).toBe('');
    expect(promoted.code).toBe(0);
    expect(promoted.stdout).toContain(`promoted shadow ${denyAllFile}`);
    expect((await bed.store.getAppliedPolicy('shadow-agent'))?.source).toBe(denyAllFile);

    effects.reset();
    const runId = await bed.client.startRun({ agent: 'shadow-agent', goal: 'echo', requester: 'carol', script: [{ toolCalls: [{ name: 'echo', args: { text: 'x' } }] }, { text: 'done' }] });
    expect((await bed.client.result(runId)).status).toBe('completed');
    expect(effects.count('echo')).toBe(0);
    const decision = (await bed.store.readAudit(runId)).find((e) => e.type === 'policy_decision')?.data;
    expect(decision).toMatchObject({ decision: 'deny', ruleId: 'deny-everything' });
    expect((await bed.client.status(runId)).shadow).toBeNull();
    const again = await runCli(['policy', 'promote-shadow', 'shadow-agent'], env());
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('names no shadow policy');
  }, 120_000);
});
