/**
 * The worker of the waiting-approvals scenario, in a process of its own so its resident memory
 * is the worker's alone (the bench's client, its run ids and the other scenarios are elsewhere).
 * Started by bench/run.ts and bench/memory.ts with `fork`. Answers `{ rss: true }` with its RSS
 * after a full GC, `{ memory: true }` with where that memory is (`WorkerMemory`), and
 * `{ peak: true }` with the highest RSS sampled (every 50 ms) since the last `peak`, and
 * `{ cpu: true }` with the CPU time (user + system, ms) the process has used so far.
 * argv: server address, task queue, workflow bundle path, store (a SQLite path or a PostgreSQL URL),
 * trusted public key (hex).
 * Environment: BENCH_MAX_CACHED (maxCachedWorkflows), BENCH_THREADS (workflowThreadPoolSize),
 * BENCH_MAX_WFT (maxConcurrentWorkflowTaskExecutions), BENCH_REUSE=0 (reuseV8Context off);
 * BENCH_SNAPSHOT_DIR: `{ memory: true }` also writes heap snapshots of the main thread and of
 * every workflow thread there. BENCH_MODE=bare: a plain Temporal worker with the baselines'
 * activities (bench/bare-activities.ts) instead of a Warden worker, for `bareApproval` runs.
 */
import path from 'node:path';
import v8 from 'node:v8';
import workerThreads, { MessageChannel, type MessagePort } from 'node:worker_threads';
import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import pino from 'pino';
import { AgentRegistry } from '../src/agents';
import { openRunStore } from '../src/store';
import { createWardenWorker, DEFAULT_MAX_CACHED_RUNS } from '../src/worker';
import { approvalAgent, approvalPolicy } from './agents';
import { bareActivities } from './bare-activities';

/** One V8 heap: used and total (committed) bytes, and what V8 allocated outside it with malloc. */
export interface HeapFigures {
  usedMb: number;
  totalMb: number;
  mallocedMb: number;
  /** Committed MB of each heap space (new_space, old_space, code_space, large_object_space, …). */
  spacesMb: Record<string, number>;
}

/** The worker process's memory after a full GC in every thread, in MB. */
export interface WorkerMemory {
  /** RSS as found, then after the GCs. */
  rssBeforeGcMb: number;
  rssMb: number;
  main: HeapFigures;
  /** Buffers and ArrayBuffers of the main thread (`process.memoryUsage()`). */
  externalMb: number;
  arrayBuffersMb: number;
  /** One entry per workflow thread (`workflowThreadPoolSize`). */
  threads: HeapFigures[];
  /** RSS minus every heap's committed size: the Rust core, SQLite, malloc arenas, code, stacks. */
  nativeMb: number;
  snapshots?: string[];
}

const mb = (bytes: number) => bytes / 1024 / 1024;
const figures = (h: v8.HeapInfo, spaces: v8.HeapSpaceInfo[]): HeapFigures => ({
  usedMb: mb(h.used_heap_size),
  totalMb: mb(h.total_heap_size),
  mallocedMb: mb(h.malloced_memory),
  spacesMb: Object.fromEntries(spaces.map((s) => [s.space_name, +mb(s.space_size).toFixed(1)])),
});

/**
 * Every workflow thread the SDK starts is started through a small script that first opens a port
 * of its own to this thread: it answers with its heap figures after a GC (Node 20 has no
 * `Worker.getHeapStatistics`), and writes a heap snapshot when asked. The SDK's messages keep the
 * thread's `parentPort` to themselves.
 */
const threadPorts: MessagePort[] = [];
const THREAD_PROBE = `
const { workerData } = require('node:worker_threads');
const v8 = require('node:v8');
workerData.__benchProbe.on('message', (m) => {
  globalThis.gc?.();
  const snapshot = m.snapshot ? v8.writeHeapSnapshot(m.snapshot) : undefined;
  workerData.__benchProbe.postMessage({ heap: v8.getHeapStatistics(), spaces: v8.getHeapSpaceStatistics(), snapshot });
});
workerData.__benchProbe.unref();
require(workerData.__benchTarget);
`;
function probeWorkflowThreads(): void {
  const Original = workerThreads.Worker;
  class Probed extends Original {
    constructor(filename: string | URL, options: workerThreads.WorkerOptions = {}) {
      const { port1, port2 } = new MessageChannel();
      threadPorts.push(port1);
      port1.unref();
      super(THREAD_PROBE, { ...options, eval: true, workerData: { ...(options.workerData as object), __benchTarget: String(filename), __benchProbe: port2 }, transferList: [...(options.transferList ?? []), port2] });
    }
  }
  (workerThreads as { Worker: typeof Original }).Worker = Probed;
}

async function threadHeap(port: MessagePort, snapshot?: string): Promise<{ heap: v8.HeapInfo; spaces: v8.HeapSpaceInfo[]; snapshot?: string }> {
  return new Promise((resolve) => {
    port.once('message', resolve);
    port.postMessage({ snapshot });
  });
}

async function memory(): Promise<WorkerMemory> {
  const rssBeforeGcMb = mb(process.memoryUsage.rss());
  const dir = process.env.BENCH_SNAPSHOT_DIR;
  const stamp = Date.now().toString(36);
  const threads = await Promise.all(threadPorts.map((port, i) => threadHeap(port, dir ? path.join(dir, `thread-${i}-${stamp}.heapsnapshot`) : undefined)));
  global.gc?.();
  const mainSnapshot = dir ? v8.writeHeapSnapshot(path.join(dir, `main-${stamp}.heapsnapshot`)) : undefined;
  global.gc?.();
  const usage = process.memoryUsage();
  const main = v8.getHeapStatistics();
  const heapsMb = mb(main.total_heap_size) + threads.reduce((sum, t) => sum + mb(t.heap.total_heap_size), 0);
  return {
    rssBeforeGcMb,
    rssMb: mb(usage.rss),
    main: figures(main, v8.getHeapSpaceStatistics()),
    externalMb: mb(usage.external),
    arrayBuffersMb: mb(usage.arrayBuffers),
    threads: threads.map((t) => figures(t.heap, t.spaces)),
    nativeMb: mb(usage.rss) - heapsMb,
    ...(dir ? { snapshots: [mainSnapshot ?? '', ...threads.map((t) => t.snapshot ?? '')] } : {}),
  };
}

const numberFromEnv = (name: string): number | undefined => (process.env[name] ? Number(process.env[name]) : undefined);

async function main(): Promise<void> {
  const [address, taskQueue, bundlePath, storePath, publicKey] = process.argv.slice(2);
  if (!address || !taskQueue || !bundlePath || !storePath || !publicKey) throw new Error('usage: approval-worker <address> <task queue> <bundle> <store> <public key>');
  probeWorkflowThreads();
  Runtime.install({ logger: new DefaultLogger('WARN') });
  let peakMb = 0;
  const sampler = setInterval(() => (peakMb = Math.max(peakMb, mb(process.memoryUsage.rss()))), 50);
  sampler.unref();
  // A PostgreSQL URL when several worker processes share one run store (bench/cluster.ts).
  const store = await openRunStore(storePath, { poolSize: 4 });
  const connection = await NativeConnection.connect({ address });
  const threads = numberFromEnv('BENCH_THREADS');
  const maxWft = numberFromEnv('BENCH_MAX_WFT');
  const workerOptions: Partial<WorkerOptions> = {
    maxCachedWorkflows: numberFromEnv('BENCH_MAX_CACHED') ?? DEFAULT_MAX_CACHED_RUNS,
    ...(threads ? { workflowThreadPoolSize: threads } : {}),
    ...(maxWft ? { maxConcurrentWorkflowTaskExecutions: maxWft } : {}),
    ...(process.env.BENCH_REUSE === '0' ? { reuseV8Context: false } : {}),
  };
  const worker =
    process.env.BENCH_MODE === 'bare'
      ? await Worker.create({ connection, taskQueue, workflowBundle: { codePath: bundlePath }, activities: bareActivities, ...workerOptions })
      : await createWardenWorker({
          registry: new AgentRegistry([approvalAgent], [{ policy: approvalPolicy, source: 'bench' }]),
          store,
          connection,
          settings: { address, namespace: 'default' },
          taskQueue,
          logger: pino({ level: 'silent' }),
          workflowBundle: { codePath: bundlePath },
          keyring: { 'bench-web': { publicKey, channel: 'web', people: '*', revoked: false } },
          slack: null,
          workerOptions,
        });
  process.on('message', (message: { rss?: boolean; memory?: boolean; peak?: boolean; cpu?: boolean; stop?: boolean }) => {
    if (message.rss) {
      global.gc?.();
      process.send?.({ rssMb: mb(process.memoryUsage().rss) });
    }
    if (message.memory) void memory().then((m) => process.send?.({ memory: m }));
    if (message.peak) {
      process.send?.({ peakMb: Math.max(peakMb, mb(process.memoryUsage.rss())) });
      peakMb = 0;
    }
    if (message.cpu) {
      const { user, system } = process.cpuUsage();
      process.send?.({ cpuMs: (user + system) / 1000 });
    }
    if (message.stop) worker.shutdown();
  });
  await worker.runUntil(async () => {
    process.send?.({ ready: true });
    await new Promise<void>((resolve) => process.once('disconnect', resolve));
  });
  await connection.close();
  await store.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
