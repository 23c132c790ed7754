/**
 * `npm run bench:cluster`: the bench's scenarios on a real Temporal cluster (scripts/cluster: the
 * server built from its Go module, PostgreSQL persistence and visibility, 4 history shards, fsync
 * on as in production) instead of the dev server (one process, SQLite, one shard). Temporal alone
 * is measured beside Warden in the same run, on the same cluster, so the ratios mean what those of
 * `npm run bench` mean.
 *
 * 1. ms per call: one run of N sequential auto-allowed no-op tool calls (governed) against the
 *    ungoverned agent loop and the bare activity loop, one worker in this process; medians of
 *    BENCH_ROUNDS (3) rounds.
 * 2. K runs waiting for one approval each (BENCH_K, default 500), started 50 at a time, then every
 *    approval (signed, sent as an Update) 50 at a time: starts and approvals per second, with one
 *    worker process and with two on the same task queue (Warden's workers share one PostgreSQL run
 *    store on the cluster's PostgreSQL), Warden and Temporal alone (bench/workflows.ts `bareApproval`).
 *
 * BENCH_N (100), BENCH_K, BENCH_WORKERS ("1,2"), BENCH_CLUSTER_FSYNC=off. Needs scripts/cluster/build.sh's binaries.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import pg from 'pg';
import pino from 'pino';
import { z } from 'zod';
import { createActivities } from '../src/activities';
import { AgentRegistry, defineAgent, defineTool } from '../src/agents';
import { DecisionSigner } from '../src/approvals/signing-keys';
import { WardenClient } from '../src/client';
import { generateSigningKey, parsePolicy, type Keyring } from '../src/governance';
import { createSqliteStore } from '../src/store';
import { DEFAULT_MAX_CACHED_RUNS, bundleWardenWorkflows } from '../src/worker';
import { clusterUnavailable, downCluster, upCluster, type Cluster } from '../scripts/cluster/cluster';
import { bareActivities } from './bare-activities';
import { inBatches, indices, median } from './figures';
import { forkApprovalWorker, WORKER_TUNING, type BenchWorker } from './worker-process';
import { bareApproval, bareApproveUpdate } from './workflows';

const noopTool = defineTool({ name: 'noop', description: 'does nothing', input: z.object({ i: z.int() }), run: () => 'ok' });
const benchAgent = defineAgent({ name: 'bench-agent', instructions: 'bench', model: 'scripted', tools: [noopTool] });
const policy = parsePolicy({ agent: 'bench-agent', tools: { noop: {} }, rules: [{ id: 'allow', decision: 'allow' }], budgets: { maxSteps: 100_000 } }, 'bench');
const webKey = generateSigningKey();
const signer = new DecisionSigner({ keyId: 'bench-web', privateKey: webKey.privateKey, publicKey: webKey.publicKey });
const keyring: Keyring = { 'bench-web': { publicKey: webKey.publicKey, channel: 'web', people: '*', revoked: false } };

const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? '3'));
const N = Number(process.env.BENCH_N ?? '100');
const K = Number(process.env.BENCH_K ?? '500');
const WORKER_COUNTS = (process.env.BENCH_WORKERS ?? '1,2').split(',').map(Number);

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 900_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** CPU ms (user + system) the Temporal server process has used so far, from /proc; null where unreadable. */
function cpuMsOf(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) * 10;
  } catch {
    return null;
  }
}

/** CPU ms of every PostgreSQL process of the cluster (the postmaster and its backends), from /proc. */
function postgresCpuMs(cluster: Cluster): number | null {
  try {
    const dataDir = path.join(cluster.dir, 'postgres', 'data');
    const postmaster = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    let ms = 0;
    for (const pid of [postmaster, ...readFileSync(`/proc/${postmaster}/task/${postmaster}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)]) {
      // Children that ended are counted in the postmaster's cutime/cstime (fields 14 and 15).
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      ms += (Number(fields[11] ?? 0) + Number(fields[12] ?? 0) + (pid === postmaster ? Number(fields[13] ?? 0) + Number(fields[14] ?? 0) : 0)) * 10;
    }
    return ms;
  } catch {
    return null;
  }
}

interface PerCall {
  bare: number;
  loop: number;
  governed: number;
  ratio: number;
}

/** Scenario 1: ms per call of one sequential run, one worker in this process. */
async function perCall(cluster: Cluster, bundleCode: string, tempDir: string): Promise<PerCall> {
  const taskQueue = 'bench-cluster-calls';
  const store = createSqliteStore(path.join(tempDir, 'calls.db'));
  const connection = await NativeConnection.connect({ address: cluster.address });
  const activities = {
    ...createActivities({ registry: new AgentRegistry([benchAgent], [{ policy, source: 'bench' }]), store, logger: pino({ level: 'silent' }), keyring: () => keyring }),
    ...bareActivities,
  };
  const failureConverterPath = require.resolve('../src/codec/failure-converter');
  const worker = await Worker.create({ connection, namespace: cluster.namespace, taskQueue, workflowBundle: { code: bundleCode }, activities, dataConverter: { failureConverterPath }, maxCachedWorkflows: DEFAULT_MAX_CACHED_RUNS });
  const client = new Client({ connection: await Connection.connect({ address: cluster.address }), namespace: cluster.namespace });
  const warden = new WardenClient(client, taskQueue);
  const timed = async (fn: () => Promise<unknown>) => {
    const started = performance.now();
    await fn();
    return performance.now() - started;
  };
  const bare = (n: number) => timed(() => client.workflow.execute('bareLoop', { taskQueue, workflowId: `bench-bare-${n}-${Date.now()}`, args: [n] }));
  const loop = (n: number) => timed(() => client.workflow.execute('agentLoop', { taskQueue, workflowId: `bench-loop-${n}-${Date.now()}`, args: [n] }));
  const governed = (n: number) =>
    timed(async () => {
      const script = [...Array.from({ length: n }, (_, i) => ({ toolCalls: [{ name: 'noop', args: { i } }], usage: { inputTokens: 1, outputTokens: 1 } })), { text: 'done' }];
      const outcome = await warden.result(await warden.startRun({ agent: 'bench-agent', goal: 'bench', requester: 'bench', script }));
      if (outcome.status !== 'completed' || outcome.toolCalls !== n) throw new Error(`governed run ended ${outcome.status}: ${outcome.reason}`);
    });
  try {
    return await worker.runUntil(async () => {
      await bare(5);
      await loop(5);
      await governed(5);
      const rounds: { bare: number; loop: number; governed: number }[] = [];
      for (let r = 0; r < ROUNDS; r++) rounds.push({ bare: await bare(N), loop: await loop(N), governed: await governed(N) });
      return {
        bare: median(rounds.map((x) => x.bare)) / N,
        loop: median(rounds.map((x) => x.loop)) / N,
        governed: median(rounds.map((x) => x.governed)) / N,
        ratio: median(rounds.map((x) => x.governed / x.loop)),
      };
    });
  } finally {
    await client.connection.close();
    await connection.close();
    await store.close();
  }
}

interface Waiting {
  mode: 'warden' | 'bare';
  workers: number;
  startMs: number;
  approveMs: number;
  /** CPU ms per run of the worker processes, the Temporal server and PostgreSQL, start to completed. */
  cpu: { workers: number; server: number | null; postgres: number | null };
}

/** Scenario 2 for one mode and worker count: K runs to waiting, then all approved to completed. */
async function waiting(cluster: Cluster, client: Client, mode: 'warden' | 'bare', workerCount: number, bundlePath: string, storeUrl: string): Promise<Waiting> {
  const tag = `${mode}-${workerCount}-${Date.now().toString(36)}`;
  const taskQueue = `bench-cluster-${tag}`;
  const workers: BenchWorker[] = [];
  try {
    for (let i = 0; i < workerCount; i++) {
      workers.push(
        await forkApprovalWorker({ address: cluster.address, taskQueue, bundlePath, storePath: storeUrl, publicKey: webKey.publicKey, ...(mode === 'bare' ? { env: { ...process.env, BENCH_MODE: 'bare' } } : {}) }),
      );
    }
    const workerCpu = async () => (await Promise.all(workers.map((w) => w.ask<number>({ cpu: true }, 'cpuMs')))).reduce((a, b) => a + b, 0);
    const cpu0 = { workers: await workerCpu(), server: cpuMsOf(cluster.serverPid), postgres: postgresCpuMs(cluster) };
    const agent = mode === 'warden' ? 'bench-approvals' : `bench-bare-${tag}`;
    const prefix = mode === 'warden' ? `warden/bench-approvals/${tag}-` : `bench-bare-approval/${tag}-`;
    const count = async (status: string) => (await client.workflow.count(`WardenAgent = '${agent}' AND WardenStatus = '${status}' AND WorkflowId STARTS_WITH '${prefix}'`)).count;
    const warden = new WardenClient(client, taskQueue);
    const script = [{ toolCalls: [{ name: 'pay', args: { amount: 5 } }] }, { text: 'paid' }];

    const started = performance.now();
    const ids = await inBatches(indices(K), (i) =>
      mode === 'warden'
        ? warden.startRun({ agent: 'bench-approvals', goal: 'pay', requester: 'carol', key: `${tag}-${i}`, script })
        : client.workflow.start(bareApproval, { taskQueue, workflowId: `${prefix}${i}`, args: [agent] }).then((h) => h.workflowId),
    );
    await until(`${K} ${mode} runs to wait`, async () => (await count('awaiting_approval')) >= K);
    const startMs = performance.now() - started;

    // Every approval id from one listing of the runs' memos (not timed: it is the same with either worker count).
    const pending = mode === 'warden' ? new Map((await warden.listPendingApprovals()).approvals.map((a) => [a.runId, a] as const)) : null;
    const approveStarted = performance.now();
    await inBatches(ids, async (runId) => {
      if (!pending) {
        await client.workflow.getHandle(runId).executeUpdate(bareApproveUpdate, { args: ['alice'] });
        return;
      }
      const approval = pending.get(runId);
      if (!approval) throw new Error(`bench: ${runId} has no pending approval`);
      const signature = signer.sign({ approvalId: approval.approvalId, runId, decision: 'approve', approver: 'alice', groups: ['finance'], channel: 'web' });
      const reply = await warden.approve(runId, { approvalId: approval.approvalId, approver: 'alice', signature });
      if (reply.status !== 'accepted') throw new Error(`bench: approval of ${runId} refused: ${reply.reason}`);
    });
    await until(`${K} ${mode} runs to complete`, async () => (await count('completed')) >= K);
    const approveMs = performance.now() - approveStarted;
    const [server1, postgres1] = [cpuMsOf(cluster.serverPid), postgresCpuMs(cluster)];
    const perRun = (a: number | null, b: number | null) => (a === null || b === null ? null : (b - a) / K);
    return { mode, workers: workerCount, startMs, approveMs, cpu: { workers: ((await workerCpu()) - cpu0.workers) / K, server: perRun(cpu0.server, server1), postgres: perRun(cpu0.postgres, postgres1) } };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

async function main(): Promise<void> {
  const unavailable = clusterUnavailable();
  if (unavailable) throw new Error(`bench:cluster needs the cluster: ${unavailable}`);
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const tempDir = mkdtempSync(path.join(os.tmpdir(), 'warden-bench-cluster-'));
  // PostgreSQL may run as another user (this process is root): it must reach the cluster's directory.
  chmodSync(tempDir, 0o755);
  const dir = path.join(tempDir, 'cluster');
  const fsync = process.env.BENCH_CLUSTER_FSYNC !== 'off';
  const upStarted = performance.now();
  let cluster: Cluster;
  try {
    cluster = await upCluster({ dir, fsync, ui: false, log: (msg) => process.stderr.write(`[cluster] ${msg}\n`) });
  } catch (err) {
    // Whatever did start (PostgreSQL) goes with the directory.
    await downCluster({ dir, purge: true, log: () => {} }).catch(() => undefined);
    rmSync(tempDir, { recursive: true, force: true });
    throw err;
  }
  const upMs = performance.now() - upStarted;
  const results: Waiting[] = [];
  let calls: PerCall | null = null;
  try {
    const { code } = await bundleWardenWorkflows({ workflowsPath: require.resolve('./workflows'), logger: new DefaultLogger('WARN') });
    const bundlePath = path.join(tempDir, 'workflow-bundle.js');
    writeFileSync(bundlePath, code);
    if (N > 0) calls = await perCall(cluster, code, tempDir);

    const admin = new pg.Client({ connectionString: cluster.postgresUrl('postgres') });
    await admin.connect();
    await admin.query('CREATE DATABASE bench_runs');
    await admin.end();
    const storeUrl = cluster.postgresUrl('bench_runs');
    const client = new Client({ connection: await Connection.connect({ address: cluster.address }), namespace: cluster.namespace });
    try {
      // Temporal alone, then Warden, per worker count: each pair side by side.
      for (const workers of WORKER_COUNTS) {
        if (K <= 0) break;
        for (const mode of ['bare', 'warden'] as const) {
          process.stderr.write(`[bench] ${K} waiting runs, ${mode === 'bare' ? 'Temporal alone' : 'Warden'}, ${workers} worker process${workers === 1 ? '' : 'es'}\n`);
          results.push(await waiting(cluster, client, mode, workers, bundlePath, storeUrl));
        }
      }
    } finally {
      await client.connection.close();
    }
  } finally {
    await downCluster({ dir, purge: true, log: () => {} });
    rmSync(tempDir, { recursive: true, force: true });
  }

  console.log(
    `\nTemporal ${cluster.version} built from its module: ${cluster.shards} history shards, PostgreSQL persistence and visibility (fsync ${fsync ? 'on' : 'off'}), one server process; up in ${(upMs / 1000).toFixed(1)} s; ${os.cpus().length} CPUs, load average ${os.loadavg()[0]?.toFixed(1)} at the end`,
  );
  if (calls) {
    console.log(`\n1. one run of ${N} sequential no-op tool calls, one worker in the bench process; medians of ${ROUNDS} rounds\n`);
    console.log(`   ms per call: bare loop ${calls.bare.toFixed(1)}, agent loop (Temporal alone) ${calls.loop.toFixed(1)}, governed (Warden) ${calls.governed.toFixed(1)}; governed ÷ agent loop ${calls.ratio.toFixed(2)}`);
  }
  if (results.length > 0) {
    console.log(`\n2. ${K} runs waiting for one approval each, started and approved 50 at a time; worker processes started as \`warden worker\` starts (${WORKER_TUNING}), cache ${DEFAULT_MAX_CACHED_RUNS} runs each; Warden's on one PostgreSQL run store\n`);
    console.log('   workers | runtime        | starts/s (all waiting) | approvals/s (all completed) | CPU ms per run: workers / server / PostgreSQL');
    for (const r of results) {
      const fmt = (x: number | null) => (x === null ? '?' : x.toFixed(1));
      console.log(
        `   ${String(r.workers).padEnd(7)} | ${(r.mode === 'warden' ? 'Warden' : 'Temporal alone').padEnd(14)} | ${`${((K * 1000) / r.startMs).toFixed(1)} (${(r.startMs / 1000).toFixed(1)} s)`.padEnd(22)} | ${`${((K * 1000) / r.approveMs).toFixed(1)} (${(r.approveMs / 1000).toFixed(1)} s)`.padEnd(27)} | ${fmt(r.cpu.workers)} / ${fmt(r.cpu.server)} / ${fmt(r.cpu.postgres)}`,
      );
    }
    console.log();
    for (const workers of WORKER_COUNTS) {
      const w = results.find((r) => r.mode === 'warden' && r.workers === workers);
      const b = results.find((r) => r.mode === 'bare' && r.workers === workers);
      if (w && b) console.log(`   ${workers} worker${workers === 1 ? '' : 's'}: Warden ÷ Temporal alone, time to all waiting ${(w.startMs / b.startMs).toFixed(2)}, to all completed ${(w.approveMs / b.approveMs).toFixed(2)}`);
    }
    const [one, two] = [...WORKER_COUNTS].sort((a, b) => a - b);
    for (const mode of ['warden', 'bare'] as const) {
      const a = results.find((r) => r.mode === mode && r.workers === one);
      const b = results.find((r) => r.mode === mode && r.workers === two);
      if (a && b && one !== two) console.log(`   ${mode === 'warden' ? 'Warden' : 'Temporal alone'}, ${two} workers ÷ ${one}: starts/s ${(a.startMs / b.startMs).toFixed(2)}×, approvals/s ${(a.approveMs / b.approveMs).toFixed(2)}×`);
    }
  }
  console.log();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
