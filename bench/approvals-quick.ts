/**
 * `npm run bench:approvals [K]`: the waiting-approvals scenario alone, worker and client in one
 * process (K=300 by default). Prints one JSON line:
 * - `startMsPerRun`: ms per run to get all K waiting; `rssMb`: process RSS while they wait;
 * - `inboxListMs` / `inboxListQueryMs`: the web inbox's list of the K waiting runs, the way it
 *   reads it now (one visibility listing, approvals from the memos) and the way it did (the runs
 *   listed, then one `pendingApprovals` query per run), alternated `AB_LIST_ROUNDS` times (2)
 *   and reported as medians;
 * - `readMsPerRun`: reading every run's approval id before deciding, `AB_READ=memo` (default,
 *   one listing) or `AB_READ=query` (a query per run, as before the memo: each replays a run out
 *   of the worker's cache);
 * - `acceptMsPerRun`: from the first approval (signed, sent as an Update, 50 at a time) to the
 *   last one answered (accepted by its run); `approveMsPerRun`: to all runs completed (each runs
 *   its call, asks the model once more and flushes);
 *   `totalMsPerRun`: read plus approve, what approving all K costs an approver.
 * `AB_CACHE` sets the worker's maxCachedWorkflows (default 100): at K the Updates find every run
 * in the cache, which shows what is left of the approve phase when no run is replayed.
 * Small enough to run against two trees side by side (copy it into a `git worktree` of another
 * commit) for before/after ratios in one session.
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
import { DecisionSigner } from '../src/approvals/signing-keys';
import { generateSigningKey, parsePolicy } from '../src/governance';
import { createSqliteStore } from '../src/store';
import { createWardenWorker } from '../src/worker';
import { median } from './figures';

const payTool = defineTool({ name: 'pay', description: 'pays', input: z.object({ amount: z.number() }), run: () => 'paid' });
const agent = defineAgent({ name: 'ab', instructions: 'bench', model: 'scripted', tools: [payTool] });
const policy = parsePolicy({ agent: 'ab', tools: { pay: {} }, rules: [{ id: 'fin', tools: ['pay'], decision: 'require_approval', approval: { approvers: ['group:finance'], timeout: '1h' } }] }, 'ab');
const key = generateSigningKey();
const signer = new DecisionSigner({ keyId: 'web', privateKey: key.privateKey, publicKey: key.publicKey });


/** Every waiting run's approval id: from one listing (the memos), or by a query per run (in batches of 50). */
async function approvalIds(warden: WardenClient, ids: string[], read: 'memo' | 'query'): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  if (read === 'query') {
    for (let i = 0; i < ids.length; i += 50) {
      const batch = await Promise.all(ids.slice(i, i + 50).map(async (id) => [id, (await warden.queryPendingApprovals(id))[0]?.approvalId] as const));
      for (const [id, approvalId] of batch) if (approvalId) found.set(id, approvalId);
    }
  } else {
    for (const { runId, approvalId } of (await warden.listPendingApprovals()).approvals) found.set(runId, approvalId);
  }
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length > 0) throw new Error(`bench: ${missing.length} runs listed no approval (${missing[0] ?? ''}, …)`);
  return found;
}

/** The inbox's list before the memo: the waiting runs from visibility, then each run's query, all at once. */
async function inboxListByQuery(warden: WardenClient): Promise<number> {
  const runs = await warden.listRuns({ status: 'awaiting_approval,paused' });
  const lists = await Promise.all(runs.map((r) => warden.queryPendingApprovals(r.runId)));
  return lists.flat().length;
}

async function main() {
  const k = Number(process.argv[2] ?? 300);
  const read = process.env.AB_READ === 'query' ? 'query' : 'memo';
  const rounds = Number(process.env.AB_LIST_ROUNDS ?? 2);
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

    // Both ways of listing, alternated, on the same K waiting runs: the same cache state for what follows in either mode.
    const listMs: number[] = [];
    const listQueryMs: number[] = [];
    for (let round = 0; round < rounds; round++) {
      let t = performance.now();
      const listed = (await warden.listPendingApprovals()).approvals.length;
      listMs.push(performance.now() - t);
      t = performance.now();
      const queried = await inboxListByQuery(warden);
      listQueryMs.push(performance.now() - t);
      if (listed < k || queried < k) throw new Error(`bench: listed ${listed} and queried ${queried} approvals of ${k}`);
    }

    const t1 = performance.now();
    const pending = await approvalIds(warden, ids, read);
    const readMs = performance.now() - t1;
    const t2 = performance.now();
    for (let i = 0; i < k; i += 50)
      await Promise.all(
        ids.slice(i, i + 50).map((id) => {
          const approvalId = pending.get(id) ?? '';
          return warden.approve(id, { approvalId, approver: 'alice', signature: signer.sign({ approvalId, runId: id, decision: 'approve', approver: 'alice', groups: ['finance'], channel: 'web' }) });
        }),
      );
    const acceptMs = performance.now() - t2;
    while ((await count('completed')) < k) await new Promise((r) => setTimeout(r, 100));
    const approveMs = performance.now() - t2;
    console.log(
      JSON.stringify({
        k,
        read,
        cache: process.env.AB_CACHE ?? 'default',
        startMsPerRun: +(startMs / k).toFixed(1),
        rssMb,
        inboxListMs: Math.round(median(listMs)),
        inboxListQueryMs: Math.round(median(listQueryMs)),
        readMsPerRun: +(readMs / k).toFixed(2),
        acceptMsPerRun: +(acceptMs / k).toFixed(1),
        approveMsPerRun: +(approveMs / k).toFixed(1),
        totalMsPerRun: +((readMs + approveMs) / k).toFixed(1),
      }),
    );
  });
  await store.close();
  await server.stop();
}
void main();
