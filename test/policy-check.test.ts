/**
 * Policy checks that need no Temporal: the schema's removed fields, CEL conditions type-checked
 * against the agents' real tool schemas with line and column, the decisions for unverified
 * requesters and tools the agent lacks, and `warden policy check/list/show/diff/remove`.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isFleetFile, loadAgents, loadPolicies, toolSpec, type Agent } from '../src/agents';
import { CompiledPolicy, parsePolicy, parsePolicyText, PolicyError, type Policy, type RunFacts } from '../src/governance';
import { checkPolicy, type ToolSchemaInfo } from '../src/governance/policy/policy-check';
import type { PolicyProblem } from '../src/governance/policy/policy-problem';
import { createSqliteStore } from '../src/store';
import { runCli, type CliResult } from './fixtures/run-cli';

const root = path.join(__dirname, '..');
const examplesModule = path.join(root, 'examples');
const fixtureModule = path.join(root, 'test', 'fixtures', 'custom-agents', 'index.ts');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-policy-check-'));

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const examples = loadAgents(examplesModule);
const toolsOf = (agent: Agent): ToolSchemaInfo[] => agent.tools.map(toolSpec);
const refundTools = toolsOf(examples.get('refund-agent'));

/** A refund-agent policy with these rules (YAML lines, indented under `rules:`) after a fixed header. */
function refundPolicy(rules: string[]): string {
  return ['agent: refund-agent', 'tools:', '  lookup_order:', '  issue_refund:', '  change_credit_limit:', 'rules:', ...rules, ''].join('\n');
}

function problemsOf(text: string, tools: readonly ToolSchemaInfo[] | null = refundTools): PolicyProblem[] {
  return checkPolicy(parsePolicyText(text, 'test.yaml'), tools ?? undefined, text);
}

function policyErrorOf(fn: () => unknown): PolicyError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PolicyError) return err;
    throw err;
  }
  throw new Error('expected a PolicyError');
}

describe('CEL conditions checked against the tools\' input schemas', () => {
  test('an undeclared name, at its line and column', () => {
    const text = refundPolicy(['  - id: count', '    tools: [issue_refund]', '    when: size(argz) > 1', '    decision: deny']);
    expect(problemsOf(text)).toEqual([
      { path: 'rules[0].when', rule: 0, line: 9, column: 16, message: 'unknown name "argz" (a condition can read args, agent, tool, run)' },
    ]);
  });

  test('a misspelled argument, pointed at the field, naming the fields the tool has', () => {
    const text = refundPolicy(['  - id: big', '    tools: [issue_refund]', '    when: args.amout > 100', '    decision: deny']);
    const [problem, ...rest] = problemsOf(text);
    expect(rest).toEqual([]);
    expect(problem).toMatchObject({ path: 'rules[0].when', rule: 0, line: 9, column: 16, tools: ['issue_refund'] });
    expect(problem?.message).toBe('args has no field "amout": reading it fails at run time (issue_refund has orderId, amount, reason, customerNote)');
  });

  test('a number compared with a string, in a quoted scalar', () => {
    const text = refundPolicy(['  - id: big', '    tools: [issue_refund]', `    when: 'args.amount > "100"'`, '    decision: deny']);
    const [problem, ...rest] = problemsOf(text);
    expect(rest).toEqual([]);
    expect(problem).toMatchObject({ path: 'rules[0].when', rule: 0, line: 9, column: 12, tools: ['issue_refund'] });
    expect(problem?.message).toContain('args.amount > "100" compares a number with a string');
  });

  test('positions inside a folded block scalar, several problems of one condition', () => {
    const text = refundPolicy(['  - id: odd', '    tools: [issue_refund]', '    when: >-', '      run.requesterVerified &&', '      tool.risk == "hgh" || args.amount + 1 > 2', '    decision: deny']);
    const problems = problemsOf(text);
    expect(problems.map((p) => [p.line, p.column])).toEqual([
      [11, 7],
      [11, 29],
    ]);
    expect(problems[0]?.message).toBe('tool.risk == "hgh" is never true: the value is one of "low", "medium", "high"');
    expect(problems[1]?.message).toContain('args.amount + 1 mixes a number and an int, which CEL arithmetic does not do; numbers from JSON are doubles, so write 1.0');
  });

  test('an unknown function, a condition that is not a bool, an unknown run field', () => {
    const text = refundPolicy([
      '  - id: a',
      '    tools: [lookup_order]',
      '    when: args.orderId.startwith("ORD")',
      '    decision: deny',
      '  - id: b',
      '    tools: [lookup_order]',
      '    when: args.orderId',
      '    decision: allow',
      '  - id: c',
      '    when: run.requestr == "dana"',
      '    decision: deny',
    ]);
    expect(problemsOf(text)).toEqual([
      { path: 'rules[0].when', rule: 0, line: 9, column: 24, message: 'unknown function "startwith": the condition fails at run time' },
      { path: 'rules[1].when', rule: 1, line: 13, column: 11, tools: ['lookup_order'], message: 'the condition is a string, not a bool: the rule never matches (for lookup_order)' },
      { path: 'rules[2].when', rule: 2, line: 16, column: 15, message: 'run has no field "requestr": reading it fails at run time (it has id, requester, requesterVerified, tenant, step, toolCalls, costUsd, inputTokens, outputTokens)' },
    ]);
  });

  test('a rule without tools: a field only some tools have is fine, one none has is a problem; a type mismatch counts per tool', () => {
    const text = refundPolicy([
      '  - id: limits',
      '    when: args.newLimit > 5000.0',
      '    decision: deny',
      '  - id: typo',
      '    when: has(args.coupon)',
      '    decision: deny',
      '  - id: ids',
      '    when: args.orderId > 5',
      '    decision: deny',
    ]);
    const problems = problemsOf(text);
    expect(problems.map((p) => p.rule)).toEqual([1, 2]);
    expect(problems[0]).toMatchObject({ path: 'rules[1].when', line: 11, column: 20, tools: ['lookup_order', 'issue_refund', 'change_credit_limit'] });
    expect(problems[0]?.message).toMatch(/^has\(args\.coupon\) is always false: args has no field "coupon"/);
    expect(problems[1]).toMatchObject({ path: 'rules[2].when', line: 14, column: 11, tools: ['lookup_order', 'issue_refund'] });
    expect(problems[1]?.message).toBe('args.orderId > 5 compares a string with an int: it fails at run time and the rule denies (for lookup_order, issue_refund)');
  });

  test('a rule with tools is checked against each of them: a field one lacks is a problem', () => {
    const text = refundPolicy(['  - id: orders', '    tools: [lookup_order, change_credit_limit]', '    when: args.orderId.startsWith("ORD-9")', '    decision: deny']);
    const [problem, ...rest] = problemsOf(text);
    expect(rest).toEqual([]);
    expect(problem).toMatchObject({ path: 'rules[0].when', tools: ['change_credit_limit'] });
    expect(problem?.message).toContain('args has no field "orderId"');
  });

  test('a tool the policy lists that the agent does not have, at its key', () => {
    const text = ['agent: refund-agent', 'tools:', '  lookup_order:', '  teleport:', '    maxCalls: 1', 'rules: []', ''].join('\n');
    expect(problemsOf(text)).toEqual([
      { path: 'tools.teleport', line: 4, column: 3, message: 'agent refund-agent has no tool "teleport" (its tools: lookup_order, issue_refund, change_credit_limit)' },
    ]);
  });

  test('without tool schemas, names, run, tool and agent are still checked; args are not', () => {
    const text = refundPolicy([
      '  - id: a',
      '    when: size(argz) > 1 || args.amout > "x"',
      '    decision: deny',
      '  - id: b',
      '    when: run.step + 1 > 3',
      '    decision: deny',
    ]);
    const problems = problemsOf(text, null);
    expect(problems.map((p) => [p.rule, p.line, p.column])).toEqual([
      [0, 8, 16],
      [1, 11, 11],
    ]);
  });

  test('conditions that work at run time pass: comparisons across number types, macros, in, has, conversions', () => {
    const text = refundPolicy([
      '  - id: fine',
      '    tools: [issue_refund]',
      '    when: >-',
      '      args.amount <= 100 && args.amount > 0.5 && int(args.amount) % 2 == 0 &&',
      '      size(args.reason) > 3 && args.reason.matches("^[a-z ]+$") && has(args.customerNote) &&',
      '      args.orderId in ["ORD-1", "ORD-2"] && "amount" in args && [1, 2].all(x, x > 0) &&',
      '      args.amount + 1.0 > 2.0 && run.requester != "" && run.requesterVerified && tool.risk == "high" &&',
      '      agent == "refund-agent" && run.costUsd < 1 && type(args.amount) == double',
      '    decision: allow',
    ]);
    expect(problemsOf(text)).toEqual([]);
    // And they do evaluate: the rule matches instead of failing closed.
    const decision = new CompiledPolicy(parsePolicyText(text, 'fine.yaml')).decide(
      { tool: 'issue_refund', args: { orderId: 'ORD-1', amount: 4, reason: 'broken box', customerNote: 'sorry' }, risk: 'high' },
      'refund-agent',
      { id: 'r', requester: 'dana', requesterVerified: true, step: 1, toolCalls: 0, costUsd: 0, inputTokens: 0, outputTokens: 0 },
    );
    expect(decision).toMatchObject({ decision: 'allow', ruleId: 'fine' });
  });

  test.each(['size(argz) > 1', 'args.amout > 100', 'args.amount > "100"', 'args.amount + 1 > 2', 'args.reason.startwith("x")'])('what the checker flags fails at run time: %s', (when) => {
    const text = refundPolicy(['  - id: flagged', '    tools: [issue_refund]', `    when: '${when}'`, '    decision: allow']);
    expect(problemsOf(text)).toHaveLength(1);
    const decision = new CompiledPolicy(parsePolicyText(text, 'flagged.yaml')).decide(
      { tool: 'issue_refund', args: { orderId: 'ORD-1', amount: 4, reason: 'broken box' } },
      'refund-agent',
      { id: 'r', requester: 'dana', requesterVerified: true, step: 1, toolCalls: 0, costUsd: 0, inputTokens: 0, outputTokens: 0 },
    );
    expect(decision).toMatchObject({ decision: 'deny', ruleId: 'flagged' });
    expect(decision.reason).toContain('failed to evaluate');
  });
});

describe('the policies in the repository pass checkPolicy against their agents', () => {
  // Each agent's policy: not the fleet file (quotas across agents) nor the policies' test cases.
  test.each(readdirSync(path.join(root, 'policies')).filter((f) => f.endsWith('.yaml') && !isFleetFile(f) && !f.endsWith('.test.yaml')))('policies/%s', (file) => {
    const source = path.join(root, 'policies', file);
    const text = readFileSync(source, 'utf8');
    const policy = parsePolicyText(text, source);
    expect(checkPolicy(policy, toolsOf(examples.get(policy.agent)), text)).toEqual([]);
  });

  test('test/fixtures/custom-agents/policies against the fixture agents', () => {
    const fixtures = loadAgents(fixtureModule);
    const dir = path.join(root, 'test', 'fixtures', 'custom-agents', 'policies');
    for (const file of readdirSync(dir)) {
      const source = path.join(dir, file);
      const text = readFileSync(source, 'utf8');
      const policy = parsePolicyText(text, source);
      expect(checkPolicy(policy, toolsOf(fixtures.get(policy.agent)), text)).toEqual([]);
    }
  });

  test('a worker loading a policy directory refuses a condition its agent\'s tools cannot satisfy, naming file, line and column', () => {
    const dir = path.join(tmp, 'bad-policies');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'refund-agent.yaml'), refundPolicy(['  - id: big', '    tools: [issue_refund]', '    when: args.amout > 100', '    decision: deny']));
    const error = policyErrorOf(() => loadAgents(examplesModule, dir));
    expect(error.issues).toEqual([`${path.join(dir, 'refund-agent.yaml')}:9:16: rules[0].when: args has no field "amout": reading it fails at run time (issue_refund has orderId, amount, reason, customerNote)`]);
    // Without the agents, the same directory only validates (a shared directory may hold policies for other workers' agents).
    expect(loadPolicies(dir)).toHaveLength(1);
    expect(loadAgents(examplesModule, path.join(root, 'policies')).policyFor('refund-agent')).toBeDefined();
  });
});

describe('schema errors carry line and column', () => {
  test('every zod issue and CEL syntax error points at its node', () => {
    const text = [
      'agent: refund-agent',
      'tools:',
      '  issue_refund:',
      '    requireVerifiedRequester: sometimes',
      'rules:',
      '  - id: r1',
      '    decision: maybe',
      '    colour: red',
      'budgets:',
      '  maxSteps: 0',
      '',
    ].join('\n');
    const error = policyErrorOf(() => parsePolicyText(text, 'bad.yaml'));
    expect(error.message.split('\n')[0]).toBe('bad.yaml: invalid policy');
    expect(error.issues).toEqual([
      'bad.yaml:4:31: tools.issue_refund.requireVerifiedRequester: Invalid input: expected boolean, received string',
      'bad.yaml:7:15: rules[0].decision: Invalid option: expected one of "allow"|"deny"|"require_approval"',
      'bad.yaml:8:5: rules[0].colour: unknown field "colour"',
      'bad.yaml:10:13: budgets.maxSteps: Too small: expected number to be >=1',
    ]);
    expect(error.problems[1]).toMatchObject({ path: 'rules[0].decision', rule: 0, line: 7, column: 15 });

    const syntax = policyErrorOf(() => parsePolicyText(refundPolicy(['  - id: r', '    when: "args.amount >"', '    decision: allow']), 'syntax.yaml'));
    expect(syntax.issues).toEqual(['syntax.yaml:8:24: rules[0].when: CEL syntax error in "args.amount >": found > but expecting end of input']);
  });

  test('a YAML syntax error names file, line and column', () => {
    const error = policyErrorOf(() => parsePolicyText('agent: x\ntools: [a\n', 'broken.yaml'));
    expect(error.message.split('\n')[0]).toMatch(/^broken\.yaml:3:1: not valid YAML: /);
  });

  test('a missing required field points at its parent', () => {
    const error = policyErrorOf(() => parsePolicyText('agent: refund-agent\nrules: []\n', 'no-tools.yaml'));
    expect(error.issues).toEqual(['no-tools.yaml:1:1: tools: Invalid input: expected record, received undefined']);
  });
});

describe('allowUnsignedDecisions and trustedKeys are worker settings now', () => {
  const base = ['agent: refund-agent', 'tools:', '  lookup_order:'];

  test('either one in a policy is an error naming the field and where the setting went', () => {
    const error = policyErrorOf(() => parsePolicyText([...base, 'allowUnsignedDecisions: false', 'trustedKeys:', '  ops: "00"', ''].join('\n'), 'old.yaml'));
    expect(error.problems).toEqual([
      expect.objectContaining({ path: 'allowUnsignedDecisions', line: 4, column: 1 }),
      expect.objectContaining({ path: 'trustedKeys', line: 5, column: 1 }),
    ]);
    expect(error.issues[0]).toBe(
      "old.yaml:4:1: allowUnsignedDecisions: no longer a policy setting: whether unsigned approve/reject signals count is now a worker setting (the worker's allowUnsignedDecisions option, for development only); remove allowUnsignedDecisions from the policy",
    );
    expect(error.issues[1]).toContain('trustedKeys: no longer a policy setting: trusted keys are now a worker setting (the keyring file WARDEN_TRUSTED_KEYS names)');
    expect(() => parsePolicy({ agent: 'refund-agent', tools: {}, allowUnsignedDecisions: true }, 'signal')).toThrow(/allowUnsignedDecisions: no longer a policy setting/);
  });

  test('a policy recorded before the move is accepted with dropMovedFields, without them', () => {
    const policy = parsePolicy({ agent: 'refund-agent', tools: { lookup_order: {} }, allowUnsignedDecisions: true, trustedKeys: { k: 'a'.repeat(64) } }, 'snapshot', { dropMovedFields: true });
    expect(policy).not.toHaveProperty('allowUnsignedDecisions');
    expect(policy).not.toHaveProperty('trustedKeys');
    expect(policy.tools.lookup_order).toEqual({ requireVerifiedRequester: false });
  });
});

describe('decide: unverified requesters and tools the agent lacks', () => {
  const run = (overrides: Partial<RunFacts> = {}): RunFacts => ({
    id: 'warden/refund-agent/t',
    requester: 'dana',
    requesterVerified: false,
    step: 1,
    toolCalls: 0,
    costUsd: 0,
    inputTokens: 0,
    outputTokens: 0,
    ...overrides,
  });
  const policy: Policy = parsePolicy(
    {
      agent: 'refund-agent',
      tools: { issue_refund: { requireVerifiedRequester: true }, lookup_order: null, change_credit_limit: {} },
      rules: [
        { id: 'verified-lookups', tools: ['lookup_order'], when: 'run.requesterVerified', decision: 'allow' },
        { id: 'no-refunds', tools: ['issue_refund'], decision: 'deny' },
        { id: 'rest', decision: 'allow' },
      ],
    },
    'test policy',
  );
  const args = { orderId: 'ORD-1', amount: 5, reason: 'broken' };

  test('requireVerifiedRequester denies an unverified requester before any rule, and lets a verified one reach the rules', () => {
    const compiled = new CompiledPolicy(policy);
    expect(compiled.decide({ tool: 'issue_refund', args }, 'refund-agent', run())).toMatchObject({ decision: 'deny', ruleId: 'default:unverified-requester' });
    expect(compiled.decide({ tool: 'issue_refund', args }, 'refund-agent', run()).reason).toContain('dana was not verified by a signed start');
    expect(compiled.decide({ tool: 'issue_refund', args }, 'refund-agent', run({ requesterVerified: true }))).toMatchObject({ decision: 'deny', ruleId: 'no-refunds' });
  });

  test('run.requesterVerified is readable in conditions; an empty tool entry gets the defaults', () => {
    const compiled = new CompiledPolicy(policy);
    expect(policy.tools.lookup_order).toEqual({ requireVerifiedRequester: false });
    expect(compiled.decide({ tool: 'lookup_order', args: { orderId: 'ORD-1' } }, 'refund-agent', run({ requesterVerified: true }))).toMatchObject({ decision: 'allow', ruleId: 'verified-lookups' });
    expect(compiled.decide({ tool: 'lookup_order', args: { orderId: 'ORD-1' } }, 'refund-agent', run())).toMatchObject({ decision: 'allow', ruleId: 'rest' });
  });

  test('knownTools: a tool the policy lists but the agent lacks is an unknown tool', () => {
    const compiled = new CompiledPolicy(policy, { knownTools: new Set(['issue_refund', 'lookup_order']) });
    const decision = compiled.decide({ tool: 'change_credit_limit', args: { customerId: 'CUST-1', newLimit: 5 } }, 'refund-agent', run({ requesterVerified: true }));
    expect(decision).toMatchObject({ decision: 'deny', ruleId: 'default:unknown-tool' });
    expect(decision.reason).toBe('tool "change_credit_limit" is listed by the policy but agent refund-agent does not have it');
    expect(compiled.allowsTool('change_credit_limit')).toBe(false);
    // Without knownTools the policy's list is all there is.
    expect(new CompiledPolicy(policy).decide({ tool: 'change_credit_limit', args: {} }, 'refund-agent', run())).toMatchObject({ decision: 'allow', ruleId: 'rest' });
  });
});

describe('warden policy check/list/show/diff/remove', () => {
  const home = path.join(tmp, 'home');
  const env = (): NodeJS.ProcessEnv => {
    const e: NodeJS.ProcessEnv = { ...process.env, WARDEN_HOME: home };
    delete e.WARDEN_DB;
    return e;
  };
  const cli = (args: string[]): Promise<CliResult> => runCli(args, env());
  const refundFile = path.join(root, 'policies', 'refund-agent.yaml');

  test('check --agents: a good policy, "1 rule" in the singular', async () => {
    const one = path.join(tmp, 'one-rule.yaml');
    writeFileSync(one, refundPolicy(['  - id: all', '    decision: allow']));
    const r = await cli(['policy', 'check', one, '--agents', examplesModule]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('valid policy for refund-agent');
    expect(r.stdout).toContain(', 1 rule, tools: ');
    const four = await cli(['policy', 'check', refundFile, '--agents', examplesModule]);
    expect(four.stdout).toContain(', 4 rules, ');
    expect(four.stdout).toContain(`conditions checked against the tools of ${examplesModule}`);
  });

  test('check --agents refuses an agent the module lacks, and prints each problem with file:line:col', async () => {
    const other = path.join(tmp, 'other-agent.yaml');
    writeFileSync(other, 'agent: ghost-agent\ntools:\n  boo:\n');
    const ghost = await cli(['policy', 'check', other, '--agents', examplesModule]);
    expect(ghost.code).toBe(1);
    expect(ghost.stderr).toContain(`the policy is for agent ghost-agent, which ${examplesModule} does not export (it exports `);

    const bad = path.join(tmp, 'bad-refund.yaml');
    writeFileSync(bad, refundPolicy(['  - id: big', '    tools: [issue_refund]', '    when: args.amount > "100"', '    decision: deny']));
    const r = await cli(['policy', 'check', bad, '--agents', examplesModule]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`${bad}:9:11: rules[0].when: args.amount > "100" compares a number with a string`);
    // Without --agents the argument types are unknown: the same file passes, and says what was not checked.
    const unchecked = await cli(['policy', 'check', bad]);
    expect(unchecked.code).toBe(0);
    expect(unchecked.stdout).toContain('pass --agents');
  });

  test('check --tool with --requester-verified decides with run.requesterVerified', async () => {
    const file = path.join(tmp, 'verified.yaml');
    writeFileSync(file, ['agent: refund-agent', 'tools:', '  issue_refund:', '    requireVerifiedRequester: true', 'rules:', '  - id: all', '    decision: allow', ''].join('\n'));
    const no = JSON.parse((await cli(['policy', 'check', file, '--tool', 'issue_refund', '--json'])).stdout) as { decision: { ruleId: string } };
    expect(no.decision.ruleId).toBe('default:unverified-requester');
    const yes = JSON.parse((await cli(['policy', 'check', file, '--tool', 'issue_refund', '--requester-verified', '--json'])).stdout) as { decision: { ruleId: string } };
    expect(yes.decision.ruleId).toBe('all');
  });

  test('list, show, diff and remove an applied policy', async () => {
    const empty = await cli(['policy', 'list']);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toContain('no applied policies');

    const fileText = readFileSync(refundFile, 'utf8');
    const changedText = fileText.replace('when: args.amount <= 100', 'when: args.amount <= 50').replace('when: args.amount > 100', 'when: args.amount > 50');
    const changedFile = path.join(tmp, 'refund-changed.yaml');
    writeFileSync(changedFile, changedText);
    const changed = parsePolicyText(changedText, changedFile);
    const version = new CompiledPolicy(changed).version;
    const fileVersion = new CompiledPolicy(parsePolicyText(fileText, refundFile)).version;
    const store = createSqliteStore(path.join(home, 'warden.db'));
    try {
      // Stored the way an older `policy apply` did, with the fields that have moved to the worker: still readable.
      await store.setAppliedPolicy('refund-agent', { policy: { ...changed, allowUnsignedDecisions: false, trustedKeys: {} }, version, source: changedFile });
    } finally {
      await store.close();
    }

    const list = await cli(['policy', 'list']);
    expect(list.stderr).toBe('');
    expect(list.stdout).toMatch(new RegExp(`^AGENT\\s+APPLIED\\s+APPLIED AT\\s+SOURCE\\s+FILE`));
    expect(list.stdout).toMatch(new RegExp(`refund-agent\\s+${version}\\s+\\S+\\s+${changedFile}\\s+${fileVersion} `));
    const listed = JSON.parse((await cli(['policy', 'list', '--json'])).stdout) as { agent: string; version: string; file: { version: string } }[];
    expect(listed).toEqual([expect.objectContaining({ agent: 'refund-agent', version, source: changedFile, file: { source: refundFile, version: fileVersion } })]);

    const show = await cli(['policy', 'show', 'refund-agent']);
    expect(show.code).toBe(0);
    expect(show.stdout.split('\n')[0]).toContain(`refund-agent: applied policy ${version}, from ${changedFile}`);
    expect(show.stdout).toContain('when: args.amount <= 50');
    expect(show.stdout).not.toContain('allowUnsignedDecisions');
    const shown = JSON.parse((await cli(['policy', 'show', 'refund-agent', '--json'])).stdout) as { inForce: string; policy: Policy };
    expect(shown.inForce).toBe('applied');
    expect(shown.policy.rules[1]?.when).toBe('args.amount <= 50');

    const diff = await cli(['policy', 'diff', 'refund-agent']);
    expect(diff.code).toBe(0);
    const lines = diff.stdout.split('\n');
    expect(lines[0]).toBe(`--- ${refundFile} (file, ${fileVersion})`);
    expect(lines[1]).toMatch(new RegExp(`^\\+\\+\\+ applied ${version} \\(from ${changedFile}, `));
    expect(lines.filter((l) => /^[-+] /.test(l))).toEqual(['-    when: args.amount <= 100', '+    when: args.amount <= 50', '-    when: args.amount > 100', '+    when: args.amount > 50']);
    expect(lines.some((l) => l.startsWith('@@ -'))).toBe(true);

    const removed = await cli(['policy', 'remove', 'refund-agent']);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain(`removed applied policy ${version} of refund-agent: new runs use ${refundFile} (${fileVersion})`);
    const again = await cli(['policy', 'remove', 'refund-agent']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('no applied policy for agent refund-agent');

    const fromFile = await cli(['policy', 'show', 'refund-agent']);
    expect(fromFile.stdout.split('\n')[0]).toBe(`# refund-agent: policy file ${refundFile} (${fileVersion}); no applied policy`);
    const none = await cli(['policy', 'show', 'nobody']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no policy for agent nobody');
  });
});
