/**
 * Tenant claims: a run's tenant decides which quotas it spends and which policy conditions
 * (`run.tenant`) hold for it, so it counts only from a start a trusted channel signed for this run
 * (else the worker's default). Anyone with a Temporal client can start a run naming a tenant, or
 * copy a signed start made for another run; either gets the default, and the trail says why.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parsePolicy, type AuditEvent } from '../../src/governance';
import { createTestBed, type TestBed } from '../helpers';
import { refundAgent, REFUND_AGENT, sqliteLedger, type EffectLedger } from '../fixtures/quota/refund-agent';
import { acmeOnlyRefunds, keyring, signer } from '../fixtures/quota/tenant-web';


/** Only acme's runs may refund. */
const policy = parsePolicy(
  {
    agent: REFUND_AGENT,
    tools: { refund: {}, ping: {} },
    rules: acmeOnlyRefunds,
  },
  'tenant claims policy',
);
const started = (trail: AuditEvent[]) => trail.find((e) => e.type === 'run_started')?.data;

let dir: string;
let ledger: EffectLedger;
let bed: TestBed;
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'warden-tenant-claims-'));
  ledger = sqliteLedger(path.join(dir, 'ledger.db'));
  bed = await createTestBed({ agents: [refundAgent(ledger)], policies: [policy], keyring, defaultTenant: 'shared' });
});
afterAll(async () => {
  await bed?.close();
  await ledger?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('an unsigned start cannot choose a tenant: it gets the worker’s default, and the refusal is in its trail', async () => {
  const runId = await bed.client.startRun({ agent: REFUND_AGENT, goal: 'refund, claiming to be acme', requester: 'mallory', tenant: 'acme', policy, script: [{ toolCalls: [{ name: 'refund', args: { order: 'm-1', amount: 5 } }] }, { text: 'done' }] });
  await bed.client.result(runId);
  const trail = await bed.client.auditTrail(runId, bed.store);
  expect(started(trail)).toMatchObject({ tenant: 'shared', requesterVerified: false, tenantRefused: 'the start names "acme", but a tenant counts only when a trusted channel signs the start' });
  expect(trail.find((e) => e.type === 'policy_decision')?.data).toMatchObject({ decision: 'deny', ruleId: 'no-refunds' });
  expect((await ledger.effects()).map((e) => e.runId)).not.toContain(runId);
  expect((await bed.client.client.workflow.count(`WorkflowId = '${runId}' AND WardenTenant = 'shared'`)).count).toBe(1);
}, 120_000);

test('a start signed for another run does not set the tenant: the proof is checked against the run', async () => {
  const forged = await bed.client.startRun({ agent: REFUND_AGENT, goal: 'refund again', requester: 'mallory', tenant: 'acme', signer: { signStart: (c) => signer.signStart({ ...c, runId: 'warden/other/run' }) }, channel: 'web', policy, script: [{ text: 'done' }] });
  await bed.client.result(forged);
  expect(started(await bed.client.auditTrail(forged, bed.store))).toMatchObject({ tenant: 'shared', requesterVerified: false });
  expect(started(await bed.client.auditTrail(forged, bed.store))?.tenantRefused).toContain('the start names "acme"');
  // The same key, signing this run's start, counts: the forged start failed on its binding alone.
  const genuine = await bed.client.startRun({ agent: REFUND_AGENT, goal: 'refund again', requester: 'mallory', tenant: 'acme', signer, channel: 'web', policy, script: [{ text: 'done' }] });
  await bed.client.result(genuine);
  expect(started(await bed.client.auditTrail(genuine, bed.store))).toMatchObject({ tenant: 'acme', requesterVerified: true });
}, 120_000);
