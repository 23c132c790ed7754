/**
 * `npm run bench:memory`: where a worker's memory goes while K runs wait for approval (issue 9:
 * 1,000 waiting runs in at most 250 MB of worker RSS), for several worker configurations side by
 * side in one session. Each configuration runs in a worker process of its own
 * (bench/approval-worker.ts) against one dev server: K runs started (50 at a time) until all
 * wait, then every approval signed and sent as an Update until all completed.
 *
 * Per configuration: RSS after a GC before any run; the highest RSS while the runs start; RSS
 * while they wait, as found and after a full GC in every thread, split into the main thread's V8
 * heap, its Buffers/ArrayBuffers, each workflow thread's heap and the rest (native: the Rust
 * core, SQLite, malloc arenas); the time from the first approval to all completed (what a smaller
 * cache costs: runs replayed); RSS after.
 *
 * BENCH_K (default 1000) sets K. BENCH_CONFIGS lists configurations, `;` between them, each
 * `key=value` pairs joined by `,`: cache (maxCachedWorkflows), threads (workflowThreadPoolSize),
 * wft (maxConcurrentWorkflowTaskExecutions), reuse=0 (reuseV8Context off), arena
 * (MALLOC_ARENA_MAX of the worker process), semi (V8 --max-semi-space-size, MB), preload=0 (the
 * bundle without src/workflows/shared-modules.ts preloaded, as bench/run.ts bundles it), v8=FLAG
 * (any V8 flag without value, e.g. v8=optimize-for-size), tuning=off (Node's defaults instead of
 * the flags and malloc arenas `warden worker` starts its process with, bin/worker-process.js); an
 * empty configuration is the defaults of `warden worker`.
 * BENCH_ROUNDS (1) repeats the list, alternating. BENCH_APPROVE=0 skips the approve phase (runs
 * are terminated). BENCH_SNAPSHOT_DIR writes heap snapshots of every thread while the runs wait.
 */
import { forkApprovalWorker, type BenchWorker } from './worker-process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, Runtime } from '@temporalio/worker';
import { WardenClient } from '../src/client';
import { startDevServer } from '../src/dev-server';
import { DecisionSigner } from '../src/approvals/signing-keys';
import { generateSigningKey } from '../src/governance';
import { bundleWardenWorkflows, DEFAULT_MAX_CACHED_RUNS } from '../src/worker';
import { FAILURE_CONVERTER_PATH, WORKFLOWS_PATH } from '../src/worker/bundle';
import type { WorkerMemory } from './approval-worker';

const key = generateSigningKey();
const signer = new DecisionSigner({ keyId: 'bench-web', privateKey: key.privateKey, publicKey: key.publicKey });
const DEFAULT_CONFIGS = `cache=${DEFAULT_MAX_CACHED_RUNS};cache=25;cache=${DEFAULT_MAX_CACHED_RUNS},tuning=off`;
const ENV_OF: Record<string, string> = { cache: 'BENCH_MAX_CACHED', threads: 'BENCH_THREADS', wft: 'BENCH_MAX_WFT', reuse: 'BENCH_REUSE', arena: 'MALLOC_ARENA_MAX' };
/** Settings that are Node/V8 flags of the worker process. */
const FLAG_OF: Record<string, string> = { semi: '--max-semi-space-size' };
/** `preload=0`: the workflow bundle without the shared modules (each run loads its own copy, as a bundle made by `bundleWorkflowCode` alone). */
const bundles = new Map<boolean, Promise<string>>();
function bundleFor(config: string, dir: string): Promise<string> {
  const preload = !config.split(',').includes('preload=0');
  let bundle = bundles.get(preload);
  if (!bundle) {
    const file = path.join(dir, preload ? 'workflow-bundle.js' : 'workflow-bundle-unshared.js');
    const logger = new DefaultLogger('WARN');
    bundle = (preload ? bundleWardenWorkflows({ logger }) : bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, failureConverterPath: FAILURE_CONVERTER_PATH, logger })).then(({ code }) => {
      writeFileSync(file, code);
      return file;
    });
    bundles.set(preload, bundle);
  }
  return bundle;
}

interface Result {
  config: string;
  before: WorkerMemory;
  startPeakMb: number;
  startMs: number;
  waiting: WorkerMemory;
  approveMs: number | null;
  approvePeakMb: number;
  after: WorkerMemory;
}

function settingsOf(config: string): { env: NodeJS.ProcessEnv; flags: string[]; tuned: boolean } {
  const env: NodeJS.ProcessEnv = { ...process.env };
  const flags: string[] = [];
  let tuned = true;
  for (const pair of config.split(',').filter(Boolean)) {
    const [name = '', value = ''] = pair.split('=');
    const variable = ENV_OF[name];
    const flag = FLAG_OF[name];
    if (name === 'preload') continue;
    if (name === 'tuning') tuned = value !== 'off';
    else if (name === 'v8') flags.push(`--${value}`);
    else if (variable) env[variable] = value;
    else if (flag) flags.push(`${flag}=${value}`);
    else throw new Error(`bench: unknown setting ${name} (one of ${[...Object.keys(ENV_OF), ...Object.keys(FLAG_OF), 'v8', 'preload', 'tuning'].join(', ')})`);
  }
  return { env, flags, tuned };
}

function startWorker(config: string, address: string, taskQueue: string, bundlePath: string, storePath: string): Promise<BenchWorker> {
  const { env, flags, tuned } = settingsOf(config);
  return forkApprovalWorker({ address, taskQueue, bundlePath, storePath, publicKey: key.publicKey, env, flags, tuned });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 1_200_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function measure(config: string, client: Client, address: string, dir: string, index: number, k: number): Promise<Result> {
  const taskQueue = `bench-memory-${index}`;
  const bundlePath = await bundleFor(config, dir);
  const worker = await startWorker(config, address, taskQueue, bundlePath, path.join(dir, `store-${index}.db`));
  const warden = new WardenClient(client, taskQueue);
  const tag = `${Date.now().toString(36)}-${index}`;
  const count = async (status: string) => (await client.workflow.count(`WardenAgent = 'bench-approvals' AND WardenStatus = '${status}' AND WorkflowId STARTS_WITH 'warden/bench-approvals/${tag}-'`)).count;
  try {
    const before = await worker.ask<WorkerMemory>({ memory: true }, 'memory');
    await worker.ask<number>({ peak: true }, 'peakMb');
    const script = [{ toolCalls: [{ name: 'pay', args: { amount: 5 } }] }, { text: 'paid' }];
    const started = performance.now();
    const runIds: string[] = [];
    for (let from = 0; from < k; from += 50) {
      runIds.push(...(await Promise.all(Array.from({ length: Math.min(50, k - from) }, (_, i) => warden.startRun({ agent: 'bench-approvals', goal: 'pay', requester: 'carol', key: `${tag}-${from + i}`, script })))));
    }
    await until(`${k} runs to wait`, async () => (await count('awaiting_approval')) >= k);
    const startMs = performance.now() - started;
    const startPeakMb = await worker.ask<number>({ peak: true }, 'peakMb');
    const waiting = await worker.ask<WorkerMemory>({ memory: true }, 'memory');
    let approveMs: number | null = null;
    const approveStarted = performance.now();
    if (process.env.BENCH_APPROVE === '0') {
      for (let from = 0; from < k; from += 50) await Promise.all(runIds.slice(from, from + 50).map((runId) => warden.client.workflow.getHandle(runId).terminate('bench')));
    } else {
      const mine = new Set(runIds);
      const pending = (await warden.listPendingApprovals()).approvals.filter((a) => mine.has(a.runId));
      if (pending.length < k) throw new Error(`bench: ${pending.length} of ${k} runs list a pending approval`);
      for (let from = 0; from < pending.length; from += 50) {
        await Promise.all(
          pending.slice(from, from + 50).map(async ({ runId, approvalId }) => {
            const signature = signer.sign({ approvalId, runId, decision: 'approve', approver: 'alice', groups: ['finance'], channel: 'web' });
            const reply = await warden.approve(runId, { approvalId, approver: 'alice', signature });
            if (reply.status !== 'accepted') throw new Error(`bench: approval of ${runId} refused: ${reply.reason}`);
          }),
        );
      }
      await until(`${k} runs to complete`, async () => (await count('completed')) >= k);
      approveMs = performance.now() - approveStarted;
    }
    const approvePeakMb = await worker.ask<number>({ peak: true }, 'peakMb');
    const after = await worker.ask<WorkerMemory>({ memory: true }, 'memory');
    return { config, before, startPeakMb, startMs, waiting, approveMs, approvePeakMb, after };
  } finally {
    await worker.stop();
  }
}

const f = (n: number) => n.toFixed(0);

function print(r: Result, k: number): void {
  const w = r.waiting;
  const threads = w.threads.map((t) => `${f(t.usedMb)}/${f(t.totalMb)}`).join(' + ');
  console.log(
    `${(r.config || 'defaults').padEnd(22)} | ${f(r.before.rssMb).padStart(6)} | ${f(r.startPeakMb).padStart(10)} | ${`${f(w.rssBeforeGcMb)} → ${f(w.rssMb)}`.padStart(11)} | ${(((w.rssMb - r.before.rssMb) * 1024) / k).toFixed(0).padStart(7)} | ` +
      `${`${f(w.main.usedMb)}/${f(w.main.totalMb)}`.padStart(10)} | ${`${f(w.externalMb)}/${f(w.arrayBuffersMb)}`.padStart(8)} | ${threads.padStart(12)} | ${f(w.nativeMb).padStart(6)} | ` +
      `${(r.startMs / k).toFixed(1).padStart(8)} | ${(r.approveMs === null ? '-' : (r.approveMs / k).toFixed(1)).padStart(10)} | ${f(r.approvePeakMb).padStart(9)} | ${f(r.after.rssMb).padStart(5)}`,
  );
}

async function main(): Promise<void> {
  const k = Number(process.env.BENCH_K ?? '1000');
  const configs = (process.env.BENCH_CONFIGS ?? DEFAULT_CONFIGS).split(';').map((c) => c.trim());
  const rounds = Number(process.env.BENCH_ROUNDS ?? '1');
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const server = await startDevServer({ headless: true, log: () => {}, extraArgs: (process.env.BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean) });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-bench-memory-'));
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  console.log(`\n${k} runs waiting for approval, worker in its own process, one dev server; MB unless said otherwise, heaps used/total\n`);
  console.log(
    'configuration          | before | start peak | waiting GC  | KB/run  | main heap  | ext/AB   | wf threads   | native | ms/start | ms/approve | appr peak | after',
  );
  const results: Result[] = [];
  try {
    let index = 0;
    for (let round = 0; round < rounds; round++) {
      for (const config of configs) {
        const r = await measure(config, client, server.address, dir, index++, k);
        results.push(r);
        print(r, k);
      }
    }
  } finally {
    await client.connection.close();
    await server.stop();
  }
  console.log(
    '\nbefore: RSS after a GC, before any run. start peak: highest RSS sampled while the runs start. waiting GC: RSS while all wait, as found → after a GC in every thread;' +
      ' KB/run from that and before. native: RSS minus every heap (Rust core, SQLite, malloc arenas, code). ms/approve: first approval to all completed, per run.\n',
  );
  if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify(results, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
