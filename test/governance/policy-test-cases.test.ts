/** Policy test cases (`<policy>.test.yaml`): parsed with their problems located, and decided by `governCall`. No server. */
import { CompiledPolicy, parsePolicy, type GovernedTool, type PolicyInput } from '../../src/governance';
import { caseFacts, decideCase, parsePolicyTestText, PolicyTestError, runPolicyTests, type PolicyTestFile } from '../../src/governance/change-safety/policy-tests';

const policyInput: PolicyInput = {
  agent: 'payer',
  tools: { pay: { maxCalls: 2 }, look: {}, 'agent:helper': {} },
  rules: [
    { id: 'small-pay', tools: ['pay'], when: 'args.amount <= 10', decision: 'allow' },
    { id: 'big-pay', tools: ['pay'], when: 'args.amount > 10 && run.requesterVerified', decision: 'require_approval', reason: 'big payments wait', approval: { approvers: ['group:finance'] } },
    { id: 'pay-unverified', tools: ['pay'], decision: 'deny', reason: 'unverified requesters pay small amounts only' },
    { id: 'late-looks', tools: ['look'], when: 'run.step > 5 || run.toolCalls > 3', decision: 'deny', reason: 'too late to look' },
    { id: 'look', tools: ['look'], decision: 'allow' },
  ],
  budgets: { maxToolCalls: 10, maxWallTime: '1h' },
  loop: { maxRepeats: 3, window: 5, action: 'fail_run' },
};
const policy = new CompiledPolicy(parsePolicy(policyInput, 'unit test'));

function suite(yaml: string): PolicyTestFile {
  return parsePolicyTestText(yaml, 'payer.test.yaml');
}

function problemsOf(yaml: string): PolicyTestError {
  try {
    suite(yaml);
  } catch (err) {
    if (PolicyTestError.isInstance(err)) return err;
    throw err;
  }
  throw new Error('the test file was accepted');
}

describe('parsePolicyTestText', () => {
  test('fills the defaults: requester tester, unverified, step 1, nothing used', () => {
    const file = suite('cases:\n  - name: a\n    tool: look\n    expect: { decision: allow, rule: look }\n');
    const c = file.cases[0];
    expect(c).toMatchObject({ args: {}, run: { requester: 'tester', requesterVerified: false }, usage: { steps: 1, toolCalls: 0, costUsd: 0 } });
    expect(c && caseFacts('payer', c).run).toEqual({ id: 'warden/payer/policy-test', requester: 'tester', requesterVerified: false, step: 1, toolCalls: 0, costUsd: 0, inputTokens: 0, outputTokens: 0 });
  });

  test('a wrong field names the file, line, case and field', () => {
    const err = problemsOf(['cases:', '  - name: good', '    tool: look', '    expect: { decision: allow, rule: look }', '  - name: bad one', '    tool: look', '    expect: { decision: alow, rule: look }', ''].join('\n'));
    expect(err.problems).toEqual([{ path: 'cases[1].expect.decision', message: 'must be allow, deny or require_approval', case: 1, caseName: 'bad one', line: 7, column: 25 }]);
    expect(err.message).toContain('payer.test.yaml:7:25: cases[1].expect.decision (case "bad one"): must be allow, deny or require_approval');
  });

  test('an unknown field, a missing rule and a case without a name are each named', () => {
    const err = problemsOf(['cases:', '  - name: typo', '    tool: look', '    arg: { x: 1 }', '    expect: { decision: allow }', '  - tool: look', '    expect: { decision: allow, rule: look }', ''].join('\n'));
    const got = err.problems.map((p) => [p.path, p.caseName ?? null, p.line]);
    expect(got).toEqual(
      expect.arrayContaining([
        ['cases[0].arg', 'typo', 4],
        ['cases[0].expect.rule', 'typo', 5],
        ['cases[1].name', null, 6],
      ]),
    );
    expect(err.problems.find((p) => p.path === 'cases[0].arg')?.message).toBe('unknown field "arg"');
    expect(err.problems.find((p) => p.path === 'cases[1].name')?.message).toBe('every case needs a name');
  });

  test('duplicate case names, an empty list, run facts that come from usage, bad YAML', () => {
    const dup = problemsOf('cases:\n  - { name: a, tool: look, expect: { decision: allow, rule: look } }\n  - { name: a, tool: look, expect: { decision: allow, rule: look } }\n');
    expect(dup.problems).toEqual([expect.objectContaining({ path: 'cases[1].name', message: 'duplicate case name "a"', line: 3 })]);
    expect(problemsOf('cases: []\n').problems[0]).toMatchObject({ path: 'cases', message: 'must hold at least one case' });
    // run.step is what usage.steps says, as in the workflow: one number, not two that could disagree.
    expect(problemsOf('cases:\n  - { name: a, tool: look, run: { step: 3 }, expect: { decision: allow, rule: look } }\n').problems[0]).toMatchObject({ path: 'cases[0].run.step', message: 'unknown field "step"' });
    expect(problemsOf('cases:\n  - { name: a, tool: look, usage: { elapsed: soon }, expect: { decision: allow, rule: look } }\n').problems[0]).toMatchObject({ path: 'cases[0].usage.elapsed' });
    expect(problemsOf('cases: [\n').problems[0]?.message).toMatch(/^not valid YAML/);
  });
});

describe('decideCase', () => {
  const decide = (yamlCase: string) => {
    const c = suite(`cases:\n  - ${yamlCase}\n`).cases[0];
    if (!c) throw new Error('no case');
    return decideCase(policy, c);
  };

  test('the rules, in order, on the arguments and the requester', () => {
    expect(decide('{ name: a, tool: pay, args: { amount: 10 }, expect: { decision: allow, rule: x } }')).toMatchObject({ decision: 'allow', ruleId: 'small-pay' });
    expect(decide('{ name: a, tool: pay, args: { amount: 11 }, run: { requester: ann, requesterVerified: true }, expect: { decision: allow, rule: x } }')).toMatchObject({
      decision: 'require_approval',
      ruleId: 'big-pay',
      approvers: ['group:finance'],
    });
    expect(decide('{ name: a, tool: pay, args: { amount: 11 }, expect: { decision: allow, rule: x } }')).toMatchObject({ decision: 'deny', ruleId: 'pay-unverified' });
    expect(decide('{ name: a, tool: nope, expect: { decision: allow, rule: x } }')).toMatchObject({ decision: 'deny', ruleId: 'default:unknown-tool' });
  });

  test('usage is the run facts conditions read, and what the budgets count', () => {
    expect(decide('{ name: a, tool: look, usage: { steps: 6 }, expect: { decision: allow, rule: x } }')).toMatchObject({ ruleId: 'late-looks' });
    expect(decide('{ name: a, tool: pay, args: { amount: 1 }, usage: { toolCalls: 2, toolCallsByTool: { pay: 2 } }, expect: { decision: allow, rule: x } }')).toMatchObject({ decision: 'deny', ruleId: 'budget:maxCallsPerTool' });
    expect(decide('{ name: a, tool: look, usage: { toolCalls: 10 }, expect: { decision: allow, rule: x } }')).toMatchObject({ decision: 'deny', ruleId: 'budget:maxToolCalls' });
    expect(decide('{ name: a, tool: look, usage: { elapsed: 1h }, expect: { decision: allow, rule: x } }')).toMatchObject({ decision: 'deny', ruleId: 'budget:maxWallTime' });
    expect(decide('{ name: a, tool: look, usage: { elapsed: 59m }, expect: { decision: allow, rule: x } }')).toMatchObject({ decision: 'allow', ruleId: 'look' });
  });

  test("delegation: delegates' use counts in run facts and budgets; a delegate's ceiling is enforced", () => {
    // 2 own + 2 of delegates = 4 tool calls: run.toolCalls > 3.
    expect(decide('{ name: a, tool: look, usage: { toolCalls: 2 }, delegation: { delegatesUsed: { toolCalls: 2 } }, expect: { decision: allow, rule: x } }')).toMatchObject({ ruleId: 'late-looks' });
    expect(decide('{ name: a, tool: look, usage: { toolCalls: 2 }, delegation: { delegatesUsed: { toolCalls: 8 } }, expect: { decision: allow, rule: x } }')).toMatchObject({ ruleId: 'budget:maxToolCalls' });
    const ceiling = decide('{ name: a, tool: look, usage: { toolCalls: 1 }, delegation: { ceiling: { maxToolCalls: 1 } }, expect: { decision: allow, rule: x } }');
    expect(ceiling).toMatchObject({ decision: 'deny', ruleId: 'budget:maxToolCalls' });
    expect(ceiling.reason).toContain("the delegating run's budget");
  });

  test("with the agent's tools: their risk, their schema, and a tool the agent lacks", () => {
    const tools = new Map<string, GovernedTool>([['pay', { name: 'pay', inputSchema: {}, risk: 'high' }]]);
    const riskPolicy = new CompiledPolicy(parsePolicy({ ...policyInput, rules: [{ id: 'no-high-risk', when: "tool.risk == 'high'", decision: 'deny' }, { id: 'rest', decision: 'allow' }] }, 'unit test'), {
      knownTools: new Set(tools.keys()),
    });
    const prepareArgs = (_tool: string, args: Record<string, unknown>) => (typeof args.amount === 'number' ? { args } : { refused: 'amount: expected number' });
    const c = (yaml: string) => suite(`cases:\n  - ${yaml}\n`).cases[0]!;
    expect(decideCase(riskPolicy, c('{ name: a, tool: pay, args: { amount: 1 }, expect: { decision: allow, rule: x } }'), { tools, prepareArgs })).toMatchObject({ ruleId: 'no-high-risk' });
    // The case's own risk overrides the tool's.
    expect(decideCase(riskPolicy, c('{ name: a, tool: pay, risk: low, args: { amount: 1 }, expect: { decision: allow, rule: x } }'), { tools, prepareArgs })).toMatchObject({ ruleId: 'rest' });
    const refused = decideCase(riskPolicy, c('{ name: a, tool: pay, args: { amount: one }, expect: { decision: allow, rule: x } }'), { tools, prepareArgs });
    expect(refused).toMatchObject({ decision: 'deny', ruleId: 'schema:invalid-arguments' });
    expect(refused.reason).toContain('amount: expected number');
    // Listed by the policy, but the agent has no such tool.
    expect(decideCase(riskPolicy, c('{ name: a, tool: look, expect: { decision: allow, rule: x } }'), { tools, prepareArgs })).toMatchObject({ decision: 'deny', ruleId: 'default:unknown-tool' });
  });
});

describe('runPolicyTests', () => {
  test('passes and failures, a reason that must be in the decision, and the rules no case reaches', () => {
    const run = runPolicyTests(
      policy,
      suite(
        [
          'cases:',
          '  - { name: small, tool: pay, args: { amount: 3 }, expect: { decision: allow, rule: small-pay } }',
          '  - { name: wrong rule, tool: pay, args: { amount: 30 }, expect: { decision: deny, rule: big-pay } }',
          '  - { name: wrong reason, tool: pay, args: { amount: 30 }, expect: { decision: deny, rule: pay-unverified, reason: never } }',
          '  - { name: reason, tool: pay, args: { amount: 30 }, expect: { decision: deny, rule: pay-unverified, reason: small amounts } }',
          '',
        ].join('\n'),
      ),
    );
    expect(run.results.map((r) => [r.name, r.passed])).toEqual([
      ['small', true],
      ['wrong rule', false],
      ['wrong reason', false],
      ['reason', true],
    ]);
    expect(run.results[1]?.failure).toBe('expected deny (rule big-pay), got deny (rule pay-unverified): unverified requesters pay small amounts only');
    expect(run.results[2]?.failure).toBe('expected a reason containing "never", got "unverified requesters pay small amounts only"');
    expect([run.passed, run.failed]).toEqual([2, 2]);
    expect(run.uncoveredRules).toEqual(['big-pay', 'late-looks', 'look']);
    expect(run.uncoveredQuotas).toEqual([]);
    expect(run.policyVersion).toBe(policy.version);
  });
});

describe('quotas in policy tests', () => {
  const quotaPolicy = new CompiledPolicy(
    parsePolicy(
      {
        ...policyInput,
        rules: [{ id: 'big-pay-waits', tools: ['pay'], when: 'args.amount > 500', decision: 'require_approval', approval: { approvers: ['group:finance'] } }, { id: 'rest', decision: 'allow' }],
        quotas: [
          {
            id: 'pays-per-day',
            count: 'calls',
            tools: ['pay'],
            scope: ['tenant'],
            window: { calendar: 'day' },
            thresholds: [
              { above: 3, action: 'require_approval', reason: 'many payments today', approval: { approvers: ['group:ops'] } },
              { above: 5, action: 'deny', reason: 'the daily limit' },
            ],
          },
          { id: 'paid', count: { sum: 'args.amount' }, tools: ['pay'], window: { rolling: '24h' }, thresholds: [{ above: 1000, action: 'deny', reason: 'the daily budget' }] },
        ],
      },
      'unit test',
    ),
  );
  const decide = (yamlCase: string) => {
    const c = suite(`cases:\n  - ${yamlCase}\n`).cases[0];
    if (!c) throw new Error('no case');
    return decideCase(quotaPolicy, c);
  };

  test('what each quota holds decides as the store would: under, soft limit, hard limit, a sum', () => {
    expect(decide('{ name: a, tool: pay, args: { amount: 10 }, quotas: { pays-per-day: 2 }, expect: { decision: allow, rule: x } }')).toMatchObject({ decision: 'allow', ruleId: 'rest' });
    const soft = decide('{ name: a, tool: pay, args: { amount: 10 }, quotas: { pays-per-day: 3 }, expect: { decision: allow, rule: x } }');
    expect(soft).toEqual({
      decision: 'require_approval',
      ruleId: 'quota:payer/pays-per-day',
      reason: 'needs approval by quota payer/pays-per-day: many payments today (3 used, this call adds 1, limit 3)',
      approvers: ['group:ops'],
    });
    expect(decide('{ name: a, tool: pay, args: { amount: 10 }, quotas: { pays-per-day: 5 }, expect: { decision: allow, rule: x } }')).toMatchObject({ decision: 'deny', ruleId: 'quota:payer/pays-per-day' });
    expect(decide('{ name: a, tool: pay, args: { amount: 200 }, quotas: { paid: 900 }, expect: { decision: allow, rule: x } }')).toMatchObject({ decision: 'deny', ruleId: 'quota:payer/paid' });
    // A call the rules deny never reaches the quotas; one they send for approval keeps that approval (asked first); a hard limit still refuses it.
    expect(decide('{ name: a, tool: look, quotas: { pays-per-day: 9 }, expect: { decision: allow, rule: x } }')).toMatchObject({ ruleId: 'rest' });
    expect(decide('{ name: a, tool: pay, args: { amount: 600 }, quotas: { pays-per-day: 4 }, expect: { decision: allow, rule: x } }')).toMatchObject({ decision: 'require_approval', ruleId: 'big-pay-waits' });
    expect(decide('{ name: a, tool: pay, args: { amount: 600 }, quotas: { paid: 500 }, expect: { decision: allow, rule: x } }')).toMatchObject({ decision: 'deny', ruleId: 'quota:payer/paid' });
  });

  test('a case naming a quota the policy does not define is malformed, named by case and field', () => {
    const file = suite('cases:\n  - { name: typo, tool: pay, args: { amount: 1 }, quotas: { pays-per-week: 1 }, expect: { decision: allow, rule: rest } }\n');
    let err: unknown;
    try {
      runPolicyTests(quotaPolicy, file, {}, 'payer.test.yaml');
    } catch (e) {
      err = e;
    }
    expect(PolicyTestError.isInstance(err) && err.problems).toEqual([
      { path: 'cases[0].quotas["pays-per-week"]', message: 'the policy has no quota "pays-per-week" (its quotas: pays-per-day, paid)', case: 0, caseName: 'typo' },
    ]);
  });
});

describe('tenants in policy tests', () => {
  test('run.tenant is the case\'s tenant, empty when it names none', () => {
    const tenantPolicy = new CompiledPolicy(parsePolicy({ agent: 'payer', tools: { look: {} }, rules: [{ id: 'acme-looks', when: "run.tenant == 'acme'", decision: 'allow' }, { id: 'no-tenant', when: "run.tenant == ''", decision: 'deny' }] }, 'unit test'));
    const decide = (yamlCase: string) => {
      const c = suite(`cases:\n  - ${yamlCase}\n`).cases[0];
      if (!c) throw new Error('no case');
      return decideCase(tenantPolicy, c);
    };
    expect(decide('{ name: a, tool: look, run: { tenant: acme }, expect: { decision: allow, rule: x } }')).toMatchObject({ decision: 'allow', ruleId: 'acme-looks' });
    expect(decide('{ name: a, tool: look, expect: { decision: allow, rule: x } }')).toMatchObject({ decision: 'deny', ruleId: 'no-tenant' });
    expect(decide('{ name: a, tool: look, run: { tenant: globex }, expect: { decision: allow, rule: x } }')).toMatchObject({ decision: 'deny', ruleId: 'default:no-match' });
  });
});
