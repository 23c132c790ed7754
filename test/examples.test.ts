import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { z } from 'zod';
import { DefinitionError, isAgent, loadAgents, toolSpec, ToolError, type Agent, type AnyTool, type ToolContext } from '../src/agents';
import {
  admitApproved,
  checkBeforeModelCall,
  CompiledPolicy,
  costOf,
  emptyLoopState,
  emptyUsage,
  governCall,
  parsePolicyText,
  type GovernState,
  redactBySchema,
  REDACTED,
  type Policy,
  type RunFacts,
} from '../src/governance';
import type { ScriptTurn } from '../src/workflows/run-types';
import * as examples from '../examples';
import { exampleModel } from '../examples/model';
import { comparePrices, createPurchaseOrder, procurementAgent } from '../examples/procurement-agent';
import { changeCreditLimit, issueRefund, lookupOrder, refundAgent } from '../examples/refund-agent';
import * as shop from '../examples/shop/store';
import { triageAgent } from '../examples/triage-agent';

const root = path.join(__dirname, '..');

function readPolicy(agent: string): Policy {
  const file = path.join(root, 'policies', `${agent}.yaml`);
  return parsePolicyText(readFileSync(file, 'utf8'), file);
}

// The ScriptTurn shape, strict, so a misspelt key in a script fails here instead of being ignored.
const scriptSchema = z.array(
  z.strictObject({
    toolCalls: z.array(z.strictObject({ name: z.string(), args: z.record(z.string(), z.unknown()).optional(), id: z.string().optional() })).optional(),
    text: z.string().optional(),
    usage: z.strictObject({ inputTokens: z.int().min(0).optional(), outputTokens: z.int().min(0).optional() }).optional(),
  }),
);

function readScript(name: string): ScriptTurn[] {
  return scriptSchema.parse(JSON.parse(readFileSync(path.join(root, 'examples', 'scripts', name), 'utf8')));
}

const runFacts = (overrides: Partial<RunFacts> = {}): RunFacts => ({
  id: 'warden/refund-agent/test',
  requester: 'user:alice',
  // As a run started through a trusted channel: tools that need a verified requester are judged on their rules.
  requesterVerified: true,
  step: 1,
  toolCalls: 0,
  costUsd: 0,
  inputTokens: 0,
  outputTokens: 0,
  ...overrides,
});

interface ScriptReplay {
  /** `tool:decision:ruleId` for every call that reached the policy. */
  decisions: string[];
  /** What ended the run early: a budget limit, `loop`, or null when the script ran out or finished. */
  stoppedBy: string | null;
  finished: boolean;
  modelCalls: number;
  costUsd: number;
}

/**
 * Plays a script through `governCall` — the function the workflow calls for every proposed call —
 * with the tool's own schema applied first as the model activity does, and every approval
 * granted (`admitApproved`). It shows each demo script still demonstrates what its name says,
 * without a Temporal server; the end-to-end runs belong to the workflow's own tests.
 */
function replayScript(turns: ScriptTurn[], agent: Agent, policy: Policy): ScriptReplay {
  const compiled = new CompiledPolicy(policy, { knownTools: new Set(agent.tools.map((t) => t.name)) });
  const tools = new Map<string, AnyTool>(agent.tools.map((t) => [t.name, t]));
  const price = policy.pricing.scripted;
  let state: GovernState = { usage: emptyUsage(), loop: emptyLoopState(), stoppedTools: [] };
  const decisions: string[] = [];
  const end = (stoppedBy: string | null, finished = false): ScriptReplay => ({ decisions, stoppedBy, finished, modelCalls: state.usage.steps, costUsd: state.usage.costUsd });
  for (const turn of turns) {
    const beforeModel = checkBeforeModelCall(policy.budgets, state.usage, 0);
    if (beforeModel) return end(beforeModel.limit);
    const u = state.usage;
    state = {
      ...state,
      usage: {
        ...u,
        steps: u.steps + 1,
        inputTokens: u.inputTokens + (turn.usage?.inputTokens ?? 0),
        outputTokens: u.outputTokens + (turn.usage?.outputTokens ?? 0),
        costUsd: u.costUsd + costOf(price, turn.usage?.inputTokens ?? 0, turn.usage?.outputTokens ?? 0),
      },
    };
    const calls = turn.toolCalls ?? [];
    if (calls.length === 0) return end(null, true);
    for (const [i, c] of calls.entries()) {
      const tool = tools.get(c.name);
      if (!tool) throw new Error(`script calls ${c.name}, which ${agent.name} does not have`);
      const args = (tool.input as z.ZodType).parse(c.args ?? {}) as Record<string, unknown>;
      const call = { id: c.id ?? `call_${i}`, name: c.name, args };
      const { usage } = state;
      const facts = runFacts({ step: usage.steps, toolCalls: usage.toolCalls, costUsd: usage.costUsd, inputTokens: usage.inputTokens, outputTokens: usage.outputTokens });
      const result = governCall(state, call, { policy: compiled, agent: agent.name, tool: toolSpec(tool), run: facts, elapsedMs: 0 });
      state = result.state;
      if (result.decision) decisions.push(`${c.name}:${result.decision.decision}:${result.decision.ruleId}`);
      if (result.end) return end(result.events.some((e) => e.type === 'loop_detected') ? 'loop' : (result.end.budget?.limit ?? 'loop'));
      if (result.plan.kind === 'approve') {
        const admitted = admitApproved(state, call, compiled, 0);
        if (!admitted.ok) return end(admitted.exceeded.limit);
        state = admitted.state;
      }
    }
  }
  return end(null);
}

describe('example policies', () => {
  const refundPolicy = readPolicy('refund-agent');
  const procurementPolicy = readPolicy('procurement-agent');
  const refunds = new CompiledPolicy(refundPolicy);

  const decide = (tool: string, args: Record<string, unknown>) => refunds.decide({ tool, args, risk: 'high' }, 'refund-agent', runFacts());

  it('are valid policy files, one per example agent', () => {
    expect(refundPolicy.agent).toBe(refundAgent.name);
    expect(procurementPolicy.agent).toBe(procurementAgent.name);
  });

  it('list exactly the tools their agent has', () => {
    expect(Object.keys(refundPolicy.tools).sort()).toEqual(refundAgent.tools.map((t) => t.name).sort());
    expect(Object.keys(procurementPolicy.tools).sort()).toEqual(procurementAgent.tools.map((t) => t.name).sort());
  });

  it('allows order lookups', () => {
    expect(decide('lookup_order', { orderId: 'ORD-1001' })).toMatchObject({ decision: 'allow', ruleId: 'lookup-orders' });
  });

  it('allows refunds up to $100 without approval', () => {
    expect(decide('issue_refund', { orderId: 'ORD-1001', amount: 25, reason: 'late' })).toMatchObject({ decision: 'allow', ruleId: 'small-refunds' });
    expect(decide('issue_refund', { orderId: 'ORD-1001', amount: 100, reason: 'late' })).toMatchObject({ decision: 'allow', ruleId: 'small-refunds' });
  });

  it('holds refunds over $100 for a finance approver, escalating to finance leads', () => {
    const decision = decide('issue_refund', { orderId: 'ORD-1003', amount: 100.01, reason: 'damaged' });
    expect(decision).toMatchObject({ decision: 'require_approval', ruleId: 'large-refunds' });
    expect(decision.approval).toEqual({
      approvers: ['group:finance'],
      quorum: 1,
      timeout: '24h',
      escalation: { approvers: ['group:finance-leads'], timeout: '8h' },
      notify: { slack: { channel: '#refund-approvals' } },
    });
  });

  it('denies credit limit changes as outside the agent scope', () => {
    const decision = decide('change_credit_limit', { customerId: 'CUST-001', newLimit: 5000 });
    expect(decision).toMatchObject({ decision: 'deny', ruleId: 'credit-limits-out-of-scope' });
    expect(decision.reason).toMatch(/outside the refund agent's scope/);
  });

  it('denies a tool the policy does not list', () => {
    expect(decide('delete_customer', { customerId: 'CUST-001' })).toMatchObject({ decision: 'deny', ruleId: 'default:unknown-tool' });
  });

  it('overrides retry and timeout of issue_refund', () => {
    expect(refundPolicy.tools.issue_refund).toMatchObject({ timeout: '20s', retry: { maximumAttempts: 3, initialInterval: '2s' } });
  });

  it('prices the scripted model, gpt-4o-mini and the local model (free), and sets every budget', () => {
    for (const policy of [refundPolicy, procurementPolicy]) {
      expect(Object.keys(policy.pricing).sort()).toEqual(['local:smollm2', 'openai:gpt-4o-mini', 'scripted']);
      expect(policy.pricing['local:smollm2']).toEqual({ inputPerMTok: 0, outputPerMTok: 0 });
      expect(policy.budgets).toEqual({ maxSteps: expect.any(Number), maxToolCalls: expect.any(Number), maxCostUsd: expect.any(Number), maxWallTime: expect.any(String) });
    }
  });

  it('stops procurement loops: 3 identical calls within 6 end the run', () => {
    expect(procurementPolicy.loop).toEqual({ maxRepeats: 3, window: 6, action: 'fail_run' });
  });
});

describe('demo scripts', () => {
  const refundPolicy = readPolicy('refund-agent');
  const procurementPolicy = readPolicy('procurement-agent');

  it('refund-out-of-scope: lookup and small refund allowed, credit limit denied, then an answer', () => {
    const replay = replayScript(readScript('refund-out-of-scope.json'), refundAgent, refundPolicy);
    expect(replay.decisions).toEqual([
      'lookup_order:allow:lookup-orders',
      'issue_refund:allow:small-refunds',
      'change_credit_limit:deny:credit-limits-out-of-scope',
    ]);
    expect(replay).toMatchObject({ stoppedBy: null, finished: true });
  });

  it('refund-out-of-scope: the customer note is redacted from what audit and approvals show', () => {
    const refundCall = readScript('refund-out-of-scope.json')
      .flatMap((t) => t.toolCalls ?? [])
      .find((c) => c.name === 'issue_refund');
    const spec = toolSpec(issueRefund);
    const shown = redactBySchema(refundCall?.args ?? {}, spec.inputSchema);
    expect(shown).toMatchObject({ orderId: 'ORD-1001', amount: 25, customerNote: REDACTED });
    expect(JSON.stringify(shown)).not.toContain('4242');
  });

  it('refund-large: the refund waits for approval, then the agent answers', () => {
    const replay = replayScript(readScript('refund-large.json'), refundAgent, refundPolicy);
    expect(replay.decisions).toEqual(['lookup_order:allow:lookup-orders', 'issue_refund:require_approval:large-refunds']);
    expect(replay).toMatchObject({ stoppedBy: null, finished: true });
  });

  it('procurement-loop: the third identical comparison trips the loop detector', () => {
    const script = readScript('procurement-loop.json');
    const replay = replayScript(script, procurementAgent, procurementPolicy);
    expect(replay).toMatchObject({ stoppedBy: 'loop', finished: false, modelCalls: 3 });
    expect(replay.decisions).toEqual(['compare_prices:allow:compare-prices', 'compare_prices:allow:compare-prices']);
    expect(replay.modelCalls).toBeLessThan(script.length);
  });

  it('procurement-cost: varied quantities slip past the loop detector and the cost budget ends the run', () => {
    const script = readScript('procurement-cost.json');
    const quantities = script.flatMap((t) => t.toolCalls ?? []).filter((c) => c.name === 'compare_prices').map((c) => c.args?.quantity);
    expect(new Set(quantities).size).toBe(quantities.length);
    const replay = replayScript(script, procurementAgent, procurementPolicy);
    expect(replay.stoppedBy).toBe('maxCostUsd');
    expect(replay.costUsd).toBeGreaterThanOrEqual(procurementPolicy.budgets.maxCostUsd ?? Infinity);
    expect(replay.modelCalls).toBeLessThan(script.length);
    expect(replay.decisions.every((d) => d === 'compare_prices:allow:compare-prices')).toBe(true);
  });
});

describe('example agents', () => {
  it('index exports the three agents, which the worker loader finds with their policies', () => {
    const exported = Object.values(examples).filter(isAgent);
    expect(exported).toHaveLength(3);
    expect(exported).toContain(refundAgent);
    expect(exported).toContain(procurementAgent);
    expect(exported).toContain(triageAgent);
    const registry = loadAgents(path.join(root, 'examples', 'index.ts'), path.join(root, 'policies'));
    expect(registry.list().map((a) => a.name).sort()).toEqual(['procurement-agent', 'refund-agent', 'triage-agent']);
    for (const agent of ['refund-agent', 'procurement-agent', 'triage-agent']) expect(registry.policyFor(agent)?.policy.agent).toBe(agent);
    // The triage agent hands refunds to the refund agent, which its policy lists as agent:refund-agent.
    expect(registry.spec('triage-agent').tools.map((t) => t.name)).toEqual(['lookup_order', 'agent:refund-agent']);
  });

  it('use the scripted model unless WARDEN_MODEL names a real one', () => {
    expect(exampleModel(undefined)).toBe('scripted');
    expect(exampleModel('scripted')).toBe('scripted');
    expect(exampleModel('openai:gpt-4o-mini')).toBe('openai:gpt-4o-mini');
    expect(exampleModel('local')).toBe('local:smollm2');
    expect(exampleModel('local:/models/x.gguf')).toBe('local:/models/x.gguf');
    expect(() => exampleModel('gpt-4o-mini')).toThrow(DefinitionError);
  });

  it('mark high-risk and undoable tools', () => {
    expect(toolSpec(issueRefund)).toMatchObject({ risk: 'high', compensable: true });
    expect(toolSpec(lookupOrder)).toMatchObject({ risk: 'low', compensable: false });
    expect(toolSpec(createPurchaseOrder)).toMatchObject({ compensable: true });
  });
});

describe('shop store and tools', () => {
  let dir: string;

  const ctx = (idempotencyKey: string): ToolContext => ({
    idempotencyKey,
    runId: 'warden/refund-agent/test',
    callId: 'call_1_1',
    agent: 'refund-agent',
    requester: 'user:alice',
    attempt: 1,
    log: pino({ level: 'silent' }),
    signal: new AbortController().signal,
    heartbeat: () => undefined,
  });

  // Tools may throw synchronously; this turns that into a rejection `expect` can await.
  const call = async <R>(fn: () => R | Promise<R>): Promise<R> => fn();

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'warden-shop-'));
    shop.openShop(path.join(dir, 'nested', 'shop.db'));
  });

  afterEach(() => {
    shop.closeShop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('seeds customers with credit limits, orders and quotes on first open', () => {
    expect(shop.getCreditLimit('CUST-001')).toBe(2000);
    expect(shop.getOrder('ORD-1001')).toMatchObject({ customerId: 'CUST-001', amount: 129, status: 'delivered' });
    expect(shop.quotesFor('CHAIR-ERGO-01').length).toBeGreaterThan(1);
    expect(shop.countRefunds()).toBe(0);
  });

  it('keeps its rows when the file is opened again', async () => {
    await call(() => issueRefund.run({ orderId: 'ORD-1002', amount: 10, reason: 'late' }, ctx('key-reopen')));
    const file = shop.shopPath() ?? '';
    shop.closeShop();
    shop.openShop(file);
    expect(shop.countRefunds()).toBe(1);
    expect(shop.getCreditLimit('CUST-002')).toBe(500);
  });

  it('lookup_order reports what may still be refunded', async () => {
    await call(() => issueRefund.run({ orderId: 'ORD-1001', amount: 29, reason: 'late' }, ctx('key-a')));
    const order = await call(() => lookupOrder.run({ orderId: 'ORD-1001' }, ctx('key-b')));
    expect(order).toMatchObject({ id: 'ORD-1001', amount: 129, refundableLeft: 100, refunds: [{ amount: 29, status: 'issued' }] });
    await expect(call(() => lookupOrder.run({ orderId: 'ORD-9999' }, ctx('key-c')))).rejects.toBeInstanceOf(ToolError);
  });

  it('issue_refund writes a refund row under the call idempotency key', async () => {
    const result = await call(() =>
      issueRefund.run({ orderId: 'ORD-1001', amount: 25, reason: 'late delivery', customerNote: 'card ending 4242' }, ctx('wf-1:call_2_1')),
    );
    expect(result).toMatchObject({ orderId: 'ORD-1001', amount: 25, status: 'issued', refundableLeft: 104 });
    expect(shop.refundsFor('ORD-1001')).toEqual([
      expect.objectContaining({ id: result.refundId, amount: 25, reason: 'late delivery', note: 'card ending 4242', idempotencyKey: 'wf-1:call_2_1', status: 'issued' }),
    ]);
    expect(shop.countRefunds()).toBe(1);
  });

  it('issue_refund with the same idempotency key twice creates one refund (a retried attempt)', async () => {
    // The full order amount: the retry must return the first refund, not be refused as over-refunding.
    const args = { orderId: 'ORD-1002', amount: 64.5, reason: 'never arrived' };
    const first = await call(() => issueRefund.run(args, ctx('wf-2:call_1_1')));
    const retried = await call(() => issueRefund.run(args, { ...ctx('wf-2:call_1_1'), attempt: 2 }));
    expect(retried).toEqual(first);
    expect(shop.refundsFor('ORD-1002')).toHaveLength(1);
    expect(shop.countRefunds()).toBe(1);
  });

  it('issue_refund with another key is another refund', async () => {
    await call(() => issueRefund.run({ orderId: 'ORD-1001', amount: 10, reason: 'a' }, ctx('k1')));
    await call(() => issueRefund.run({ orderId: 'ORD-1001', amount: 10, reason: 'b' }, ctx('k2')));
    expect(shop.refundsFor('ORD-1001')).toHaveLength(2);
  });

  it('compensating issue_refund reverses the refund, and the amount becomes refundable again', async () => {
    const args = { orderId: 'ORD-1001', amount: 129, reason: 'returned' };
    const result = await call(() => issueRefund.run(args, ctx('wf-3:call_1_1')));
    expect(shop.refundableAmount('ORD-1001')).toBe(0);
    await call(() => issueRefund.compensate?.(args, result, ctx('wf-3:call_1_1:undo')));
    expect(shop.refundsFor('ORD-1001')).toEqual([expect.objectContaining({ id: result.refundId, status: 'reversed', reversedAt: expect.any(String) })]);
    expect(shop.countRefunds('issued')).toBe(0);
    expect(shop.countRefunds('reversed')).toBe(1);
    expect(shop.refundableAmount('ORD-1001')).toBe(129);
    // A retried compensation changes nothing.
    await call(() => issueRefund.compensate?.(args, result, ctx('wf-3:call_1_1:undo')));
    expect(shop.countRefunds('reversed')).toBe(1);
  });

  it('issue_refund over the order amount throws ToolError and writes nothing', async () => {
    const attempt = call(() => issueRefund.run({ orderId: 'ORD-1001', amount: 129.01, reason: 'too much' }, ctx('wf-4:call_1_1')));
    await expect(attempt).rejects.toBeInstanceOf(ToolError);
    await expect(attempt).rejects.toThrow(/would exceed order ORD-1001.*at most \$129\.00 is left/);
    expect(shop.countRefunds()).toBe(0);
  });

  it('issue_refund counts earlier refunds toward the order amount', async () => {
    await call(() => issueRefund.run({ orderId: 'ORD-1001', amount: 100, reason: 'first' }, ctx('wf-5:a')));
    await expect(call(() => issueRefund.run({ orderId: 'ORD-1001', amount: 30, reason: 'second' }, ctx('wf-5:b')))).rejects.toBeInstanceOf(ToolError);
    expect(shop.countRefunds()).toBe(1);
  });

  it('issue_refund for an unknown order throws ToolError', async () => {
    await expect(call(() => issueRefund.run({ orderId: 'ORD-9999', amount: 5, reason: 'x' }, ctx('wf-6')))).rejects.toThrow(ToolError);
    expect(shop.countRefunds()).toBe(0);
  });

  it('change_credit_limit changes the limit and its compensation restores it', async () => {
    const args = { customerId: 'CUST-001', newLimit: 5000 };
    const result = await call(() => changeCreditLimit.run(args, ctx('wf-7')));
    expect(result).toEqual({ customerId: 'CUST-001', previousLimit: 2000, newLimit: 5000 });
    expect(shop.getCreditLimit('CUST-001')).toBe(5000);
    await call(() => changeCreditLimit.compensate?.(args, result, ctx('wf-7:undo')));
    expect(shop.getCreditLimit('CUST-001')).toBe(2000);
  });

  it('compare_prices returns the cheapest eligible quote and logs one price check per call', async () => {
    const small = await call(() => comparePrices.run({ sku: 'CHAIR-ERGO-01', quantity: 20 }, ctx('wf-8:a')));
    expect(small.cheapest).toEqual({ supplier: 'Fabrikam Furnishings', unitPrice: 184, total: 3680 });
    const bulk = await call(() => comparePrices.run({ sku: 'CHAIR-ERGO-01', quantity: 120 }, ctx('wf-8:b')));
    expect(bulk.cheapest).toEqual({ supplier: 'Contoso Office', unitPrice: 179.5, total: 21540 });
    await call(() => comparePrices.run({ sku: 'CHAIR-ERGO-01', quantity: 120 }, { ...ctx('wf-8:b'), attempt: 2 }));
    expect(shop.countPriceChecks()).toBe(2);
    await expect(call(() => comparePrices.run({ sku: 'NO-SUCH-SKU', quantity: 1 }, ctx('wf-8:c')))).rejects.toBeInstanceOf(ToolError);
  });

  it('create_purchase_order is idempotent per key and its compensation cancels the order', async () => {
    const args = { sku: 'PAPER-A4-80G', quantity: 400, supplier: 'Contoso Office' };
    const result = await call(() => createPurchaseOrder.run(args, ctx('wf-9:call_1_1')));
    expect(result).toMatchObject({ supplier: 'Contoso Office', unitPrice: 22.4, total: 8960, status: 'open' });
    await call(() => createPurchaseOrder.run(args, { ...ctx('wf-9:call_1_1'), attempt: 2 }));
    expect(shop.countPurchaseOrders()).toBe(1);
    await call(() => createPurchaseOrder.compensate?.(args, result, ctx('wf-9:undo')));
    expect(shop.getPurchaseOrder(result.purchaseOrderId)?.status).toBe('cancelled');
    expect(shop.countPurchaseOrders('open')).toBe(0);
  });

  it('create_purchase_order below the supplier minimum throws ToolError', async () => {
    await expect(call(() => createPurchaseOrder.run({ sku: 'CHAIR-ERGO-01', quantity: 5, supplier: 'Contoso Office' }, ctx('wf-10')))).rejects.toBeInstanceOf(ToolError);
    expect(shop.countPurchaseOrders()).toBe(0);
  });
});

describe('shop location', () => {
  const saved = { db: process.env.WARDEN_SHOP_DB, home: process.env.WARDEN_HOME };
  afterEach(() => {
    for (const [key, value] of [['WARDEN_SHOP_DB', saved.db], ['WARDEN_HOME', saved.home]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  it('prefers WARDEN_SHOP_DB, then WARDEN_HOME, then .warden', () => {
    delete process.env.WARDEN_SHOP_DB;
    delete process.env.WARDEN_HOME;
    expect(shop.defaultShopPath()).toBe(path.join('.warden', 'shop.db'));
    process.env.WARDEN_HOME = '/srv/warden';
    expect(shop.defaultShopPath()).toBe(path.join('/srv/warden', 'shop.db'));
    process.env.WARDEN_SHOP_DB = '/tmp/elsewhere.db';
    expect(shop.defaultShopPath()).toBe('/tmp/elsewhere.db');
  });
});
