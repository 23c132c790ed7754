/**
 * `npm run bench`: figures as ratios measured in one run on one machine (shared machines are
 * noisy; absolute times mean little, ratios between two things measured side by side do).
 *
 * 1. What governance costs: N auto-allowed no-op tool calls in one governed run against an
 *    ungoverned Temporal agent loop (model activity, then tool activity, the same payload sizes)
 *    and a bare workflow calling the no-op activity N times; same dev server (queue processor
 *    limits raised, as `warden dev` runs it), same worker process. Wall-time ratio, ms per call,
 *    history events and bytes per call, at N=100 and N=1000 (flat per-call cost is the goal).
 * 2. K runs waiting for approval (K=1000 by default): time until all wait, worker process RSS
 *    while they wait, time to read every approval id (one visibility listing of the runs' memos;
 *    BENCH_READ=query: a query per run, as before the memo), time from the first approval
 *    (signed, sent as Updates) until all completed. Beside it the same scenario on Temporal alone
 *    (`bareApproval`: model activity, an Update, tool and model activities, no governance) on a
 *    plain worker in its own process, and the ratios: what governance adds to waiting for people.
 * 3. Policy decision time for a 50-rule policy: µs per decision, p50 and p99.
 * 4. Where `../shared/peers/langgraph` has its dependencies (`npm ci` there), the same scenarios
 *    on LangGraph.js, run in child processes on the same machine in the same session.
 * 5. What a fleet quota costs: the governed run of scenario 1 beside the same run of an agent
 *    whose policy counts every call against a quota (booked in the run store before the tool
 *    runs, committed after), measured in the same rounds: ms per call, the ratio, history events
 *    and bytes per call.
 *
 * Scenario 1 measures each size BENCH_ROUNDS times (3), the three loops side by side in each round,
 * and prints medians. BENCH_N=100,1000 and BENCH_K=1000 change the sizes; BENCH_SERVER_ARGS adds dev server flags.
 */
import { localModelFigures, localModelLines } from './local-model';
import { spawnSync } from 'node:child_process';
import { forkApprovalWorker, WORKER_TUNING } from './worker-process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import pino from 'pino';
import { z } from 'zod';
import { createActivities } from '../src/activities';
import { bareActivities } from './bare-activities';
import { inBatches, indices, median, serverCpuMs } from './figures';
import { bareApproval, bareApproveUpdate } from './workflows';
import { AgentRegistry, defineAgent, defineTool } from '../src/agents';
import { WardenClient } from '../src/client';
import { startDevServer } from '../src/dev-server';
import { DecisionSigner } from '../src/approvals/signing-keys';
import { CompiledPolicy, generateSigningKey, parsePolicy, type Keyring } from '../src/governance';
import { createSqliteStore } from '../src/store';
import { DEFAULT_MAX_CACHED_RUNS, bundleWardenWorkflows } from '../src/worker';
import type { PendingApproval } from '../src/workflows/run-types';

const APPROVAL_QUEUE = 'bench-approvals';
const BARE_APPROVAL_QUEUE = 'bench-bare-approvals';

const noopTool = defineTool({ name: 'noop', description: 'does nothing', input: z.object({ i: z.int() }), run: () => 'ok' });
const benchAgent = defineAgent({ name: 'bench-agent', instructions: 'bench', model: 'scripted', tools: [noopTool] });
const policy = parsePolicy({ agent: 'bench-agent', tools: { noop: {} }, rules: [{ id: 'allow', decision: 'allow' }], budgets: { maxSteps: 100_000 } }, 'bench');
/** Scenario 5: the same agent and policy, and a quota that counts every call (per tenant, never reached). */
const quotaAgent = defineAgent({ name: 'bench-quota-agent', instructions: 'bench', model: 'scripted', tools: [noopTool] });
const quotaPolicy = parsePolicy(
  {
    agent: 'bench-quota-agent',
    tools: { noop: {} },
    rules: [{ id: 'allow', decision: 'allow' }],
    budgets: { maxSteps: 100_000 },
    quotas: [{ id: 'noop-calls', count: 'calls', tools: ['noop'], scope: ['tenant'], window: { rolling: '24h' }, thresholds: [{ above: 1_000_000_000, action: 'deny', reason: 'bench' }] }],
  },
  'bench quota',
);

const webKey = generateSigningKey();
const signer = new DecisionSigner({ keyId: 'bench-web', privateKey: webKey.privateKey, publicKey: webKey.publicKey });
const keyring: Keyring = { 'bench-web': { publicKey: webKey.publicKey, channel: 'web', people: '*', revoked: false } };
const peerDir = path.join(__dirname, '..', '..', 'shared', 'peers', 'langgraph');

interface Measured {
  ms: number;
  events: number;
  bytes: number;
  executions: number;
}

/** BENCH_ROUNDS: how many times each size of scenario 1 is measured (the medians are printed). */
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? '3'));
/** The round whose time is the median (its events and bytes with it). */
const medianRun = (runs: Measured[]): Measured => [...runs].sort((a, b) => a.ms - b.ms)[Math.floor(runs.length / 2)] ?? { ms: 0, events: 0, bytes: 0, executions: 0 };

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

async function governed(warden: WardenClient, n: number, agent = 'bench-agent'): Promise<Measured> {
  const script = [...Array.from({ length: n }, (_, i) => ({ toolCalls: [{ name: 'noop', args: { i } }], usage: { inputTokens: 1, outputTokens: 1 } })), { text: 'done' }];
  const started = performance.now();
  const runId = await warden.startRun({ agent, goal: 'bench', requester: 'bench', script });
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

async function ungoverned(client: Client, taskQueue: string, n: number): Promise<Measured> {
  const workflowId = `bench-loop-${n}-${Date.now()}`;
  const started = performance.now();
  const calls = await client.workflow.execute('agentLoop', { taskQueue, workflowId, args: [n] });
  const ms = performance.now() - started;
  if (calls !== n) throw new Error(`agent loop made ${String(calls)} calls, not ${n}`);
  return { ms, ...(await historyOf(client, workflowId)) };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The approval scenario's worker, in its own process (bench/approval-worker.ts). */
async function approvalWorker(address: string, bundlePath: string, storePath: string, mode: 'warden' | 'bare'): Promise<ApprovalWorker> {
  const taskQueue = mode === 'bare' ? BARE_APPROVAL_QUEUE : APPROVAL_QUEUE;
  const env = mode === 'bare' ? { ...process.env, BENCH_MODE: 'bare' } : undefined;
  const worker = await forkApprovalWorker({ address, taskQueue, bundlePath, storePath, publicKey: webKey.publicKey, ...(env ? { env } : {}) });
  return { rssMb: () => worker.ask<number>({ rss: true }, 'rssMb'), cpuMs: () => worker.ask<number>({ cpu: true }, 'cpuMs'), stop: worker.stop };
}

interface ApprovalWorker {
  rssMb: () => Promise<number>;
  cpuMs: () => Promise<number>;
  stop: () => Promise<void>;
}

/** CPU ms per run of the worker process and of the dev server, for one phase of the waiting-approvals scenario. */
interface PhaseCpu {
  worker: number;
  server: number | null;
}

/** Starts measuring a phase's CPU; the returned function ends it (per run of `k`). */
async function cpuPhase(worker: ApprovalWorker, port: string, k: number): Promise<() => Promise<PhaseCpu>> {
  const [worker0, server0] = [await worker.cpuMs(), serverCpuMs(port)];
  return async () => {
    const server1 = serverCpuMs(port);
    return { worker: ((await worker.cpuMs()) - worker0) / k, server: server0 === null || server1 === null ? null : (server1 - server0) / k };
  };
}

/** What the waiting-approvals scenario measured, for Warden or for Temporal alone. */
interface WaitingFigures {
  startMs: number;
  rssBeforeMb: number;
  rssWaitingMb: number;
  approveMs: number;
  startCpu: PhaseCpu;
  approveCpu: PhaseCpu;
  /** The history of one run, once completed. */
  history: { events: number; bytes: number };
}

/** K runs that each wait for one approval; then every approval, signed and sent as an Update. The worker is a process of its own. */
async function approvals(warden: WardenClient, worker: ApprovalWorker, port: string, k: number): Promise<WaitingFigures & { rssDoneMb: number; readMs: number }> {
  const tag = Date.now().toString(36);
  const count = async (status: string) => (await warden.client.workflow.count(`WardenAgent = 'bench-approvals' AND WardenStatus = '${status}' AND WorkflowId STARTS_WITH 'warden/bench-approvals/${tag}-'`)).count;
  const script = [{ toolCalls: [{ name: 'pay', args: { amount: 5 } }] }, { text: 'paid' }];
  const rssBeforeMb = await worker.rssMb();
  const startPhase = await cpuPhase(worker, port, k);
  const started = performance.now();
  const runIds = await inBatches(indices(k), (i) => warden.startRun({ agent: 'bench-approvals', goal: 'pay', requester: 'carol', key: `${tag}-${i}`, script }));
  await until(`${k} runs to wait`, async () => (await count('awaiting_approval')) >= k);
  const startMs = performance.now() - started;
  const startCpu = await startPhase();
  const rssWaitingMb = await worker.rssMb();
  const readStarted = performance.now();
  const pending: { runId: string; approval: PendingApproval | undefined }[] = [];
  if (process.env.BENCH_READ === 'query') {
    // As before the approvals memo, in batches: most of the waiting runs are not in the worker's cache, so each query replays one.
    pending.push(...(await inBatches(runIds, async (runId) => ({ runId, approval: (await warden.queryPendingApprovals(runId))[0] }))));
  } else {
    // One visibility listing: every waiting run's approvals are in its memo.
    const listed = new Map((await warden.listPendingApprovals()).approvals.map((a) => [a.runId, a] as const));
    pending.push(...runIds.map((runId) => ({ runId, approval: listed.get(runId) })));
  }
  const readMs = performance.now() - readStarted;
  const approvePhase = await cpuPhase(worker, port, k);
  const approveStarted = performance.now();
  await inBatches(pending, async ({ runId, approval }) => {
    if (!approval) throw new Error(`bench: ${runId} has no pending approval`);
    const signature = signer.sign({ approvalId: approval.approvalId, runId, decision: 'approve', approver: 'alice', groups: ['finance'], channel: 'web' });
    const reply = await warden.approve(runId, { approvalId: approval.approvalId, approver: 'alice', signature });
    if (reply.status !== 'accepted') throw new Error(`bench: approval of ${runId} refused: ${reply.reason}`);
  });
  await until(`${k} runs to complete`, async () => (await count('completed')) >= k);
  const approveMs = performance.now() - approveStarted;
  const approveCpu = await approvePhase();
  const history = await historyOf(warden.client, runIds[0] ?? '');
  return { startMs, rssBeforeMb, rssWaitingMb, rssDoneMb: await worker.rssMb(), readMs, approveMs, startCpu, approveCpu, history };
}

/**
 * The scenario's floor on Temporal (bench/workflows.ts `bareApproval`): the same K runs started 50
 * at a time, each waiting for one Update, approved 50 at a time, on a plain worker in its own
 * process with the same dev server, cache size and bundle; no policy, audit, signature or memo.
 */
async function bareApprovals(client: Client, worker: ApprovalWorker, port: string, k: number): Promise<WaitingFigures> {
  const tag = Date.now().toString(36);
  const prefix = `bench-bare-approval/${tag}-`;
  const count = async (status: string) => (await client.workflow.count(`WardenAgent = 'bench-bare' AND WardenStatus = '${status}' AND WorkflowId STARTS_WITH '${prefix}'`)).count;
  const rssBeforeMb = await worker.rssMb();
  const startPhase = await cpuPhase(worker, port, k);
  const started = performance.now();
  const handles = await inBatches(indices(k), (i) => client.workflow.start(bareApproval, { taskQueue: BARE_APPROVAL_QUEUE, workflowId: `${prefix}${i}`, args: ['bench-bare'] }));
  await until(`${k} bare runs to wait`, async () => (await count('awaiting_approval')) >= k);
  const startMs = performance.now() - started;
  const startCpu = await startPhase();
  const rssWaitingMb = await worker.rssMb();
  const approvePhase = await cpuPhase(worker, port, k);
  const approveStarted = performance.now();
  await inBatches(handles, (handle) => handle.executeUpdate(bareApproveUpdate, { args: ['alice'] }));
  await until(`${k} bare runs to complete`, async () => (await count('completed')) >= k);
  const approveMs = performance.now() - approveStarted;
  const approveCpu = await approvePhase();
  const history = await historyOf(client, handles[0]?.workflowId ?? '');
  return { startMs, rssBeforeMb, rssWaitingMb, approveMs, startCpu, approveCpu, history };
}

/** The LangGraph.js harness beside this one, where its dependencies are installed. */
function peer(script: string, args: string[]): Record<string, unknown> | null {
  if (!existsSync(path.join(peerDir, 'node_modules'))) return null;
  const r = spawnSync(process.execPath, ['--expose-gc', script, ...args], { cwd: peerDir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) {
    console.log(`   (LangGraph.js ${script} failed: ${r.stderr.split('\n')[0] ?? ''})`);
    return null;
  }
  return JSON.parse(r.stdout) as Record<string, unknown>;
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
  const k = Number(process.env.BENCH_K ?? '1000');
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const server = await startDevServer({ headless: true, log: () => {}, extraArgs: (process.env.BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean) });
  const port = server.address.split(':').pop() ?? '';
  const tempDir = mkdtempSync(path.join(os.tmpdir(), 'warden-bench-'));
  const store = createSqliteStore(path.join(tempDir, 'warden.db'));
  const rows: { n: number; bare: Measured; loop: Measured; governed: Measured; ratio: number; quota: Measured; quotaRatio: number }[] = [];
  let waiting: Awaited<ReturnType<typeof approvals>> | null = null;
  let floor: Awaited<ReturnType<typeof bareApprovals>> | null = null;
  try {
    const taskQueue = 'bench';
    const connection = await NativeConnection.connect({ address: server.address });
    const registry = new AgentRegistry(
      [benchAgent, quotaAgent],
      [
        { policy, source: 'bench' },
        { policy: quotaPolicy, source: 'bench quota' },
      ],
    );
    const failureConverterPath = require.resolve('../src/codec/failure-converter');
    // Bundled the way a Warden worker runs them: the shared modules loaded once per worker thread.
    const { code } = await bundleWardenWorkflows({ workflowsPath: require.resolve('./workflows'), logger: new DefaultLogger('WARN') });
    // The baselines' activities do what the no-op tool does: nothing, and return a short summary.
    const activities = {
      ...createActivities({ registry, store, logger: pino({ level: 'silent' }), keyring: () => keyring }),
      ...bareActivities,
    };
    const worker = await Worker.create({ connection, taskQueue, workflowBundle: { code }, activities, dataConverter: { failureConverterPath }, maxCachedWorkflows: DEFAULT_MAX_CACHED_RUNS });
    const client = new Client({ connection: await Connection.connect({ address: server.address }) });
    const warden = new WardenClient(client, taskQueue);

    await worker.runUntil(async () => {
      // Warm up every path once so none pays the first workflow task's cost alone.
      await bare(client, taskQueue, 5);
      await ungoverned(client, taskQueue, 5);
      await governed(warden, 5);
      await governed(warden, 5, 'bench-quota-agent');
      // Each size measured `rounds` times, the four side by side in each round; the medians are printed.
      for (const n of sizes) {
        const rounds: { bare: Measured; loop: Measured; governed: Measured; quota: Measured }[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          rounds.push({ bare: await bare(client, taskQueue, n), loop: await ungoverned(client, taskQueue, n), governed: await governed(warden, n), quota: await governed(warden, n, 'bench-quota-agent') });
        }
        rows.push({
          n,
          bare: medianRun(rounds.map((x) => x.bare)),
          loop: medianRun(rounds.map((x) => x.loop)),
          governed: medianRun(rounds.map((x) => x.governed)),
          ratio: median(rounds.map((x) => x.governed.ms / x.loop.ms)),
          quota: medianRun(rounds.map((x) => x.quota)),
          quotaRatio: median(rounds.map((x) => x.quota.ms / x.governed.ms)),
        });
      }
    });
    if (k > 0) {
      // The workflows run in worker processes started here, one per scenario; this process is only their client.
      const bundlePath = path.join(tempDir, 'workflow-bundle.js');
      writeFileSync(bundlePath, code);
      const bareWorker = await approvalWorker(server.address, bundlePath, path.join(tempDir, 'bare.db'), 'bare');
      try {
        floor = await bareApprovals(client, bareWorker, port, k);
      } finally {
        await bareWorker.stop();
      }
      const approvalsWorker = await approvalWorker(server.address, bundlePath, path.join(tempDir, 'approvals.db'), 'warden');
      try {
        waiting = await approvals(new WardenClient(client, APPROVAL_QUEUE), approvalsWorker, port, k);
      } finally {
        await approvalsWorker.stop();
      }
    }
    await connection.close();
    await client.connection.close();
  } finally {
    await store.close();
    await server.stop();
  }

  console.log(`\n1. a governed run vs an ungoverned agent loop (model + tool activity) vs a bare activity loop; same server, same worker process; medians of ${ROUNDS} rounds (the ratio: of each round's governed ÷ loop)\n`);
  console.log('   N     | ms/call bare / loop / governed | governed ÷ loop | events/call loop / governed | bytes/call loop / governed | executions');
  for (const { n, bare: b, loop: l, governed: g, ratio } of rows) {
    console.log(
      `   ${String(n).padEnd(5)} | ${`${(b.ms / n).toFixed(1)} / ${(l.ms / n).toFixed(1)} / ${(g.ms / n).toFixed(1)}`.padEnd(30)} | ${ratio.toFixed(2).padStart(15)} | ` +
        `${(l.events / n).toFixed(1)} / ${(g.events / n).toFixed(1)}`.padEnd(27) +
        ` | ${(l.bytes / n).toFixed(0)} / ${(g.bytes / n).toFixed(0)}`.padEnd(27) +
        ` | ${g.executions}`,
    );
  }
  const first = rows[0];
  const last = rows[rows.length - 1];
  if (first && last && last !== first) {
    console.log(`\n   governed ms per call at N=${last.n} ÷ at N=${first.n}: ${(last.governed.ms / last.n / (first.governed.ms / first.n)).toFixed(2)} (flat is 1.00; loop: ${(last.loop.ms / last.n / (first.loop.ms / first.n)).toFixed(2)})`);
  }
  const w = waiting;
  if (w) {
    console.log(`\n2. ${k} runs waiting for approval: all waiting after ${(w.startMs / 1000).toFixed(1)} s; worker process RSS ${w.rssBeforeMb.toFixed(0)} MB before, ${w.rssWaitingMb.toFixed(0)} MB while waiting (${(((w.rssWaitingMb - w.rssBeforeMb) * 1024) / k).toFixed(0)} KB per waiting run), ${w.rssDoneMb.toFixed(0)} MB after; reading every approval id ${(w.readMs / 1000).toFixed(1)} s (${process.env.BENCH_READ === 'query' ? 'a query per run' : 'one listing of the memos'}), first approval to all completed ${(w.approveMs / 1000).toFixed(1)} s (worker cache ${process.env.BENCH_MAX_CACHED ?? DEFAULT_MAX_CACHED_RUNS} runs; both worker processes started as \`warden worker\` starts its own: ${WORKER_TUNING})`);
  }
  const f = floor;
  if (f) {
    console.log(`   the same on Temporal alone (bare workflow: model activity, one Update, tool and model activities; plain worker, same cache): all waiting after ${(f.startMs / 1000).toFixed(1)} s; RSS ${f.rssBeforeMb.toFixed(0)} MB before, ${f.rssWaitingMb.toFixed(0)} MB while waiting; first approval to all completed ${(f.approveMs / 1000).toFixed(1)} s`);
    if (w) {
      console.log(`   Warden ÷ Temporal alone: start ${(w.startMs / f.startMs).toFixed(2)}, approve ${(w.approveMs / f.approveMs).toFixed(2)}, RSS growth while waiting ${((w.rssWaitingMb - w.rssBeforeMb) / Math.max(1, f.rssWaitingMb - f.rssBeforeMb)).toFixed(2)}`);
      // Where the time goes on this machine: both processes share its cores, so CPU per run is what bounds throughput.
      const cpu = (c: PhaseCpu) => `${c.worker.toFixed(1)} / ${c.server === null ? '?' : c.server.toFixed(1)}`;
      console.log('\n   per run                  | CPU ms to waiting, worker / server | CPU ms to completed, worker / server | history events | history bytes');
      for (const [name, x] of [['Warden', w], ['Temporal alone', f]] as const) {
        console.log(`   ${name.padEnd(24)} | ${cpu(x.startCpu).padEnd(34)} | ${cpu(x.approveCpu).padEnd(36)} | ${String(x.history.events).padEnd(14)} | ${x.history.bytes}`);
      }
    }
  }
  const d = decisionBench();
  console.log(`\n3. policy decision, 50 rules, last rule matches: p50 ${d.p50.toFixed(1)} µs, p99 ${d.p99.toFixed(1)} µs, mean ${d.mean.toFixed(1)} µs per decision`);
  quotaLines(rows);

  console.log('\n6. the local model, and what governance adds to a call on it\n');
  const local = await localModelFigures();
  const at = rows[0];
  if (local) localModelLines(local, at ? (at.governed.ms - at.loop.ms) / at.n : null).forEach((l) => console.log(l));

  const peerSteps = sizes.map((n) => ({ n, r: peer('bench-steps.mjs', [String(n), '--saver', 'sqlite', '--durability', 'sync']) }));
  if (peerSteps.every((p) => p.r === null)) {
    console.log(`\n4. LangGraph.js: not installed (run npm ci in ${peerDir} for the side-by-side figures)\n`);
    return;
  }
  console.log('\n4. LangGraph.js 1.7 + SqliteSaver, durability sync, the same machine and session\n');
  for (const { n, r } of peerSteps) if (r) console.log(`   N=${n}: ${String(r.ms_per_tool_call)} ms per tool call, peak RSS ${String(r.peak_rss_mb)} MB`);
  const a = k > 0 ? peer('bench-approvals.mjs', [String(k), '--resume', 'concurrent']) : null;
  if (a) console.log(`   ${k} waiting: all waiting after ${String(a.time_to_K_interrupted_ms)} ms; RSS ${String(a.rss_baseline_mb)} MB before, ${String(a.rss_while_K_waiting_mb)} MB while waiting; all resumed in ${String(a.time_to_resume_all_ms)} ms`);
  console.log();
}

/** Scenario 5, printed after 3 (it was measured with 1, in the same rounds); 4 may end the report early. */
function quotaLines(rows: readonly { n: number; governed: Measured; quota: Measured; quotaRatio: number }[]): void {
  console.log(`\n5. a quota-counted call vs a plain governed call (one quota on calls, per tenant, in the SQLite run store); same rounds as 1, medians of ${ROUNDS} (the ratio: of each round's quota ÷ governed)\n`);
  console.log('   N     | ms/call governed / quota-counted | quota ÷ governed | events/call governed / quota | bytes/call governed / quota');
  for (const { n, governed: g, quota: q, quotaRatio } of rows) {
    console.log(
      `   ${String(n).padEnd(5)} | ${`${(g.ms / n).toFixed(1)} / ${(q.ms / n).toFixed(1)}`.padEnd(32)} | ${quotaRatio.toFixed(2).padStart(16)} | ` +
        `${(g.events / n).toFixed(1)} / ${(q.events / n).toFixed(1)}`.padEnd(28) +
        ` | ${(g.bytes / n).toFixed(0)} / ${(q.bytes / n).toFixed(0)}`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
