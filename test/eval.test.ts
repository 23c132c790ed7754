/**
 * Golden runs and replay, end to end through the CLI: the refund example runs on an in-process
 * worker (its real tools and policy file), `warden eval record` saves the finished runs,
 * `warden eval run` and `warden replay` replay them on the suite's dev server with their own
 * worker (stubbed tools, today's policies).
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateSigningKey, parsePolicyText } from '../src/governance';
import { DecisionSigner } from '../src/approvals/signing-keys';
import { decideApproval } from '../src/approvals/decide';
import { readGoldenCase } from '../src/eval/case-schema';
import type { CaseReport } from '../src/eval/run';
import { refundAgent } from '../examples/refund-agent';
import { runCli, type CliResult } from './fixtures/run-cli';
import { createTestBed, eventually, settings, type TestBed } from './helpers';

const root = path.join(__dirname, '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-eval-'));
// The refund tools write to the example shop: keep it out of the working tree.
process.env.WARDEN_SHOP_DB = path.join(tmp, 'shop.db');
const home = path.join(tmp, 'home');
const evals = path.join(tmp, 'evals');
const bundle = process.env.WARDEN_TEST_WORKFLOW_BUNDLE ?? '';
const env = () => ({ ...process.env, TEMPORAL_ADDRESS: settings().address, WARDEN_HOME: home });
const cli = (args: string[], timeoutMs = 90_000): Promise<CliResult> => runCli(args, env(), timeoutMs);
const script = (name: string) => JSON.parse(readFileSync(path.join(root, 'examples', 'scripts', name), 'utf8')) as [];

// The in-process worker trusts one key, which signs the starts (verified requesters) and finance's approval.
const pair = generateSigningKey();
const signer = new DecisionSigner({ keyId: 'eval-test', ...pair });
const keyring = { 'eval-test': { publicKey: pair.publicKey, channel: 'cli', people: '*' as const, revoked: false } };

let bed: TestBed;
let lateRun: string;
let largeRun: string;

beforeAll(async () => {
  mkdirSync(home, { recursive: true });
  const policyFile = path.join(root, 'policies', 'refund-agent.yaml');
  bed = await createTestBed({ agents: [refundAgent], policies: [parsePolicyText(readFileSync(policyFile, 'utf8'), policyFile)], storePath: path.join(home, 'warden.db'), keyring });
  const start = (key: string, goal: string, file: string) =>
    bed.client.startRun({ agent: 'refund-agent', goal, requester: 'carol', key: `${key}-${Math.random().toString(36).slice(2, 8)}`, script: script(file), signer, channel: 'cli' });
  lateRun = await start('late', 'Order ORD-1001 arrived late; refund what is fair', 'refund-out-of-scope.json');
  largeRun = await start('large', 'The desk from ORD-1003 arrived cracked; refund it', 'refund-large.json');
  expect((await bed.client.result(lateRun)).status).toBe('completed');
  const [approval] = await eventually(async () => {
    const pending = await bed.client.pendingApprovals(largeRun);
    return pending.length > 0 ? pending : null;
  });
  const sent = await decideApproval({ client: bed.client, store: bed.store, signer }, { runId: largeRun, approvalId: approval?.approvalId ?? '', decision: 'approve', identity: { id: 'alice', groups: ['finance'] }, note: 'photos confirm it', channel: 'cli' });
  expect(sent.status).toBe('accepted');
  expect((await bed.client.result(largeRun)).status).toBe('completed');
}, 120_000);

afterAll(async () => {
  await bed?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('warden eval record', () => {
  it('saves a finished run as a golden case: answers, tool results, decisions, votes, outcome and expectations', async () => {
    const late = await cli(['eval', 'record', lateRun, '--as', 'late', '--dir', evals]);
    expect(late).toMatchObject({ code: 0 });
    expect(late.stdout).toContain('4 model answer(s), 2 tool result(s), 3 decision(s), outcome completed');
    expect((await cli(['eval', 'record', largeRun, '--as', 'large', '--dir', evals])).code).toBe(0);

    const golden = readGoldenCase(path.join(evals, 'late.json'));
    expect(golden).toMatchObject({ agent: 'refund-agent', goal: 'Order ORD-1001 arrived late; refund what is fair', requester: 'carol', requesterVerified: true, recordedFrom: { runId: lateRun } });
    expect(golden.turns.map((t) => t.toolCalls?.map((c) => `${c.id}:${c.name}`) ?? t.text?.slice(0, 13))).toEqual([['call_1_1:lookup_order'], ['call_2_1:issue_refund'], ['call_3_1:change_credit_limit'], "I've refunded"]);
    expect(golden.turns[0]?.usage).toEqual({ inputTokens: 1240, outputTokens: 38 });
    // The conversation keeps the sensitive note the trail redacts: the replay sends the model's exact call.
    expect(golden.turns[1]?.toolCalls?.[0]?.args.customerNote).toContain('Card ending 4242');
    expect(golden.toolResults.map((r) => [r.callId, r.tool])).toEqual([
      ['call_1_1', 'lookup_order'],
      ['call_2_1', 'issue_refund'],
    ]);
    expect(golden.toolResults[1]?.result).toMatchObject({ orderId: 'ORD-1001', amount: 25, status: 'issued' });
    expect(golden.decisions.map((d) => `${d.tool}:${d.decision}:${d.ruleId}`)).toEqual(['lookup_order:allow:lookup-orders', 'issue_refund:allow:small-refunds', 'change_credit_limit:deny:credit-limits-out-of-scope']);
    expect(golden.outcome).toMatchObject({ status: 'completed', steps: 4, toolCalls: 2 });
    expect(golden.expect).toEqual({ outcome: 'completed', toolsCalled: ['lookup_order', 'issue_refund'], toolsNotCalled: ['change_credit_limit'], maxCostUsd: expect.any(Number) });

    const large = readGoldenCase(path.join(evals, 'large.json'));
    expect(large.votes).toEqual([{ callId: 'call_2_1', tool: 'issue_refund', kind: 'approve', approver: 'alice', groups: ['finance'], note: 'photos confirm it' }]);
  }, 60_000);

  it('refuses a run that is not in the store, and a case file of the wrong shape, naming the file and the field', async () => {
    const missing = await cli(['eval', 'record', 'warden/refund-agent/nope', '--as', 'x', '--dir', evals]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('run warden/refund-agent/nope has no audit trail in the run store');
    const badDir = path.join(tmp, 'bad');
    mkdirSync(badDir);
    const doc = JSON.parse(readFileSync(path.join(evals, 'late.json'), 'utf8')) as { outcome: { status: string } };
    doc.outcome.status = 'finished';
    writeFileSync(path.join(badDir, 'broken.json'), JSON.stringify(doc));
    const bad = await cli(['eval', 'run', badDir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`golden case ${path.join(badDir, 'broken.json')}: outcome.status:`);
  }, 60_000);
});

describe('warden eval run', () => {
  it('passes on an unchanged setup, casting the recorded approval, and writes JUnit XML', async () => {
    const junit = path.join(tmp, 'junit', 'eval.xml');
    const r = await cli(['eval', 'run', evals, '--junit', junit, '--workflow-bundle', bundle, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { passed, cases } = JSON.parse(r.stdout) as { passed: boolean; cases: CaseReport[] };
    expect(passed).toBe(true);
    expect(cases.map((c) => [c.name, c.passed, c.failures])).toEqual([
      ['large', true, []],
      ['late', true, []],
    ]);
    const large = cases[0];
    expect(large?.decisions.replayed.map((d) => d.decision)).toEqual(['allow', 'require_approval']);
    expect(large?.outcome.replayed).toMatchObject({ status: 'completed', toolCalls: 2 });
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toContain('<testsuite name="warden eval" tests="2" failures="0"');
    expect(xml).toContain('<testcase name="late" classname="refund-agent"');
  }, 120_000);

  it('fails when a policy changes a decision, and names it', async () => {
    const policies = path.join(tmp, 'policies-changed');
    cpSync(path.join(root, 'policies'), policies, { recursive: true });
    const file = path.join(policies, 'refund-agent.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('when: args.amount <= 100', 'when: args.amount <= 10'));
    const junit = path.join(tmp, 'changed.xml');
    const r = await cli(['eval', 'run', evals, '--policies', policies, '--junit', junit, '--workflow-bundle', bundle]);
    expect(r.code).toBe(21);
    expect(r.stdout).toMatch(/^PASS {2}large/m);
    expect(r.stdout).toMatch(/^FAIL {2}late/m);
    expect(r.stdout).toContain('✗ decision 2: issue_refund allow by rule small-refunds, now issue_refund deny by rule');
    expect(r.stdout).toContain('✗ expected issue_refund to run; it did not');
    expect(r.stdout).toContain('1 of 2 case(s) passed');
    expect(readFileSync(junit, 'utf8')).toContain('<failure message="decision 2: issue_refund allow by rule small-refunds, now issue_refund deny by rule');
  }, 120_000);
});

describe('warden replay', () => {
  it('re-runs a finished run as a new run linked by WardenReplayOf', async () => {
    const r = await cli(['replay', lateRun, '--workflow-bundle', bundle, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as CaseReport;
    expect(report).toMatchObject({ passed: true, recordedRunId: lateRun, outcome: { replayed: { status: 'completed', steps: 4 } } });
    // Visibility is eventually consistent: wait until the listing has the new run.
    const linked = await eventually(async () => {
      const runs = await bed.client.listRuns({ open: false, query: `WardenReplayOf = '${lateRun}'` });
      return runs.some((run) => run.runId === report.runId) ? runs : null;
    });
    // `warden eval run` links its replays the same way; nothing else carries the attribute.
    expect(linked.every((run) => run.runId.startsWith('warden/refund-agent/replay-late-'))).toBe(true);
    expect(linked.find((run) => run.runId === report.runId)).toMatchObject({ agent: 'refund-agent', status: 'completed', requester: 'carol' });
    // The new run's trail is in the run store, as any run's.
    expect((await bed.store.readAudit(report.runId)).some((e) => e.type === 'run_finished')).toBe(true);
  }, 120_000);

  it('with --from-step K uses the first K answers, then the scripted model ends the run', async () => {
    const r = await cli(['replay', lateRun, '--from-step', '1', '--workflow-bundle', bundle, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as CaseReport;
    expect(report.decisions.replayed.map((d) => d.tool)).toEqual(['lookup_order']);
    expect(report.outcome.replayed).toMatchObject({ status: 'completed', steps: 2, toolCalls: 1 });
    expect(report.changes[0]).toContain('replayed the first 1 of 4 model answers');
  }, 120_000);
});

describe('eval and replay with an agents module that has MCP tools', () => {
  // The MCP server is a stdio child process of the CLI; an open connection to it kept `warden eval
  // run` and `warden replay` running after they printed their results.
  const mcpModule = path.join(tmp, 'mcp-agents.ts');
  const mcpPolicies = path.join(tmp, 'mcp-policies');

  beforeAll(() => {
    mkdirSync(mcpPolicies, { recursive: true });
    cpSync(path.join(root, 'policies', 'refund-agent.yaml'), path.join(mcpPolicies, 'refund-agent.yaml'));
    const src = (p: string) => JSON.stringify(path.join(root, p));
    writeFileSync(
      mcpModule,
      [
        `import { defineAgent, defineMcpTools } from ${src('src/agents')};`,
        `export { refundAgent } from ${src('examples/refund-agent')};`,
        `export const notesAgent = defineAgent({ name: 'notes-agent', instructions: 'Keeps notes.', model: 'scripted', tools: [defineMcpTools({`,
        `  server: { name: 'notes', command: process.execPath, args: ['--import', 'tsx', ${src('test/fixtures/mcp-stdio-server.ts')}], env: { MCP_NOTES_FILE: ${JSON.stringify(path.join(tmp, 'notes.log'))} }, cwd: ${JSON.stringify(root)} },`,
        `  exclude: ['secret_*', 'create_ticket'],`,
        `})] });`,
      ].join('\n'),
    );
  });

  it('warden eval run exits when it is done', async () => {
    const r = await cli(['eval', 'run', evals, '--agents', mcpModule, '--policies', mcpPolicies, '--workflow-bundle', bundle, '--json'], 150_000);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { passed: boolean }).passed).toBe(true);
  }, 180_000);

  it('warden replay exits when it is done', async () => {
    const r = await cli(['replay', lateRun, '--agents', mcpModule, '--policies', mcpPolicies, '--workflow-bundle', bundle, '--json'], 150_000);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as CaseReport).passed).toBe(true);
  }, 180_000);
});
