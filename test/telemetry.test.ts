import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { DefaultLogger } from '@temporalio/worker';
import { bundleWardenWorkflows } from '../src/worker/bundle';
import pino from 'pino';
import { DecisionSigner } from '../src/approvals/signing-keys';
import { generateSigningKey } from '../src/governance';
import { createTelemetry, telemetryFromEnv, TelemetryError, traceContextMixin, WORKFLOW_TELEMETRY_MODULES, type WardenTelemetry } from '../src/telemetry';
import { effects } from './fixtures/test-agents';
import { createTestBed, eventually, settings, testPayloadKeysFile, testPolicy, type TestBed } from './helpers';
import { runCli } from './fixtures/run-cli';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedMetric, type ReceivedSpan } from './otlp-receiver';

const key = generateSigningKey();
const signer = new DecisionSigner({ keyId: 'test-web', privateKey: key.privateKey, publicKey: key.publicKey });
/** The CLI's key, as `warden approve --key` reads it from a file. */
const cliKey = generateSigningKey();
const keyring = {
  'test-web': { publicKey: key.publicKey, channel: 'web', people: '*' as const, revoked: false },
  'test-cli': { publicKey: cliKey.publicKey, channel: 'cli', people: '*' as const, revoked: false },
};

/** The value of the transfer's `pin`, a field its schema marks sensitive: it must not leave in any exported byte. */
const PIN = 'pin-5581-do-not-export';

const policy = testPolicy({
  rules: [
    { id: 'transfers-need-finance', tools: ['transfer'], decision: 'require_approval', reason: 'money leaves the company', approval: { approvers: ['group:finance'], timeout: '10m' } },
    { id: 'no-forbidden-echo', tools: ['echo'], when: 'args.text == "forbidden"', decision: 'deny', reason: 'not that word' },
    { id: 'allow-rest', decision: 'allow' },
  ],
  pricing: { scripted: { inputPerMTok: 3, outputPerMTok: 15 } },
});

let receiver: OtlpReceiver;
let telemetry: WardenTelemetry;
let bed: TestBed;
const logLines: Record<string, unknown>[] = [];

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  // Metrics leave on forceFlush in this test; the interval only has to be longer than the test.
  telemetry = createTelemetry({ endpoint: receiver.url, serviceName: 'warden-test', metricIntervalMs: 10 * 60_000 });
  const logs = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  // A prebuilt bundle, as `warden worker --workflow-bundle` takes: built with the telemetry modules.
  const { code } = await bundleWardenWorkflows({ workflowInterceptorModules: [...WORKFLOW_TELEMETRY_MODULES], logger: new DefaultLogger('WARN') });
  bed = await createTestBed({ keyring, telemetry, workflowBundle: { code }, logger: pino({ level: 'info', mixin: traceContextMixin }, logs) });
}, 180_000);

afterAll(async () => {
  await bed?.close();
  await telemetry?.shutdown();
  await receiver?.close();
});

beforeEach(() => effects.reset());

const attr = (span: ReceivedSpan | undefined, name: string): unknown => span?.attributes[name];

/** Spans of one trace, and a way to walk up from a span. */
function traceOf(traceId: string) {
  const spans = receiver.spans.filter((s) => s.traceId === traceId);
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const ancestors = (span: ReceivedSpan): string[] => {
    const names: string[] = [];
    for (let p = byId.get(span.parentSpanId); p; p = byId.get(p.parentSpanId)) names.push(p.name);
    return names;
  };
  return { spans, byId, ancestors, named: (name: string) => spans.filter((s) => s.name === name) };
}

/** The newest export of a metric (cumulative: it holds everything so far). */
function latest(name: string): ReceivedMetric | undefined {
  return [...receiver.metrics].reverse().find((m) => m.name === name);
}

test('a governed run with a signed approval exports its span tree, governance attributes and metrics over OTLP, and no sensitive value', async () => {
  const runId = await bed.client.startRun({
    agent: 'test-agent',
    goal: 'pay the supplier',
    requester: 'carol',
    policy,
    script: [
      { toolCalls: [{ name: 'transfer', id: 'call-transfer', args: { amount: 50, to: 'acct-9', pin: PIN } }], usage: { inputTokens: 900, outputTokens: 40 } },
      { toolCalls: [{ name: 'echo', id: 'call-echo', args: { text: 'paid' } }, { name: 'echo', id: 'call-denied', args: { text: 'forbidden' } }], usage: { inputTokens: 1200, outputTokens: 30 } },
      { text: 'done', usage: { inputTokens: 1300, outputTokens: 10 } },
    ],
  });
  const [approval] = await eventually(async () => {
    const pending = await bed.client.pendingApprovals(runId);
    return pending.length > 0 ? pending : undefined;
  }, 30_000, 'a pending approval');
  if (!approval) throw new Error('no approval');
  const signature = signer.sign({ approvalId: approval.approvalId, runId, decision: 'approve', approver: 'bob', groups: ['finance'], channel: 'web' });
  expect(await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'bob', signature })).toMatchObject({ status: 'accepted', decided: true });
  expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 2 });
  expect(effects.count('transfer')).toBe(1);

  // Workflow spans leave through the worker's sink once the run's last task completes: flush until they are in.
  const invoke = await eventually(async () => {
    await telemetry.forceFlush();
    return receiver.spans.find((s) => s.name === 'invoke_agent test-agent' && s.attributes['gen_ai.conversation.id'] === runId);
  }, 30_000, 'the invoke_agent span');
  expect(receiver.errors).toEqual([]);
  const t = traceOf(invoke.traceId);

  // client → workflow → activities, one trace.
  expect(t.ancestors(invoke)).toEqual(['RunWorkflow:agentRun', 'StartWorkflow:agentRun']);
  expect(invoke.attributes).toMatchObject({
    'gen_ai.operation.name': 'invoke_agent',
    'gen_ai.agent.name': 'test-agent',
    'warden.run.id': runId,
    'warden.run.outcome': 'completed',
    'gen_ai.usage.input_tokens': 3400,
    'gen_ai.usage.output_tokens': 80,
    'warden.run.tool_calls': 2,
  });
  expect(invoke.resource['service.name']).toBe('warden-test');
  // Workflow spans name their run, not its memo or search attributes (Temporal's exporter would copy them all).
  expect(invoke.attributes).toMatchObject({ workflowId: runId, workflowType: 'agentRun' });
  expect(Object.keys(invoke.attributes).filter((k) => ['memo', 'searchAttributes', 'typedSearchAttributes'].includes(k))).toEqual([]);
  expect(attr(invoke, 'warden.cost.usd')).toBeCloseTo((3400 * 3 + 80 * 15) / 1e6, 9);
  // Decisions are recorded where they are made, in the workflow: the denied call, which runs nothing, is there too.
  const decisions = invoke.events.filter((e) => e.name === 'warden.policy_decision').map((e) => e.attributes);
  expect(decisions).toEqual([
    { 'gen_ai.tool.name': 'transfer', 'gen_ai.tool.call.id': 'call-transfer', 'warden.policy.decision': 'require_approval', 'warden.policy.rule_id': 'transfers-need-finance' },
    { 'gen_ai.tool.name': 'echo', 'gen_ai.tool.call.id': 'call-echo', 'warden.policy.decision': 'allow', 'warden.policy.rule_id': 'allow-rest' },
    { 'gen_ai.tool.name': 'echo', 'gen_ai.tool.call.id': 'call-denied', 'warden.policy.decision': 'deny', 'warden.policy.rule_id': 'no-forbidden-echo' },
  ]);

  const chats = t.named('chat scripted');
  expect(chats).toHaveLength(3);
  // The first model call is made by the activity that prepares the run.
  for (const chat of chats) {
    const activity = attr(chat, 'warden.step') === 1 ? 'prepareAndCallModel' : 'callModel';
    expect(t.ancestors(chat).slice(0, 3)).toEqual([`RunActivity:${activity}`, `StartActivity:${activity}`, 'invoke_agent test-agent']);
  }
  const first = chats.find((c) => attr(c, 'warden.step') === 1);
  expect(first?.attributes).toMatchObject({ 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'scripted', 'gen_ai.request.model': 'scripted', 'gen_ai.usage.input_tokens': 900, 'gen_ai.usage.output_tokens': 40, 'warden.model.proposed_calls': 1 });
  expect(attr(first, 'warden.cost.usd')).toBeCloseTo((900 * 3 + 40 * 15) / 1e6, 9);
  expect(first?.kind).toBe(3); // SPAN_KIND_CLIENT

  const [transfer, ...moreTransfers] = t.named('execute_tool transfer');
  expect(moreTransfers).toEqual([]);
  expect(t.ancestors(transfer as ReceivedSpan).slice(0, 3)).toEqual(['RunActivity:transfer', 'StartActivity:transfer', 'invoke_agent test-agent']);
  expect(transfer?.attributes).toMatchObject({
    'gen_ai.operation.name': 'execute_tool',
    'gen_ai.tool.name': 'transfer',
    'gen_ai.tool.call.id': 'call-transfer',
    'warden.policy.decision': 'require_approval',
    'warden.policy.rule_id': 'transfers-need-finance',
    'warden.approval.id': approval.approvalId,
    'warden.approval.approvers': ['bob'],
    'warden.approval.decided_by': 'bob',
    'warden.tool.attempt': 1,
  });
  expect(attr(transfer, 'warden.approval.wait_ms')).toBeGreaterThan(0);
  const echoes = t.named('execute_tool echo');
  expect(echoes.map((e) => e.attributes)).toEqual([expect.objectContaining({ 'gen_ai.tool.call.id': 'call-echo', 'warden.policy.decision': 'allow', 'warden.policy.rule_id': 'allow-rest' })]);
  // The signed approval arrived as an Update: its own trace from the client's call into the run's handler.
  const update = receiver.spans.find((s) => s.name === 'HandleUpdate:approve' && s.events.some((e) => e.attributes['warden.approval.id'] === approval.approvalId));
  expect(update?.events.find((e) => e.name === 'warden.approval')?.attributes).toMatchObject({ 'warden.approval.outcome': 'approved', 'warden.approval.decided_by': 'bob', 'gen_ai.tool.name': 'transfer' });
  expect(receiver.spans.find((s) => s.spanId === update?.parentSpanId)?.name).toBe('StartWorkflowUpdate:approve');
  // The two traces lead to each other: the decision's span links to the run's, the run's to the decision's.
  expect(update?.links).toEqual([{ traceId: invoke.traceId, spanId: invoke.spanId, attributes: { 'warden.run.id': runId, 'warden.approval.id': approval.approvalId } }]);
  expect(invoke.links).toEqual([{ traceId: update?.traceId, spanId: update?.spanId, attributes: { 'warden.approval.id': approval.approvalId } }]);

  // Logs carry the trace: the worker's warning while it prepares the run names its activity span.
  const prepare = t.named('RunActivity:prepareAndCallModel')[0];
  const line = logLines.find((l) => l.runId === runId && String(l.msg).includes('policy of its start input'));
  expect(line).toMatchObject({ trace_id: invoke.traceId, span_id: prepare?.spanId });

  // Metrics: tokens, cost, decisions by outcome, approval wait.
  const metrics = await eventually(async () => {
    await telemetry.forceFlush();
    const m = latest('warden.policy.decisions');
    return m && m.points.some((p) => p.attributes['warden.policy.decision'] === 'deny') ? m : undefined;
  }, 20_000, 'the decision metrics');
  const decided = (decision: string) => metrics.points.filter((p) => p.attributes['warden.policy.decision'] === decision && p.attributes['gen_ai.agent.name'] === 'test-agent').reduce((n, p) => n + (p.value ?? 0), 0);
  expect([decided('allow'), decided('deny'), decided('require_approval')]).toEqual([1, 1, 1]);
  const tokens = latest('gen_ai.client.token.usage');
  expect(tokens?.unit).toBe('{token}');
  const input = tokens?.points.find((p) => p.attributes['gen_ai.token.type'] === 'input' && p.attributes['gen_ai.request.model'] === 'scripted');
  expect(input).toMatchObject({ count: 3, sum: 3400 });
  const cost = latest('warden.gen_ai.cost')?.points.find((p) => p.attributes['gen_ai.agent.name'] === 'test-agent');
  expect(cost?.value).toBeCloseTo((3400 * 3 + 80 * 15) / 1e6, 9);
  const waits = latest('warden.approval.wait')?.points.find((p) => p.attributes['warden.approval.outcome'] === 'approved');
  expect(waits?.count).toBe(1);
  expect(waits?.sum).toBeGreaterThan(0);

  // Nothing sensitive in any exported byte; the search does find what should be there.
  const exported = Buffer.concat(receiver.bodies);
  expect(exported.includes('transfers-need-finance')).toBe(true);
  expect(exported.includes(PIN)).toBe(false);
}, 120_000);

test('a budget exhaustion is counted and shows on the run span', async () => {
  const runId = await bed.client.startRun({
    agent: 'test-agent',
    goal: 'echo twice',
    requester: 'carol',
    policy: testPolicy({ budgets: { maxSteps: 1 } }),
    script: [{ toolCalls: [{ name: 'echo', args: { text: 'one' } }] }, { toolCalls: [{ name: 'echo', args: { text: 'two' } }] }],
  });
  expect(await bed.client.result(runId)).toMatchObject({ status: 'budget_exhausted' });
  const invoke = await eventually(async () => {
    await telemetry.forceFlush();
    return receiver.spans.find((s) => s.name === 'invoke_agent test-agent' && s.attributes['gen_ai.conversation.id'] === runId);
  }, 30_000, 'the invoke_agent span');
  expect(invoke.attributes['warden.run.outcome']).toBe('budget_exhausted');
  expect(invoke.events.find((e) => e.name === 'warden.budget_exhausted')?.attributes).toEqual({ 'warden.budget.limit': 'maxSteps' });
  const exhausted = await eventually(async () => {
    await telemetry.forceFlush();
    return latest('warden.budget.exhaustions')?.points.find((p) => p.attributes['warden.budget.limit'] === 'maxSteps');
  }, 20_000, 'the budget metric');
  expect(exhausted.value).toBe(1);
}, 60_000);

test('a worker that bundles its own workflows adds the telemetry interceptors itself', async () => {
  const own = await createTestBed({ telemetry, workflowBundle: null });
  try {
    const runId = await own.client.startRun({ agent: 'test-agent', goal: 'echo once', requester: 'carol', policy: testPolicy(), script: [{ toolCalls: [{ name: 'echo', args: { text: 'hi' } }] }, { text: 'done' }] });
    const outcome = await own.client.result(runId);
    expect(outcome.reason).toBe('the agent finished');
    expect(outcome).toMatchObject({ status: 'completed' });
    const invoke = await eventually(async () => {
      await telemetry.forceFlush();
      return receiver.spans.find((s) => s.name === 'invoke_agent test-agent' && s.attributes['gen_ai.conversation.id'] === runId);
    }, 30_000, 'the invoke_agent span');
    const t = traceOf(invoke.traceId);
    expect(t.ancestors(invoke)).toEqual(['RunWorkflow:agentRun', 'StartWorkflow:agentRun']);
    expect(t.ancestors(t.named('execute_tool echo')[0] as ReceivedSpan)).toEqual(['RunActivity:echo', 'StartActivity:echo', 'invoke_agent test-agent', 'RunWorkflow:agentRun', 'StartWorkflow:agentRun']);
  } finally {
    await own.close();
  }
}, 180_000);

test('the CLI exports only when OTEL_EXPORTER_OTLP_ENDPOINT is set, and refuses one that is no URL', async () => {
  expect(telemetryFromEnv({})).toBeUndefined();
  expect(telemetryFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' })).toBeUndefined();
  expect(() => telemetryFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(TelemetryError);
  expect(() => telemetryFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT must be an http\(s\) URL/);
  expect(() => createTelemetry({})).toThrow(/needs an OTLP endpoint/);
  const fromEnv = telemetryFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: 'warden-env-test' });
  expect(fromEnv?.resource.attributes['service.name']).toBe('warden-env-test');
  await fromEnv?.shutdown();
});

test('span ids are unique across traces: a query span never takes an id the run drew, before or after a replay', async () => {
  const runId = await bed.client.startRun({
    agent: 'test-agent',
    goal: 'pay twice',
    requester: 'carol',
    policy,
    script: [{ toolCalls: [{ name: 'transfer', args: { amount: 5, to: 'acct-1' } }] }, { toolCalls: [{ name: 'echo', args: { text: 'a' } }] }, { toolCalls: [{ name: 'echo', args: { text: 'b' } }] }, { text: 'done' }],
  });
  const approval = await eventually(async () => (await bed.client.pendingApprovals(runId))[0], 30_000, 'a pending approval');
  // Queries while the run waits: with ids from the run's random source they shifted what the run drew next.
  for (let i = 0; i < 3; i++) await bed.client.status(runId);
  const signature = signer.sign({ approvalId: approval.approvalId, runId, decision: 'approve', approver: 'bob', groups: ['finance'], channel: 'web' });
  await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'bob', signature });
  expect(await bed.client.result(runId)).toMatchObject({ status: 'completed' });
  // A worker that no longer has the run replays it to answer: the replay draws the run's ids again.
  await bed.stopWorker();
  await bed.startWorker();
  for (let i = 0; i < 3; i++) await bed.client.status(runId);
  const queriesDone = await eventually(async () => {
    await telemetry.forceFlush();
    const handled = receiver.spans.filter((s) => s.name === 'HandleQuery:status');
    return handled.length >= 6 ? handled : undefined;
  }, 30_000, 'the query spans');
  const ids = receiver.spans.map((s) => s.spanId);
  const twice = [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))].map((id) => receiver.spans.filter((s) => s.spanId === id).map((s) => `${s.name} in ${s.traceId}`).join(' and '));
  console.log(`span ids: ${ids.length} spans exported, ${queriesDone.length} of them query spans, ${twice.length} ids seen twice`);
  expect(twice).toEqual([]);
}, 120_000);

test('warden run and warden status send their spans when OTEL_EXPORTER_OTLP_ENDPOINT is set; the worker joins the trace', async () => {
  const { address, namespace } = settings();
  const { WARDEN_TRUSTED_KEYS: _trusted, ...env } = process.env;
  const cliEnv = { ...env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, WARDEN_TASK_QUEUE: bed.taskQueue, WARDEN_PAYLOAD_KEYS: testPayloadKeysFile(), OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, WARDEN_HOME: '/nonexistent-warden-home' };
  const started = await runCli(['run', 'test-agent', '--goal', 'traced from the CLI', '--key', `cli-traced-${Date.now()}`, '--json'], cliEnv, 90_000);
  expect(started).toMatchObject({ code: 0 });
  const { runId } = JSON.parse(started.stdout) as { runId: string };
  await bed.client.result(runId).catch(() => undefined);
  expect((await runCli(['status', runId], cliEnv, 90_000)).code).toBe(0);
  // The worker's RunWorkflow span of this run hangs under the CLI's StartWorkflow span: one trace.
  const run = await eventually(async () => {
    await telemetry.forceFlush();
    return receiver.spans.find((s) => s.name === 'RunWorkflow:agentRun' && s.attributes.workflowId === runId);
  }, 30_000, "the worker's RunWorkflow span");
  const start = receiver.spans.find((s) => s.spanId === run.parentSpanId && s.traceId === run.traceId);
  expect(start).toMatchObject({ name: 'StartWorkflow:agentRun', resource: expect.objectContaining({ 'service.name': 'warden-cli' }) });
  const query = await eventually(async () => {
    await telemetry.forceFlush();
    const caller = receiver.spans.find((s) => s.name === 'QueryWorkflow:status' && s.resource['service.name'] === 'warden-cli');
    return caller && receiver.spans.find((s) => s.name === 'HandleQuery:status' && s.parentSpanId === caller.spanId);
  }, 30_000, 'the status query traced from the CLI into the worker');
  expect(query.resource['service.name']).toBe('warden-test');
}, 180_000);

test('warden approve sends its spans when OTEL_EXPORTER_OTLP_ENDPOINT is set; the run handles the decision in the same trace', async () => {
  const { address, namespace } = settings();
  const { WARDEN_TRUSTED_KEYS: _trusted, ...env } = process.env;
  const keyFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'warden-telemetry-cli-')), 'cli.json');
  writeFileSync(keyFile, JSON.stringify({ keyId: 'test-cli', privateKey: cliKey.privateKey }), { mode: 0o600 });
  const cliEnv = { ...env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, WARDEN_TASK_QUEUE: bed.taskQueue, WARDEN_PAYLOAD_KEYS: testPayloadKeysFile(), WARDEN_STORE: bed.storePath, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, WARDEN_HOME: '/nonexistent-warden-home' };
  const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'pay, approved from the CLI', requester: 'carol', policy, script: [{ toolCalls: [{ name: 'transfer', args: { amount: 7, to: 'acct-2' } }] }, { text: 'done' }] });
  const approval = await eventually(async () => (await bed.client.pendingApprovals(runId))[0], 30_000, 'a pending approval');
  const approved = await runCli(['approve', runId, approval.approvalId, '--as', 'bob', '--groups', 'finance', '--key', keyFile], cliEnv, 90_000);
  expect(approved).toMatchObject({ code: 0 });
  expect(approved.stdout).toContain(`approval of ${approval.approvalId} accepted from bob`);
  expect(await bed.client.result(runId)).toMatchObject({ status: 'completed' });
  // The CLI's StartWorkflowUpdate span reached the receiver before the command exited; the worker's handler hangs under it.
  const handled = await eventually(async () => {
    await telemetry.forceFlush();
    return receiver.spans.find((s) => s.name === 'HandleUpdate:approve' && s.events.some((e) => e.attributes['warden.approval.id'] === approval.approvalId));
  }, 30_000, "the worker's HandleUpdate span of the CLI's approval");
  const sent = receiver.spans.find((s) => s.spanId === handled.parentSpanId && s.traceId === handled.traceId);
  expect(sent).toMatchObject({ name: 'StartWorkflowUpdate:approve', resource: expect.objectContaining({ 'service.name': 'warden-cli' }) });
  expect(handled.resource['service.name']).toBe('warden-test');
  expect(handled.events.find((e) => e.name === 'warden.approval')?.attributes).toMatchObject({ 'warden.approval.outcome': 'approved', 'warden.approval.decided_by': 'bob' });
}, 180_000);
