import type { temporal } from '@temporalio/proto';
import { verifyAuditChain } from '../src/governance';
import { createTestBed, eventually, financeApprovalPolicy, testPolicy, type TestBed } from './helpers';
import { effects } from './fixtures/test-agents';

let bed: TestBed;
beforeAll(async () => {
  bed = await createTestBed();
});
afterAll(async () => {
  await bed?.close();
});
beforeEach(() => effects.reset());

const toolResults = async (runId: string) =>
  ((await bed.store.readAudit(runId)).filter((e) => e.type === 'policy_decision' || e.type === 'schema_rejected' || e.type === 'tool_succeeded' || e.type === 'tool_failed'));

/** The search attributes each upsert of a history sets, by key, in order. */
const upsertedKeys = (events: readonly temporal.api.history.v1.IHistoryEvent[]) =>
  events.flatMap((e) => {
    const fields = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
    return fields ? [Object.keys(fields).sort()] : [];
  });

describe('governed agent run', () => {
  test('an allowed call runs as an activity and the run completes with the model text', async () => {
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'say hi',
      requester: 'carol',
      policy: testPolicy(),
      script: [{ toolCalls: [{ name: 'echo', args: { text: 'hi' } }], usage: { inputTokens: 100, outputTokens: 10 } }, { text: 'said hi' }],
    });
    const outcome = await bed.client.result(runId);
    expect(outcome).toMatchObject({ status: 'completed', text: 'said hi', steps: 2, toolCalls: 1 });
    expect(outcome.usage.inputTokens).toBeGreaterThanOrEqual(100);
    expect(outcome.policyVersion).toMatch(/^pv_/);
    expect(effects.count('echo')).toBe(1);
    // The tool ran as an activity named after it.
    const history = await bed.client.handle(runId).fetchHistory();
    const types = (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    expect(types).toEqual(['prepareAndCallModel', 'echo', 'callModel']);
    // The model saw the tool result: conversation is goal, answer, result, answer.
    const messages = (await bed.store.readMessages(runId, 4)) as { role: string }[];
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
  });

  test('a run emits few commands: one patch marker, one upsert of agent, requester and status, its last store write a local activity', async () => {
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'say hi',
      requester: 'carol',
      policy: testPolicy(),
      script: [{ toolCalls: [{ name: 'echo', args: { text: 'hi' } }] }, { text: 'said hi' }],
    });
    const outcome = await bed.client.result(runId);
    expect(outcome.status).toBe('completed');
    const events = (await bed.client.handle(runId).fetchHistory()).events ?? [];
    const markers = events.flatMap((e) => (e.markerRecordedEventAttributes ? [e.markerRecordedEventAttributes.markerName] : []));
    // The patch marker (the patches before it implied), then the local activity that wrote the run's end.
    expect(markers).toEqual(['core_patch', 'core_local_activity']);
    const upserts = upsertedKeys(events);
    // TemporalChangeVersion (the patch), then the run's identity with its first status in one upsert.
    expect(upserts.slice(0, 2)).toEqual([['TemporalChangeVersion'], ['WardenAgent', 'WardenRequester', 'WardenStatus']]);
    // The local activity's write is in the store: the whole trail, run_finished last, chained to the head the run reported.
    const trail = await bed.store.readAudit(runId);
    expect(trail[trail.length - 1]).toMatchObject({ type: 'run_finished', seq: outcome.audit.seq, hash: outcome.audit.hash });
    expect(verifyAuditChain(trail).ok).toBe(true);
  });

  test('a run whose first call waits for approval lists its agent and requester with its first status: awaiting_approval', async () => {
    const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'pay', requester: 'carol', policy: financeApprovalPolicy(), script: [{ toolCalls: [{ name: 'transfer', args: { amount: 250, to: 'x' } }] }, { text: 'done' }] });
    await eventually(async () => (await bed.client.queryPendingApprovals(runId))[0], 20_000, 'a pending approval');
    const listed = await eventually(
      async () => (await bed.client.client.workflow.count(`WorkflowId = '${runId}' AND WardenAgent = 'test-agent' AND WardenRequester = 'carol' AND WardenStatus = 'awaiting_approval'`)).count || undefined,
      20_000,
      'the run listed by agent, requester and status',
    );
    expect(listed).toBe(1);
    const events = (await bed.client.handle(runId).fetchHistory()).events ?? [];
    const upserts = upsertedKeys(events);
    // No `running` in between: the patch's TemporalChangeVersion, then identity and status in one upsert.
    expect(upserts).toEqual([['TemporalChangeVersion'], ['WardenAgent', 'WardenRequester', 'WardenStatus']]);
    await bed.client.client.workflow.getHandle(runId).terminate('test done');
  });

  test('a denied call runs nothing and the model is told which rule denied it', async () => {
    const policy = testPolicy({
      rules: [
        { id: 'no-big-transfers', tools: ['transfer'], when: 'args.amount > 100', decision: 'deny', reason: 'transfers over 100 are out of scope' },
        { id: 'allow-rest', decision: 'allow' },
      ],
    });
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'move money',
      requester: 'carol',
      policy,
      script: [{ toolCalls: [{ name: 'transfer', args: { amount: 500, to: 'x' } }] }, { text: 'could not' }],
    });
    const outcome = await bed.client.result(runId);
    expect(outcome.status).toBe('completed');
    expect(effects.count('transfer')).toBe(0);
    const messages = (await bed.store.readMessages(runId, 3)) as { content: { output: { value: string } }[] }[];
    expect(messages[2]?.content[0]?.output.value).toContain('rule no-big-transfers');
    const decisions = await toolResults(runId);
    expect(decisions[0]).toMatchObject({ type: 'policy_decision', data: { decision: 'deny', ruleId: 'no-big-transfers', policyVersion: outcome.policyVersion } });
  });

  test('an unknown tool is denied by default and nothing runs', async () => {
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'x',
      requester: 'carol',
      policy: testPolicy(),
      script: [{ toolCalls: [{ name: 'delete_database', args: {} }] }, { text: 'ok' }],
    });
    await bed.client.result(runId);
    const decisions = await toolResults(runId);
    expect(decisions[0]?.data).toMatchObject({ decision: 'deny', ruleId: 'default:unknown-tool' });
    expect(effects.log).toHaveLength(0);
  });

  test('a tool the agent has but the policy does not list is denied', async () => {
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'x',
      requester: 'carol',
      policy: testPolicy({ tools: { echo: {} } }),
      script: [{ toolCalls: [{ name: 'transfer', args: { amount: 1, to: 'x' } }] }, { text: 'ok' }],
    });
    await bed.client.result(runId);
    expect((await toolResults(runId))[0]?.data).toMatchObject({ decision: 'deny', ruleId: 'default:unknown-tool' });
    expect(effects.count('transfer')).toBe(0);
  });

  test('invalid arguments are refused before policy, naming the field, and nothing runs', async () => {
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'x',
      requester: 'carol',
      policy: testPolicy(),
      script: [{ toolCalls: [{ name: 'transfer', args: { amount: -5 } }] }, { text: 'ok' }],
    });
    await bed.client.result(runId);
    const [rejected] = await toolResults(runId);
    expect(rejected?.type).toBe('schema_rejected');
    expect(JSON.stringify(rejected?.data)).toContain('amount');
    expect(JSON.stringify(rejected?.data)).toContain('to');
    const messages = (await bed.store.readMessages(runId, 3)) as { content: { output: { value: string } }[] }[];
    expect(messages[2]?.content[0]?.output.value).toMatch(/invalid arguments for transfer, nothing ran: .*amount/);
    expect(effects.count('transfer')).toBe(0);
  });

  test('a failing tool is retried by its retry policy, then succeeds', async () => {
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'x',
      requester: 'carol',
      policy: testPolicy(),
      script: [{ toolCalls: [{ name: 'flaky', args: { failTimes: 2 } }] }, { text: 'ok' }],
    });
    const outcome = await bed.client.result(runId);
    expect(outcome.status).toBe('completed');
    expect(effects.count('flaky')).toBe(3);
    const succeeded = (await bed.store.readAudit(runId)).find((e) => e.type === 'tool_succeeded');
    expect(succeeded?.data).toMatchObject({ tool: 'flaky', attempts: 3 });
  });

  test('a policy retry override caps the attempts; the model gets the error and the run goes on', async () => {
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'x',
      requester: 'carol',
      policy: testPolicy({ tools: { flaky: { retry: { maximumAttempts: 2, initialInterval: '100ms' } }, echo: {} } }),
      script: [{ toolCalls: [{ name: 'flaky', args: { failTimes: 5 } }] }, { toolCalls: [{ name: 'echo', args: { text: 'after' } }] }, { text: 'done' }],
    });
    const outcome = await bed.client.result(runId);
    expect(outcome.status).toBe('completed');
    expect(effects.count('flaky')).toBe(2);
    expect(effects.count('echo')).toBe(1);
    const failed = (await bed.store.readAudit(runId)).find((e) => e.type === 'tool_failed');
    expect(failed?.data).toMatchObject({ tool: 'flaky', error: 'transient failure 2' });
  });

  test('a non-retryable tool error is not retried', async () => {
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'x',
      requester: 'carol',
      policy: testPolicy(),
      script: [{ toolCalls: [{ name: 'broken', args: {} }] }, { text: 'ok' }],
    });
    await bed.client.result(runId);
    expect(effects.count('broken')).toBe(1);
    const messages = (await bed.store.readMessages(runId, 3)) as { content: { output: { value: string } }[] }[];
    expect(messages[2]?.content[0]?.output.value).toContain('the downstream system refused the request');
  });

  test('onToolFailure: fail_run ends the run as failed', async () => {
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'x',
      requester: 'carol',
      policy: testPolicy({ onToolFailure: 'fail_run' }),
      script: [{ toolCalls: [{ name: 'broken', args: {} }] }, { text: 'never' }],
    });
    const outcome = await bed.client.result(runId);
    expect(outcome).toMatchObject({ status: 'failed', steps: 1 });
    expect(outcome.reason).toContain('broken failed');
  });

  test('parallel calls are governed one by one: a denied sibling does not block the allowed ones', async () => {
    const policy = testPolicy({
      rules: [
        { id: 'no-transfers', tools: ['transfer'], decision: 'deny', reason: 'no' },
        { id: 'allow-rest', decision: 'allow' },
      ],
    });
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'x',
      requester: 'carol',
      policy,
      script: [
        { toolCalls: [{ name: 'echo', args: { text: 'a' } }, { name: 'transfer', args: { amount: 1, to: 'x' } }, { name: 'echo', args: { text: 'b' } }] },
        { text: 'done' },
      ],
    });
    const outcome = await bed.client.result(runId);
    expect(outcome).toMatchObject({ status: 'completed', toolCalls: 2 });
    expect(effects.count('echo')).toBe(2);
    expect(effects.count('transfer')).toBe(0);
    const messages = (await bed.store.readMessages(runId, 5)) as { role: string }[];
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'tool', 'tool']);
  });
});

describe('budgets', () => {
  const loopScript = (n: number) => Array.from({ length: n }, (_, i) => ({ toolCalls: [{ name: 'echo', args: { text: `t${i}` } }], usage: { inputTokens: 1000, outputTokens: 100 } }));

  test.each([
    ['maxSteps', { maxSteps: 3 }, 'step budget exhausted: used 3 of 3'],
    ['maxToolCalls', { maxToolCalls: 2 }, 'tool call budget exhausted: used 2 of 2'],
    ['maxInputTokens', { maxInputTokens: 2500 }, 'input token budget exhausted: used 3000 of 2500'],
    ['maxOutputTokens', { maxOutputTokens: 150 }, 'output token budget exhausted: used 200 of 150'],
    ['maxCostUsd', { maxCostUsd: 0.02 }, 'cost budget exhausted'],
  ])('%s ends the run with budget_exhausted and the figures', async (limit, budgets, message) => {
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'loop',
      requester: 'carol',
      policy: testPolicy({ budgets, pricing: { scripted: { inputPerMTok: 5, outputPerMTok: 15 } } }),
      script: loopScript(10),
    });
    const outcome = await bed.client.result(runId);
    expect(outcome.status).toBe('budget_exhausted');
    expect(outcome.budget?.limit).toBe(limit);
    expect(outcome.reason).toContain(message);
    if (limit === 'maxCostUsd') expect(outcome.usage.costUsd).toBeGreaterThanOrEqual(0.02);
  });

  test('per-tool maxCalls stops the run at that tool', async () => {
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'loop',
      requester: 'carol',
      policy: testPolicy({ tools: { echo: { maxCalls: 2 } } }),
      script: loopScript(5),
    });
    const outcome = await bed.client.result(runId);
    expect(outcome).toMatchObject({ status: 'budget_exhausted', toolCalls: 2, budget: { limit: 'maxCallsPerTool', tool: 'echo' } });
    expect(effects.count('echo')).toBe(2);
  });

  test('maxWallTime stops a run that is out of time', async () => {
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'slow',
      requester: 'carol',
      policy: testPolicy({ budgets: { maxWallTime: '1s' }, tools: { flaky: {} } }),
      // A retried tool takes longer than the budget; the next model call is refused.
      script: [{ toolCalls: [{ name: 'flaky', args: { failTimes: 3 } }] }, { text: 'never' }],
    });
    const outcome = await bed.client.result(runId);
    expect(outcome).toMatchObject({ status: 'budget_exhausted', budget: { limit: 'maxWallTime' } });
  });

  test('a cost budget without a price for the model is refused with a clear reason', async () => {
    const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'x', requester: 'carol', policy: testPolicy({ budgets: { maxCostUsd: 1 } }), script: [{ text: 'hi' }] });
    const outcome = await bed.client.result(runId);
    expect(outcome).toMatchObject({ status: 'failed' });
    expect(outcome.reason).toContain('pricing has no entry for model "scripted"');
    // Refused before any model call: the preparation did not make the first one.
    expect(outcome.steps).toBe(0);
    expect((await bed.client.auditTrail(runId, bed.store)).map((e) => e.type)).toEqual(['run_started', 'run_finished']);
    expect(await bed.store.readMessages(runId, 1)).toHaveLength(1);
    await expect(bed.store.readMessages(runId, 2)).rejects.toThrow('message 1 is missing');
  });

  test('the loop breaker fails the run on identical calls', async () => {
    const same = Array.from({ length: 6 }, () => ({ toolCalls: [{ name: 'echo', args: { text: 'same' } }] }));
    const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'x', requester: 'carol', policy: testPolicy({ loop: { maxRepeats: 3, window: 5, action: 'fail_run' } }), script: same });
    const outcome = await bed.client.result(runId);
    expect(outcome.status).toBe('budget_exhausted');
    expect(outcome.reason).toContain('loop detected: echo called with the same arguments 3 times');
    expect(effects.count('echo')).toBe(2);
  });

  test('the loop breaker fails the run on one invalid call repeated (each refused by the schema, none run)', async () => {
    const same = Array.from({ length: 6 }, () => ({ toolCalls: [{ name: 'echo', args: { text: '' } }] }));
    const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'x', requester: 'carol', policy: testPolicy({ loop: { maxRepeats: 3, window: 5, action: 'fail_run' } }), script: same });
    const outcome = await bed.client.result(runId);
    expect(outcome.status).toBe('budget_exhausted');
    expect(outcome.reason).toContain('loop detected: echo called with the same arguments 3 times');
    expect(outcome.steps).toBe(3);
    expect(effects.count('echo')).toBe(0);
    const types = (await bed.store.readAudit(runId)).map((e) => e.type);
    expect(types.filter((t) => t === 'schema_rejected')).toHaveLength(3);
    expect(types).toContain('loop_detected');
  });

  test('the loop breaker can stop just that tool while the run goes on', async () => {
    const same = Array.from({ length: 4 }, () => ({ toolCalls: [{ name: 'echo', args: { text: 'same' } }] }));
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'x',
      requester: 'carol',
      policy: testPolicy({ loop: { maxRepeats: 2, window: 5, action: 'stop_tool' } }),
      script: [...same, { toolCalls: [{ name: 'flaky', args: { failTimes: 0 } }] }, { text: 'done' }],
    });
    const outcome = await bed.client.result(runId);
    expect(outcome.status).toBe('completed');
    expect(effects.count('echo')).toBe(1);
    expect(effects.count('flaky')).toBe(1);
    const audit = await bed.store.readAudit(runId);
    expect(audit.filter((e) => e.type === 'policy_decision' && e.data.ruleId === 'default:tool-stopped')).toHaveLength(2);
  });
});

describe('run state', () => {
  test('continue-as-new carries budgets, audit chain and conversation without loss', async () => {
    const script = [
      ...Array.from({ length: 5 }, (_, i) => ({ toolCalls: [{ name: 'echo', args: { text: `m${i}` } }], usage: { inputTokens: 10, outputTokens: 1 } })),
      { text: 'finished', usage: { inputTokens: 10, outputTokens: 1 } },
    ];
    // A cost budget: each execution's model calls are made on the spend the one before sealed ($0.66 of $1).
    const policy = testPolicy({ budgets: { maxSteps: 6, maxCostUsd: 1 }, pricing: { scripted: { inputPerMTok: 10_000, outputPerMTok: 10_000 } } });
    const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'long', requester: 'carol', policy, script, continueAsNewAfterSteps: 2 });
    const outcome = await bed.client.result(runId);
    expect(outcome).toMatchObject({ status: 'completed', text: 'finished', steps: 6, toolCalls: 5 });
    expect(outcome.usage).toMatchObject({ inputTokens: 60, outputTokens: 6 });
    expect(outcome.usage.costUsd).toBeCloseTo(0.66, 9);
    // Three executions: the chain of run ids shows continue-as-new happened.
    const desc = await bed.client.handle(runId).describe();
    expect(desc.runId).not.toBe(desc.raw.workflowExecutionInfo?.firstRunId);
    const trail = await bed.client.auditTrail(runId, bed.store);
    expect(verifyAuditChain(trail)).toMatchObject({ ok: true });
    expect(trail.filter((e) => e.type === 'run_continued').length).toBeGreaterThanOrEqual(2);
    const messages = await bed.store.readMessages(runId, 12);
    expect(messages).toHaveLength(12);
  });

  test('status query shows phase, budgets used and left, and the last decision', async () => {
    const runId = await bed.client.startRun({
      agent: 'test-agent',
      goal: 'x',
      requester: 'carol',
      policy: testPolicy({ budgets: { maxSteps: 5 } }),
      script: [{ toolCalls: [{ name: 'echo', args: { text: 'a' } }] }, { text: 'done' }],
    });
    await bed.client.result(runId);
    const status = await bed.client.status(runId);
    expect(status).toMatchObject({ phase: 'finished', step: 2, budget: { left: { steps: 3 } }, lastDecision: { tool: 'echo', decision: 'allow' }, outcome: { status: 'completed' } });
  });

  test('an unknown agent fails the run with a clear error', async () => {
    const runId = await bed.client.startRun({ agent: 'nobody', goal: 'x', requester: 'carol', script: [] });
    const outcome = await bed.client.result(runId).catch((e: unknown) => e);
    expect(outcome).toMatchObject({ status: 'failed' });
    expect((outcome as { reason: string }).reason).toContain('unknown agent "nobody"');
  });
});
