/** `governCall` and `admitApproved`: every branch of one call's governance, in milliseconds, with no server. */
import { CompiledPolicy, admitApproved, emptyLoopState, emptyUsage, governCall, parsePolicy, type CallProposal, type GovernContext, type GovernState, type GovernedTool, type PolicyInput, type RunFacts } from '../../src/governance';

const transfer: GovernedTool = {
  name: 'transfer',
  risk: 'high',
  inputSchema: { type: 'object', properties: { amount: { type: 'number' }, pin: { type: 'string', sensitive: true } } },
};
const echo: GovernedTool = { name: 'echo', risk: 'low', inputSchema: { type: 'object', properties: { text: { type: 'string' } } } };

function policy(overrides: Partial<PolicyInput> = {}): CompiledPolicy {
  return new CompiledPolicy(
    parsePolicy(
      {
        agent: 'a',
        tools: { transfer: {}, echo: {}, ghost: {} },
        rules: [
          { id: 'big-transfers-wait', tools: ['transfer'], when: 'args.amount > 100', decision: 'require_approval', approval: { approvers: ['group:finance'] } },
          { id: 'no-secret-echo', tools: ['echo'], when: "args.text == 'secret'", decision: 'deny', reason: 'no secrets' },
          { id: 'allow-rest', decision: 'allow' },
        ],
        ...overrides,
      },
      'unit test',
    ),
  );
}

const fresh = (): GovernState => ({ usage: emptyUsage(), loop: emptyLoopState(), stoppedTools: [] });
const run: RunFacts = { id: 'r', requester: 'carol', requesterVerified: false, step: 1, toolCalls: 0, costUsd: 0, inputTokens: 0, outputTokens: 0 };
const call = (name: string, args: Record<string, unknown>, extra: Partial<CallProposal> = {}): CallProposal => ({ id: 'c1', name, args, ...extra });
const ctx = (tool: GovernedTool | undefined, over: Partial<GovernContext> = {}): GovernContext => ({ policy: policy(), agent: 'a', tool, run, elapsedMs: 0, ...over });

describe('governCall', () => {
  test('allow: the call runs and is counted; proposal and decision are audited with sensitive args redacted', () => {
    const r = governCall(fresh(), call('transfer', { amount: 5, pin: '1234' }), ctx(transfer));
    expect(r.plan).toEqual({ kind: 'run' });
    expect(r.state.usage).toMatchObject({ toolCalls: 1, toolCallsByTool: { transfer: 1 } });
    expect(r.events.map((e) => e.type)).toEqual(['call_proposed', 'policy_decision']);
    expect(r.events[0]?.data.args).toEqual({ amount: 5, pin: '[redacted]' });
    expect(r.decision).toMatchObject({ decision: 'allow', ruleId: 'allow-rest' });
  });

  test('deny: nothing runs, nothing is counted, the model is told the rule', () => {
    const r = governCall(fresh(), call('echo', { text: 'secret' }), ctx(echo));
    expect(r.plan).toEqual({ kind: 'refuse', message: 'denied by policy (rule no-secret-echo), nothing ran: no secrets' });
    expect(r.state.usage.toolCalls).toBe(0);
  });

  test('require_approval: the plan carries the requirement and the call is not yet counted', () => {
    const r = governCall(fresh(), call('transfer', { amount: 500 }), ctx(transfer));
    expect(r.plan).toMatchObject({ kind: 'approve', requirement: { approvers: ['group:finance'], quorum: 1 } });
    expect(r.state.usage.toolCalls).toBe(0);
  });

  test('a tool the policy lists but the agent lacks is denied and audited as denied', () => {
    const r = governCall(fresh(), call('ghost', { x: 1 }), ctx(undefined));
    expect(r.plan.kind).toBe('refuse');
    expect(r.decision).toMatchObject({ decision: 'deny', ruleId: 'default:unknown-tool' });
    expect(r.events[1]).toMatchObject({ type: 'policy_decision', data: { decision: 'deny', ruleId: 'default:unknown-tool' } });
    // Nothing is known of an unknown tool's arguments, so none of them is shown.
    expect(r.events[0]?.data.args).toBe('[redacted]');
  });

  test('a call the model activity refused (schema, size) is audited as schema_rejected and refused', () => {
    const r = governCall(fresh(), call('echo', {}, { refused: 'arguments are 1.0 MiB, over the 64 KiB limit' }), ctx(echo));
    expect(r.plan).toEqual({ kind: 'refuse', message: 'invalid arguments for echo, nothing ran: arguments are 1.0 MiB, over the 64 KiB limit' });
    expect(r.events.map((e) => e.type)).toEqual(['call_proposed', 'schema_rejected']);
  });

  test('once the run is ending, every later call of the turn is refused', () => {
    const r = governCall(fresh(), call('echo', { text: 'x' }), ctx(echo, { ending: 'step budget exhausted' }));
    expect(r.plan).toEqual({ kind: 'refuse', message: 'not run: step budget exhausted' });
  });

  test('tool call budget: the run ends with budget_exhausted and the figures', () => {
    const state = { ...fresh(), usage: { ...emptyUsage(), toolCalls: 2 } };
    const r = governCall(state, call('echo', { text: 'x' }), ctx(echo, { policy: policy({ budgets: { maxToolCalls: 2 } }) }));
    expect(r.end).toMatchObject({ status: 'budget_exhausted', budget: { limit: 'maxToolCalls', used: 2, max: 2 } });
    expect(r.events.at(-1)?.type).toBe('budget_exhausted');
  });

  test('per-tool budget and wall time', () => {
    const state = { ...fresh(), usage: { ...emptyUsage(), toolCallsByTool: { echo: 1 } } };
    expect(governCall(state, call('echo', { text: 'x' }), ctx(echo, { policy: policy({ tools: { echo: { maxCalls: 1 }, transfer: {}, ghost: {} } }) })).end?.budget?.limit).toBe('maxCallsPerTool');
    expect(governCall(fresh(), call('echo', { text: 'x' }), ctx(echo, { policy: policy({ budgets: { maxWallTime: '1s' } }), elapsedMs: 1500 })).end?.budget?.limit).toBe('maxWallTime');
  });

  test('loop breaker: fail_run ends the run, stop_tool stops the tool, pause asks for a person', () => {
    const loop = (action: 'fail_run' | 'stop_tool' | 'pause') => policy({ loop: { maxRepeats: 2, window: 5, action } });
    const twice = (p: CompiledPolicy) => {
      const first = governCall(fresh(), call('echo', { text: 'x' }), ctx(echo, { policy: p }));
      return governCall(first.state, call('echo', { text: 'x' }), ctx(echo, { policy: p }));
    };
    expect(twice(loop('fail_run')).end).toMatchObject({ status: 'budget_exhausted' });
    const stopped = twice(loop('stop_tool'));
    expect(stopped.state.stoppedTools).toEqual(['echo']);
    expect(governCall(stopped.state, call('echo', { text: 'y' }), ctx(echo, { policy: loop('stop_tool') })).decision?.ruleId).toBe('default:tool-stopped');
    const paused = twice(loop('pause'));
    expect(paused.pause).toContain('loop detected');
    expect(paused.plan).toEqual({ kind: 'run' });
  });

  test('loop breaker: a model repeating one invalid call is a loop too (runs under loopSeesRejected); before, such calls went unseen', () => {
    const loop = (action: 'fail_run' | 'stop_tool' | 'pause') => policy({ loop: { maxRepeats: 3, window: 5, action } });
    const invalid = call('transfer', { amount: 'lots' }, { refused: 'amount: expected number, received string' });
    const thrice = (p: CompiledPolicy, seesRejected: boolean) => {
      let state = fresh();
      let last = governCall(state, invalid, ctx(transfer, { policy: p, loopSeesRejected: seesRejected }));
      for (let i = 0; i < 2; i++) {
        state = last.state;
        last = governCall(state, invalid, ctx(transfer, { policy: p, loopSeesRejected: seesRejected }));
      }
      return last;
    };
    const ended = thrice(loop('fail_run'), true);
    expect(ended.events.map((e) => e.type)).toEqual(['call_proposed', 'schema_rejected', 'loop_detected']);
    expect(ended.end).toMatchObject({ status: 'budget_exhausted', reason: expect.stringContaining('loop detected: transfer called with the same arguments 3 times') });
    expect(ended.plan).toEqual({ kind: 'refuse', message: expect.stringMatching(/^invalid arguments for transfer, nothing ran: amount: expected number.*; not run: loop detected/) });
    expect(ended.state.usage.toolCalls).toBe(0);
    expect(thrice(loop('stop_tool'), true).state.stoppedTools).toEqual(['transfer']);
    const paused = thrice(loop('pause'), true);
    expect(paused.pause).toContain('loop detected');
    expect(paused.plan.kind).toBe('refuse');
    // Runs recorded before decide as they did: the rejected calls pass the loop breaker unseen.
    const unseen = thrice(loop('fail_run'), false);
    expect(unseen.end).toBeUndefined();
    expect(unseen.state.loop).toEqual(emptyLoopState());
  });

  test('the input state is never mutated', () => {
    const state = fresh();
    governCall(state, call('echo', { text: 'x' }), ctx(echo));
    expect(state).toEqual(fresh());
  });
});

describe('admitApproved', () => {
  test('counts the approved call, or ends the run when budgets ran out while people decided', () => {
    const ok = admitApproved(fresh(), call('transfer', { amount: 500 }), policy(), 0);
    expect(ok).toMatchObject({ ok: true, state: { usage: { toolCalls: 1 } } });
    const spent = { ...fresh(), usage: { ...emptyUsage(), toolCalls: 1 } };
    const late = admitApproved(spent, call('transfer', { amount: 500 }), policy({ budgets: { maxToolCalls: 1 } }), 0);
    expect(late).toMatchObject({ ok: false, exceeded: { limit: 'maxToolCalls' }, event: { type: 'budget_exhausted' } });
  });
});
