/** Budgets across delegation: what a delegate may use, how it is charged, how a ceiling stops it. No server. */
import {
  CompiledPolicy,
  admitApproved,
  budgetsLeft,
  chargeDelegate,
  checkModelCallBudgets,
  delegationCeiling,
  emptyCeiling,
  emptyLoopState,
  emptyUsage,
  governCall,
  parsePolicy,
  spentOf,
  type BudgetUsage,
  type GovernState,
} from '../../src/governance';

const used = (over: Partial<BudgetUsage>): BudgetUsage => ({ ...emptyUsage(), ...over });

describe('budgetsLeft', () => {
  test('the tighter of the policy and the inherited ceiling, less what was used; wall time in ms', () => {
    const left = budgetsLeft(
      { maxSteps: 10, maxToolCalls: 8, maxCostUsd: 1, maxWallTime: '1m' },
      { maxSteps: 6, maxToolCalls: 20, maxInputTokens: 500, maxWallTime: '30s' },
      used({ steps: 2, toolCalls: 3, inputTokens: 100, costUsd: 0.25 }),
      10_000,
    );
    expect(left).toEqual({ maxSteps: 4, maxToolCalls: 5, maxInputTokens: 400, maxCostUsd: 0.75, maxWallTime: '20000ms' });
  });

  test('never below zero; limits nobody set stay unset', () => {
    expect(budgetsLeft({ maxToolCalls: 2 }, undefined, used({ toolCalls: 5 }), 0)).toEqual({ maxToolCalls: 0 });
    expect(budgetsLeft({}, undefined, used({ steps: 100 }), 1e9)).toEqual({});
  });
});

describe('delegationCeiling', () => {
  test('a lone delegate gets what is left', () => {
    expect(delegationCeiling({ maxSteps: 7, maxCostUsd: 0.5, maxWallTime: '9000ms' }, [])).toEqual({ maxSteps: 7, maxCostUsd: 0.5, maxWallTime: '9000ms' });
  });

  test('side-by-side delegates split what is left; the last gets the rest; a running one holds its share', () => {
    const left = { maxSteps: 7, maxToolCalls: 5, maxCostUsd: 0.9, maxWallTime: '60000ms' };
    const first = delegationCeiling(left, [], 2);
    expect(first).toEqual({ maxSteps: 3, maxToolCalls: 2, maxCostUsd: 0.45, maxWallTime: '60000ms' });
    const second = delegationCeiling(left, [first], 1);
    expect(second).toEqual({ maxSteps: 4, maxToolCalls: 3, maxCostUsd: 0.45, maxWallTime: '60000ms' });
    // Together never more than the run had.
    expect((first.maxSteps ?? 0) + (second.maxSteps ?? 0)).toBe(7);
  });

  test('emptyCeiling names what is missing for a delegate to start', () => {
    expect(emptyCeiling({ maxSteps: 0 })).toBe('no model call is left of the budget');
    expect(emptyCeiling({ maxCostUsd: 0 })).toBe('no money is left of the cost budget');
    expect(emptyCeiling({ maxWallTime: '0ms' })).toBe('no time is left of the wall time budget');
    // No tool call left is not empty: a delegate may still answer from what it knows.
    expect(emptyCeiling({ maxSteps: 1, maxToolCalls: 0 })).toBeNull();
  });
});

describe('charging and checking', () => {
  test('chargeDelegate adds totals, not per-tool counts', () => {
    const charged = chargeDelegate(used({ steps: 1, toolCalls: 1, toolCallsByTool: { echo: 1 }, costUsd: 0.1 }), { steps: 2, toolCalls: 3, inputTokens: 10, outputTokens: 5, costUsd: 0.2 });
    expect(charged).toEqual({ steps: 3, toolCalls: 4, toolCallsByTool: { echo: 1 }, inputTokens: 10, outputTokens: 5, costUsd: 0.30000000000000004 });
  });

  test("the policy's own limit is reported as it is; the inherited one says it is the delegating run's", () => {
    expect(checkModelCallBudgets({ maxSteps: 2 }, { maxSteps: 5 }, used({ steps: 2 }), 0)).toEqual({ limit: 'maxSteps', used: 2, max: 2, message: 'step budget exhausted: used 2 of 2' });
    expect(checkModelCallBudgets({ maxSteps: 9 }, { maxSteps: 2 }, used({ steps: 2 }), 0)).toEqual({
      limit: 'maxSteps',
      used: 2,
      max: 2,
      inherited: true,
      message: "the delegating run's budget: step budget exhausted: used 2 of 2",
    });
    expect(checkModelCallBudgets({}, undefined, used({ steps: 99 }), 0)).toBeNull();
  });

  test('governCall and admitApproved count delegates against the budgets and enforce the inherited ceiling', () => {
    const policy = new CompiledPolicy(parsePolicy({ agent: 'a', tools: { echo: {} }, rules: [{ id: 'all', decision: 'allow' }], budgets: { maxToolCalls: 3 } }, 'unit'));
    const tool = { name: 'echo', risk: 'low' as const, inputSchema: { type: 'object' } };
    const run = { id: 'r', requester: 'c', requesterVerified: false, step: 1, toolCalls: 0, costUsd: 0, inputTokens: 0, outputTokens: 0 };
    const call = { id: 'c1', name: 'echo', args: {} };
    // One own call and two by delegates: the third of three is spent.
    const state: GovernState = { usage: used({ toolCalls: 1 }), loop: emptyLoopState(), stoppedTools: [], delegated: { steps: 1, toolCalls: 2, inputTokens: 0, outputTokens: 0, costUsd: 0 } };
    expect(spentOf(state).toolCalls).toBe(3);
    const r = governCall(state, call, { policy, agent: 'a', tool, run, elapsedMs: 0 });
    expect(r.plan).toEqual({ kind: 'refuse', message: 'not run: tool call budget exhausted: used 3 of 3' });
    // A delegate with a ceiling of one call: the second is refused as the delegating run's limit.
    const fresh: GovernState = { usage: used({ toolCalls: 1 }), loop: emptyLoopState(), stoppedTools: [] };
    const inherited = governCall(fresh, call, { policy, agent: 'a', tool, run, elapsedMs: 0, inherited: { maxToolCalls: 1 } });
    expect(inherited.end?.budget).toMatchObject({ limit: 'maxToolCalls', inherited: true });
    const admitted = admitApproved(fresh, call, policy, 0, { maxToolCalls: 1 });
    expect(admitted.ok).toBe(false);
    expect(admitApproved(fresh, call, policy, 0).ok).toBe(true);
  });
});
