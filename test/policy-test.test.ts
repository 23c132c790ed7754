/**
 * `warden policy test` as people run it: the CLI in a child process, no Temporal server. The
 * example policies' own tests pass and reach every rule; a wrong expectation fails with the case
 * and file named and exit 1; a malformed test file exits 2 naming the field.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadPolicies } from '../src/agents';
import { repoRoot, runCli, type CliResult } from './fixtures/run-cli';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-policy-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const policies = path.join(repoRoot, 'policies');

function warden(args: string[]): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_HOME: path.join(tmp, 'home') };
  for (const name of ['TEMPORAL_ADDRESS', 'WARDEN_STORE']) delete env[name];
  return runCli(args, env);
}

interface JsonReport {
  passed: number;
  failed: number;
  malformed: number;
  files: { file: string; agent?: string; uncoveredRules?: string[]; uncoveredQuotas?: string[]; cases?: { name: string; passed: boolean }[]; problems?: { path: string; caseName?: string }[] }[];
}

/** A directory with the refund policy and the given test file beside it. */
function project(name: string, tests: string): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  copyFileSync(path.join(policies, 'refund-agent.yaml'), path.join(dir, 'refund-agent.yaml'));
  writeFileSync(path.join(dir, 'refund-agent.test.yaml'), tests);
  return dir;
}

describe('warden policy test', () => {
  test("the example policies' tests pass, each case named with a ✓, and every rule of every example policy is reached", async () => {
    const r = await warden(['policy', 'test', 'policies']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('policies/refund-agent.test.yaml → policies/refund-agent.yaml (refund-agent, pv_');
    expect(r.stdout).toContain('  ✓ a refund just over $100 waits for finance');
    expect(r.stdout).not.toContain('✗');
    expect(r.stdout).not.toContain('rules no case reaches');
    expect(r.stdout).not.toContain('quotas no case reaches');
    expect(r.stdout).toMatch(/\n\d+ cases: \d+ passed, 0 failed \(3 files\)\n$/);

    const json = await warden(['policy', 'test', 'policies', '--json']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as JsonReport;
    expect(report.failed).toBe(0);
    expect(report.malformed).toBe(0);
    expect(report.files.map((f) => [f.agent, f.uncoveredRules, f.uncoveredQuotas])).toEqual([
      ['procurement-agent', [], []],
      ['refund-agent', [], []],
      ['triage-agent', [], []],
    ]);
    for (const f of report.files) expect(f.cases?.every((c) => c.passed)).toBe(true);
  });

  test("with --agents, each call goes through its tool's own schema and the example tests still pass", async () => {
    const r = await warden(['policy', 'test', 'policies', '--agents', 'examples']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('✗');
  });

  test('the worker does not take the tests beside a policy for policies', () => {
    expect(loadPolicies(policies).map((p) => path.basename(p.source))).toEqual(['procurement-agent.yaml', 'refund-agent.yaml', 'triage-agent.yaml']);
  });

  test('a wrong expectation fails with exit 1, the case and file named, expected against got', async () => {
    const dir = project(
      'wrong',
      [
        'cases:',
        '  - name: lookups run',
        '    tool: lookup_order',
        '    args: { orderId: ORD-1 }',
        '    expect: { decision: allow, rule: lookup-orders }',
        '  - name: a $250 refund runs on its own',
        '    tool: issue_refund',
        '    args: { orderId: ORD-1, amount: 250 }',
        '    expect: { decision: allow, rule: small-refunds }',
        '',
      ].join('\n'),
    );
    const r = await warden(['policy', 'test', dir]);
    expect(r.code).toBe(1);
    const file = path.join(dir, 'refund-agent.test.yaml');
    expect(r.stdout).toContain('  ✓ lookups run');
    expect(r.stdout).toContain(`  ✗ a $250 refund runs on its own (${file}:6, issue_refund)`);
    expect(r.stdout).toContain('      expected allow (rule small-refunds), got require_approval (rule large-refunds): Refunds over $100 need a finance approver.');
    expect(r.stdout).toContain('  rules no case reaches: small-refunds, credit-limits-out-of-scope');
    expect(r.stdout).toContain('2 cases: 1 passed, 1 failed (1 file)');

    // The policy file given instead of the directory runs the tests beside it; --json says the same.
    const json = await warden(['policy', 'test', path.join(dir, 'refund-agent.yaml'), '--json']);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as JsonReport;
    expect(report.files[0]?.cases?.map((c) => [c.name, c.passed])).toEqual([
      ['lookups run', true],
      ['a $250 refund runs on its own', false],
    ]);
  });

  test('a malformed test file exits 2 naming the file, the case and the field; the other files still run', async () => {
    const dir = project('malformed', ['cases:', '  - name: a refund', '    tool: issue_refund', '    args: { orderId: ORD-1, amount: 5 }', '    expect: { decision: allowed, rule: small-refunds }', ''].join('\n'));
    copyFileSync(path.join(policies, 'triage-agent.yaml'), path.join(dir, 'triage-agent.yaml'));
    copyFileSync(path.join(policies, 'triage-agent.test.yaml'), path.join(dir, 'triage-agent.test.yaml'));
    const r = await warden(['policy', 'test', dir]);
    expect(r.code).toBe(2);
    const file = path.join(dir, 'refund-agent.test.yaml');
    expect(r.stdout).toContain(`${file}: invalid policy test file, not run`);
    expect(r.stdout).toContain(`${file}:5:25: cases[0].expect.decision (case "a refund"): must be allow, deny or require_approval`);
    expect(r.stdout).toContain('  ✓ reading an order runs on its own');
    expect(r.stdout).toMatch(/\(2 files, 1 malformed\)\n$/);

    const json = JSON.parse((await warden(['policy', 'test', dir, '--json'])).stdout) as JsonReport;
    expect(json.malformed).toBe(1);
    expect(json.files[0]?.problems).toEqual([expect.objectContaining({ path: 'cases[0].expect.decision', caseName: 'a refund' })]);
  });

  test('a test file whose policy is missing is malformed (exit 2, field policy); a directory without tests is an error', async () => {
    const dir = path.join(tmp, 'orphan');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'refund-agent.test.yaml'), 'policy: ../nowhere/refund.yaml\ncases:\n  - { name: a, tool: lookup_order, expect: { decision: allow, rule: lookup-orders } }\n');
    const r = await warden(['policy', 'test', dir]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`${path.join(dir, 'refund-agent.test.yaml')}:1:9: policy: no policy file ${path.join(dir, '../nowhere/refund.yaml')}`);

    const empty = path.join(tmp, 'empty');
    mkdirSync(empty, { recursive: true });
    const none = await warden(['policy', 'test', empty]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`error: no policy tests in ${empty}: write them beside each policy, as <policy>.test.yaml`);
  });

  test('a test of an invalid policy fails (exit 1) and says why', async () => {
    const dir = project('invalid-policy', 'cases:\n  - { name: a, tool: lookup_order, expect: { decision: allow, rule: lookup-orders } }\n');
    writeFileSync(path.join(dir, 'refund-agent.yaml'), 'agent: refund-agent\ntools: { lookup_order: }\nrules:\n  - { id: x, decision: maybe }\n');
    const r = await warden(['policy', 'test', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`cannot test ${path.join(dir, 'refund-agent.yaml')}: ${path.join(dir, 'refund-agent.yaml')}: invalid policy`);
    expect(r.stdout).toContain('rules[0].decision');
  });
});

describe('warden policy test with quotas', () => {
  const quotaPolicy = [
    'agent: refund-agent',
    'tools: { issue_refund: }',
    'rules:',
    '  - { id: refunds, tools: [issue_refund], decision: allow }',
    'quotas:',
    '  - id: refunds-per-day',
    '    count: calls',
    '    tools: [issue_refund]',
    '    scope: [tenant]',
    '    window: { calendar: day, timeZone: Europe/Berlin }',
    '    thresholds:',
    '      - { above: 20, action: require_approval, reason: many refunds today, approval: { approvers: [group:finance] } }',
    '      - { above: 50, action: deny, reason: the daily refund limit }',
    '',
  ].join('\n');

  test('a case says what each quota holds; the soft and hard limits decide as the workflow books them', async () => {
    const dir = project(
      'quotas',
      [
        'cases:',
        '  - { name: a quiet day, tool: issue_refund, args: { amount: 5 }, quotas: { refunds-per-day: 3 }, expect: { decision: allow, rule: refunds } }',
        '  - { name: the 21st refund waits, tool: issue_refund, args: { amount: 5 }, quotas: { refunds-per-day: 20 }, expect: { decision: require_approval, rule: "quota:refund-agent/refunds-per-day", reason: many refunds today } }',
        '  - { name: the 51st is refused, tool: issue_refund, args: { amount: 5 }, quotas: { refunds-per-day: 50 }, expect: { decision: deny, rule: "quota:refund-agent/refunds-per-day" } }',
        '',
      ].join('\n'),
    );
    writeFileSync(path.join(dir, 'refund-agent.yaml'), quotaPolicy);
    const r = await warden(['policy', 'test', dir]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('3 cases: 3 passed, 0 failed (1 file)');
  });

  test('a quota the policy does not define is a malformed case (exit 2), named with its line', async () => {
    const dir = project('quota-typo', 'cases:\n  - name: typo\n    tool: issue_refund\n    quotas: { refunds-per-week: 3 }\n    expect: { decision: allow, rule: refunds }\n');
    writeFileSync(path.join(dir, 'refund-agent.yaml'), quotaPolicy);
    const r = await warden(['policy', 'test', dir]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`${path.join(dir, 'refund-agent.test.yaml')}:4:15: cases[0].quotas["refunds-per-week"] (case "typo"): the policy has no quota "refunds-per-week" (its quotas: refunds-per-day)`);
  });
});
