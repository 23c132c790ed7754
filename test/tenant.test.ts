/**
 * Tenants: a run's tenant comes only from a start a trusted channel signed (or the worker's
 * default; the starts that claim one without that proof are in test/security/tenant-claims.test.ts).
 * Each tenant spends its own model-cost quota: one spending its quota stops its runs' model calls,
 * not the other's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defineAgent } from '../src/agents';
import { fleetPolicySchema, parsePolicy, type AuditEvent } from '../src/governance';
import type { ScriptTurn } from '../src/workflows/run-types';
import { approvalCard } from '../src/approvals/inbox/pages';
import { statusLines } from '../src/cli/format';
import { createTestBed, eventually, type TestBed } from './helpers';
import { refundAgent, REFUND_AGENT, sqliteLedger, type EffectLedger } from './fixtures/quota/refund-agent';
import { acmeOnlyRefunds, keyring, signer } from './fixtures/quota/tenant-web';


// $1 per million input tokens: a turn of 600,000 tokens costs $0.60.
const policy = parsePolicy(
  {
    agent: REFUND_AGENT,
    tools: { refund: {}, ping: {} },
    rules: acmeOnlyRefunds,
    pricing: { scripted: { inputPerMTok: 1, outputPerMTok: 0 } },
  },
  'tenant test policy',
);
const spendTurn = (n: number) => ({ toolCalls: [{ name: 'ping', args: { n } }], usage: { inputTokens: 600_000, outputTokens: 0 } });
const started = (trail: AuditEvent[]) => trail.find((e) => e.type === 'run_started')?.data;

describe('tenants', () => {
  let dir: string;
  let ledger: EffectLedger;
  let bed: TestBed;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'warden-tenant-'));
    ledger = sqliteLedger(path.join(dir, 'ledger.db'));
    const fleet = fleetPolicySchema.parse({
      quotas: [{ id: 'model-spend', count: 'costUsd', scope: ['tenant'], window: { calendar: 'month', timeZone: 'UTC' }, thresholds: [{ above: 1, action: 'deny', reason: "the tenant's monthly model budget is spent" }] }],
    });
    const agent = refundAgent(ledger);
    const boss = defineAgent({ name: 'quota-boss', instructions: 'You delegate.', model: 'scripted', tools: [], delegates: [agent] });
    // A delegate's policy comes from its worker, never from a start input.
    bed = await createTestBed({ agents: [agent, boss], policies: [policy], keyring, fleet, defaultTenant: 'shared' });
  });
  afterAll(async () => {
    await bed?.close();
    await ledger?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a signed start sets the tenant: run_started, the WardenTenant search attribute, run.tenant in policy conditions', async () => {
    const runId = await bed.client.startRun({ agent: REFUND_AGENT, goal: 'refund for acme', requester: 'carol', tenant: 'acme', signer, channel: 'web', policy, script: [{ toolCalls: [{ name: 'refund', args: { order: 'a-1', amount: 5 } }] }, { text: 'done' }] });
    expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 1 });
    const trail = await bed.client.auditTrail(runId, bed.store);
    expect(started(trail)).toMatchObject({ tenant: 'acme', requesterVerified: true });
    expect(started(trail)).not.toHaveProperty('tenantRefused');
    const status = await bed.client.status(runId);
    expect(status).toMatchObject({ tenant: 'acme', requesterVerified: true });
    expect(statusLines(status).join('\n')).toContain('(requested by carol, for tenant acme)');
    expect(trail.find((e) => e.type === 'policy_decision')?.data).toMatchObject({ decision: 'allow', ruleId: 'acme-only-refunds' });
    expect((await bed.client.client.workflow.count(`WorkflowId = '${runId}' AND WardenTenant = 'acme'`)).count).toBe(1);
  });

  test("an approval shows the run's tenant: in the pendingApprovals query and on the inbox's card", async () => {
    const asking = parsePolicy({ ...policy, rules: [{ id: 'refunds-need-finance', tools: ['refund'], decision: 'require_approval', reason: 'finance looks', approval: { approvers: ['group:finance'] } }, { id: 'allow-rest', decision: 'allow' }] }, 'asking policy');
    const runId = await bed.client.startRun({ agent: REFUND_AGENT, goal: 'refund for acme', requester: 'carol', tenant: 'acme', signer, channel: 'web', policy: asking, script: [{ toolCalls: [{ name: 'refund', args: { order: 'a-2', amount: 5 } }] }, { text: 'done' }] });
    const [pending] = await eventually(async () => {
      const p = await bed.client.pendingApprovals(runId);
      return p.length > 0 ? p : undefined;
    }, 60_000, 'the approval');
    expect(pending).toMatchObject({ tenant: 'acme', requester: 'carol' });
    if (!pending) throw new Error('no approval');
    const card = approvalCard(pending, REFUND_AGENT, { identity: { id: 'fran', groups: ['finance'] }, csrf: 'x', session: true }, Date.now()).toString();
    expect(card).toContain('carol <span class="muted tenant">for tenant acme</span>');
    await bed.client.cancel(runId);
  });

  test("a delegate works for its delegating run's tenant", async () => {
    const bossPolicy = parsePolicy({ agent: 'quota-boss', tools: { 'agent:quota-refund-agent': {} }, rules: [{ id: 'delegate', decision: 'allow', reason: 'test' }] }, 'boss policy');
    const delegateScript = [{ toolCalls: [{ name: 'ping', args: { n: 1 } }] }, { text: 'pinged' }];
    const runId = await bed.client.startRun({ agent: 'quota-boss', goal: 'have it pinged', requester: 'carol', tenant: 'acme', signer, channel: 'web', policy: bossPolicy, script: [{ toolCalls: [{ name: 'agent__quota-refund-agent', args: { goal: 'ping once' }, script: delegateScript }] }, { text: 'done' }] });
    expect(await bed.client.result(runId)).toMatchObject({ status: 'completed' });
    const childId = (await bed.client.auditTrail(runId, bed.store)).find((e) => e.type === 'delegation_started')?.data.runId;
    expect(typeof childId).toBe('string');
    expect(started(await bed.client.auditTrail(String(childId), bed.store))).toMatchObject({ tenant: 'acme' });
  });

  test('two tenants with their own cost quota: one spending its quota does not stop the other', async () => {
    const start = (tenant: string, script: ScriptTurn[]) => bed.client.startRun({ agent: REFUND_AGENT, goal: `spend for ${tenant}`, requester: 'carol', tenant, signer, channel: 'web', policy, script });
    // globex spends $0.60 of its $1; acme spends $1.20 and is stopped before its third model call.
    const acme = await start('acme-spend', [spendTurn(1), spendTurn(2), { text: 'never asked' }]);
    expect(await bed.client.result(acme)).toMatchObject({ status: 'budget_exhausted', steps: 3, usage: { costUsd: 1.2 } });
    const acmeTrail = await bed.client.auditTrail(acme, bed.store);
    expect(acmeTrail.find((e) => e.type === 'quota_exceeded')?.data).toMatchObject({ quota: 'fleet/model-spend', counter: 'fleet/model-spend|tenant=acme-spend', action: 'deny', on: 'model_call' });
    expect((await bed.client.result(acme)).reason).toContain("denied by quota fleet/model-spend: the tenant's monthly model budget is spent");

    const globex = await start('globex', [spendTurn(1), { text: 'done' }]);
    expect(await bed.client.result(globex)).toMatchObject({ status: 'completed', toolCalls: 1 });
    // A new acme run makes no model call at all.
    const again = await start('acme-spend', [{ text: 'hello' }]);
    expect(await bed.client.result(again)).toMatchObject({ status: 'budget_exhausted', steps: 0, usage: { costUsd: 0 } });
    expect((await bed.client.auditTrail(again, bed.store)).some((e) => e.type === 'model_turn')).toBe(false);
    const usage = await bed.store.quotaUsage({ quota: 'fleet/model-spend' });
    // The other tests' runs spent fractions of a cent (the scripted model's own token counts).
    expect(usage.filter((u) => u.committed >= 0.01).map((u) => [u.counter, Math.round(u.committed * 100) / 100])).toEqual([
      ['fleet/model-spend|tenant=acme-spend', 1.2],
      ['fleet/model-spend|tenant=globex', 0.6],
    ]);
  });
});
