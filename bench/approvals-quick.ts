/**
 * `npm run bench:approvals [K]`: the waiting-approvals scenario alone, worker and client in one
 * process (K=300 by default): ms per run to get all K waiting, ms per run from the first approval
 * to all completed, process RSS while they wait. Small enough to run against two trees side by
 * side (copy it into a `git worktree` of another commit) for before/after ratios in one session.
 * `AB_CACHE` sets the worker's maxCachedWorkflows.
 */
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import pino from 'pino';
import { z } from 'zod';
import { AgentRegistry, defineAgent, defineTool } from '../src/agents';
import { WardenClient } from '../src/client';
import { startDevServer } from '../src/dev-server';
import { DecisionSigner } from '../src/approvals/keys';
import { generateSigningKey, parsePolicy } from '../src/governance';
import { createSqliteStore } from '../src/store';
import { createWardenWorker } from '../src/worker';

const payTool = defineTool({ name: 'pay', description: 'pays', input: z.object({ amount: z.number() }), run: () => 'paid' });
const agent = defineAgent({ name: 'ab', instructions: 'bench', model: 'scripted', tools: [payTool] });
const policy = parsePolicy({ agent: 'ab', tools: { pay: {} }, rules: [{ id: 'fin', tools: ['pay'], decision: 'require_approval', approval: { approvers: ['group:finance'], timeout: '1h' } }] }, 'ab');
const key = generateSigningKey();
const signer = new DecisionSigner({ keyId: 'web', privateKey: key.privateKey, publicKey: key.publicKey });

async function main() {
  const k = Number(process.argv[2] ?? 300);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const server = await startDevServer({ headless: true, log: () => {} });
  const store = createSqliteStore(path.join(mkdtempSync(path.join(os.tmpdir(), 'ab-')), 'w.db'));
  const connection = await NativeConnection.connect({ address: server.address });
  const worker = await createWardenWorker({
    registry: new AgentRegistry([agent], [{ policy, source: 'ab' }]),
    store, connection, settings: { address: server.address, namespace: 'default' }, taskQueue: 'ab', logger: pino({ level: 'silent' }), slack: null,
    keyring: { web: { publicKey: key.publicKey, channel: 'web', people: '*', revoked: false } },
    ...(process.env.AB_CACHE ? { workerOptions: { maxCachedWorkflows: Number(process.env.AB_CACHE) } } : {}),
  });
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  const warden = new WardenClient(client, 'ab');
  const count = async (s: string) => (await client.workflow.count(`WardenStatus = '${s}'`)).count;
  await worker.runUntil(async () => {
    const script = [{ toolCalls: [{ name: 'pay', args: { amount: 5 } }] }, { text: 'paid' }];
    const t0 = performance.now();
    const ids: string[] = [];
    for (let i = 0; i < k; i += 50) ids.push(...(await Promise.all(Array.from({ length: Math.min(50, k - i) }, (_, j) => warden.startRun({ agent: 'ab', goal: 'pay', requester: 'carol', key: `x${i + j}`, script })))));
    while ((await count('awaiting_approval')) < k) await new Promise((r) => setTimeout(r, 100));
    const startMs = performance.now() - t0;
    global.gc?.();
    const rssMb = Math.round(process.memoryUsage().rss / 1048576);
    const pending: { id: string; approvalId: string }[] = [];
    for (let i = 0; i < k; i += 50) pending.push(...(await Promise.all(ids.slice(i, i + 50).map(async (id) => ({ id, approvalId: (await warden.pendingApprovals(id))[0]!.approvalId })))));
    const t1 = performance.now();
    for (let i = 0; i < k; i += 50)
      await Promise.all(pending.slice(i, i + 50).map(({ id, approvalId }) => warden.approve(id, { approvalId, approver: 'alice', signature: signer.sign({ approvalId, runId: id, decision: 'approve', approver: 'alice', groups: ['finance'], channel: 'web' }) })));
    while ((await count('completed')) < k) await new Promise((r) => setTimeout(r, 100));
    console.log(JSON.stringify({ k, startMsPerRun: +(startMs / k).toFixed(1), approveMsPerRun: +((performance.now() - t1) / k).toFixed(1), rssMb, cache: process.env.AB_CACHE ?? 'default' }));
  });
  await store.close();
  await server.stop();
}
void main();
