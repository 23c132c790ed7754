/**
 * The worker of the waiting-approvals scenario, in a process of its own so its resident memory
 * is the worker's alone (the bench's client, its run ids and the other scenarios are elsewhere).
 * Started by bench/run.ts with `fork`; answers `{ rss: true }` with its RSS after a full GC.
 * argv: server address, task queue, workflow bundle path, store path, trusted public key (hex).
 */
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import pino from 'pino';
import { AgentRegistry } from '../src/agents';
import { createSqliteStore } from '../src/store';
import { createWardenWorker, DEFAULT_MAX_CACHED_RUNS } from '../src/worker';
import { approvalAgent, approvalPolicy } from './agents';

async function main(): Promise<void> {
  const [address, taskQueue, bundlePath, storePath, publicKey] = process.argv.slice(2);
  if (!address || !taskQueue || !bundlePath || !storePath || !publicKey) throw new Error('usage: approval-worker <address> <task queue> <bundle> <store> <public key>');
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const store = createSqliteStore(storePath);
  const connection = await NativeConnection.connect({ address });
  const worker = await createWardenWorker({
    registry: new AgentRegistry([approvalAgent], [{ policy: approvalPolicy, source: 'bench' }]),
    store,
    connection,
    settings: { address, namespace: 'default' },
    taskQueue,
    logger: pino({ level: 'silent' }),
    workflowBundle: { codePath: bundlePath },
    keyring: { 'bench-web': { publicKey, channel: 'web', people: '*', revoked: false } },
    slack: null,
    workerOptions: { maxCachedWorkflows: Number(process.env.BENCH_MAX_CACHED ?? DEFAULT_MAX_CACHED_RUNS) },
  });
  process.on('message', (message: { rss?: boolean; stop?: boolean }) => {
    if (message.rss) {
      global.gc?.();
      process.send?.({ rssMb: process.memoryUsage().rss / 1024 / 1024 });
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
