/**
 * `npm run bench`: figures as ratios measured in one run on one machine (shared machines are
 * noisy; absolute times mean little, ratios between two things measured side by side do).
 *
 * 1. Governed run overhead: N auto-allowed no-op tool calls in one governed run against a bare
 *    workflow calling the same no-op activity N times, same dev server, same worker process.
 *    Prints the wall-time ratio, history events per call and history bytes per call for both,
 *    at N=100 and N=1000 (flat bytes per call is the goal: no O(N²) history).
 * 2. Policy decision time for a 50-rule policy: µs per decision, p50 and p99.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import pino from 'pino';
import { z } from 'zod';
import { createActivities } from '../src/activities';
import { AgentRegistry, defineAgent, defineTool } from '../src/agents';
import { WardenClient } from '../src/client';
import { startDevServer } from '../src/dev-server';
import { CompiledPolicy, parsePolicy } from '../src/governance';
import { createSqliteStore } from '../src/store';

const noopTool = defineTool({ name: 'noop', description: 'does nothing', input: z.object({ i: z.int() }), run: () => 'ok' });
const benchAgent = defineAgent({ name: 'bench-agent', instructions: 'bench', model: 'scripted', tools: [noopTool] });
const policy = parsePolicy({ agent: 'bench-agent', tools: { noop: {} }, rules: [{ id: 'allow', decision: 'allow' }], budgets: { maxSteps: 100_000 } }, 'bench');

interface Measured {
  ms: number;
  events: number;
  bytes: number;
  executions: number;
}

async function historyOf(client: Client, workflowId: string): Promise<{ events: number; bytes: number; executions: number }> {
  let events = 0;
  let bytes = 0;
  let executions = 0;
  for await (const wf of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    const history = await client.workflow.getHandle(workflowId, wf.runId).fetchHistory();
    events += history.events?.length ?? 0;
    bytes += temporal.api.history.v1.History.encode(history).finish().length;
    executions += 1;
  }
  return { events, bytes, executions };
}

async function governed(warden: WardenClient, n: number): Promise<Measured> {
  const script = [...Array.from({ length: n }, (_, i) => ({ toolCalls: [{ name: 'noop', args: { i } }], usage: { inputTokens: 1, outputTokens: 1 } })), { text: 'done' }];
  const started = performance.now();
  const runId = await warden.startRun({ agent: 'bench-agent', goal: 'bench', requester: 'bench', policy, script });
  const outcome = await warden.result(runId);
  const ms = performance.now() - started;
  if (outcome.status !== 'completed' || outcome.toolCalls !== n) throw new Error(`governed run ended ${outcome.status}: ${outcome.reason}`);
  return { ms, ...(await historyOf(warden.client, runId)) };
}

async function bare(client: Client, taskQueue: string, n: number): Promise<Measured> {
  const workflowId = `bench-bare-${n}-${Date.now()}`;
  const started = performance.now();
  await client.workflow.execute('bareLoop', { taskQueue, workflowId, args: [n] });
  const ms = performance.now() - started;
  return { ms, ...(await historyOf(client, workflowId)) };
}

function decisionBench(): { p50: number; p99: number; mean: number } {
  const rules = Array.from({ length: 50 }, (_, i) => ({
    id: `rule-${i}`,
    tools: ['issue_refund'],
    when: `args.amount > ${1000 + i * 10} && args.region == "r${i}" && run.requester != "blocked"`,
    decision: i % 2 === 0 ? 'deny' : 'require_approval',
    ...(i % 2 === 0 ? {} : { approval: { approvers: ['group:finance'] } }),
  }));
  rules.push({ id: 'fallback', tools: ['issue_refund'], when: 'args.amount <= 100', decision: 'allow' });
  const compiled = new CompiledPolicy(parsePolicy({ agent: 'bench-agent', tools: { issue_refund: {} }, rules }, 'bench 50 rules'));
  const run = { id: 'r', requester: 'alice', requesterVerified: true, step: 3, toolCalls: 2, costUsd: 0.01, inputTokens: 100, outputTokens: 10 };
  // The worst case: every rule is evaluated and the last one matches.
  const call = { tool: 'issue_refund', args: { amount: 50, region: 'none', orderId: 'ORD-1' } };
  for (let i = 0; i < 2000; i++) compiled.decide(call, 'bench-agent', run);
  const samples: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    const t = process.hrtime.bigint();
    const d = compiled.decide(call, 'bench-agent', run);
    samples.push(Number(process.hrtime.bigint() - t) / 1000);
    if (d.decision !== 'allow') throw new Error('unexpected decision');
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99), mean: samples.reduce((a, b) => a + b, 0) / samples.length };
}

async function main(): Promise<void> {
  const sizes = (process.env.BENCH_N ?? '100,1000').split(',').map(Number);
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const server = await startDevServer({ headless: true, log: () => {}, extraArgs: (process.env.BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean) });
  const store = createSqliteStore(path.join(mkdtempSync(path.join(os.tmpdir(), 'warden-bench-')), 'warden.db'));
  try {
    const taskQueue = 'bench';
    const connection = await NativeConnection.connect({ address: server.address });
    const registry = new AgentRegistry([benchAgent]);
    const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('./workflows'), logger: new DefaultLogger('WARN') });
    // The baseline's activity does what the no-op tool does: nothing, and returns a short summary.
    const activities = { ...createActivities({ registry, store, logger: pino({ level: 'silent' }) }), bareNoop: async () => ({ summary: 'ok' }) };
    const worker = await Worker.create({ connection, taskQueue, workflowBundle: { code }, activities });
    const client = new Client({ connection: await Connection.connect({ address: server.address }) });
    const warden = new WardenClient(client, taskQueue);

    await worker.runUntil(async () => {
      // Warm up both paths once so neither pays the first workflow task's cost alone.
      await bare(client, taskQueue, 5);
      await governed(warden, 5);
      console.log('\n1. governed run vs bare workflow (same server, same worker process)\n');
      console.log('   N     | bare ms | governed ms | ratio | events/call bare / governed | bytes/call bare / governed | executions');
      for (const n of sizes) {
        const b = await bare(client, taskQueue, n);
        const g = await governed(warden, n);
        console.log(
          `   ${String(n).padEnd(5)} | ${b.ms.toFixed(0).padStart(7)} | ${g.ms.toFixed(0).padStart(11)} | ${(g.ms / b.ms).toFixed(2).padStart(5)} | ` +
            `${(b.events / n).toFixed(1)} / ${(g.events / n).toFixed(1)}`.padEnd(28) +
            ` | ${(b.bytes / n).toFixed(0)} / ${(g.bytes / n).toFixed(0)}`.padEnd(27) +
            ` | ${g.executions}`,
        );
      }
    });
    await connection.close();
    await client.connection.close();
  } finally {
    await store.close();
    await server.stop();
  }
  const d = decisionBench();
  console.log(`\n2. policy decision, 50 rules, last rule matches: p50 ${d.p50.toFixed(1)} µs, p99 ${d.p99.toFixed(1)} µs, mean ${d.mean.toFixed(1)} µs per decision\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
