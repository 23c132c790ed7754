/**
 * What a user needs to test their agents against a real Temporal dev server: `startTestEnvironment`
 * starts one (the same binary lookup as `warden dev`), a worker for the given agents and policies,
 * and a client, in this process. Import it from `warden/testing`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DefaultLogger, Runtime, type NativeConnection, type Worker } from '@temporalio/worker';
import type { PayloadCodec } from '@temporalio/common';
import pino from 'pino';
import { AgentRegistry, type Agent } from './agents';
import { WardenClient } from './client';
import { LOCAL_TEMPORAL, type TemporalSettings } from './config';
import { startDevServer, type DevServer } from './dev-server';
import { parsePolicy, type Keyring, type Policy, type PolicyInput } from './governance';
import { createSqliteStore, type RunStore } from './store';
import { connectWorker, createWardenWorker, type WardenWorkerOptions } from './worker';

export { startDevServer } from './dev-server';
export type { DevServer, DevServerOptions } from './dev-server';

export interface TestEnvironmentOptions {
  /** The agents the worker runs. */
  agents: Agent[];
  /** Their policies (parsed, or the object a policy file holds); an agent without one fails its runs. */
  policies: (Policy | PolicyInput)[];
  /** A running server to use instead of starting one (a suite's shared server). */
  settings?: TemporalSettings;
  /** Default: a task queue of its own, so environments on one server do not take each other's runs. */
  taskQueue?: string;
  /** Whose signed decisions count; default none. */
  keyring?: Keyring | (() => Keyring);
  /** Count unsigned approve/reject messages (the usual choice in tests). Default true. */
  allowUnsignedDecisions?: boolean;
  /** Count unsigned resume, rollback and applyPolicy signals (the usual choice in tests). Default true. */
  allowUnsignedOperators?: boolean;
  /** What the worker and the client encrypt payloads with; default none (payloads in clear). */
  payloadCodec?: PayloadCodec;
  /** Anything else the worker takes. */
  worker?: Partial<Omit<WardenWorkerOptions, 'registry' | 'store' | 'connection' | 'settings' | 'taskQueue'>>;
}

/** A dev server (unless one was given), a worker for the agents, a run store in a temp directory and a client. */
export interface TestEnvironment {
  client: WardenClient;
  worker: Worker;
  store: RunStore;
  settings: TemporalSettings;
  taskQueue: string;
  /** The server this environment started, or null when it was given `settings`. */
  server: DevServer | null;
  /** Stops the worker, closes the client and the store, stops the server it started, removes its files. */
  close(): Promise<void>;
}

let runtimeInstalled = false;

/**
 * Starts a test environment for agents. Slow by nature (a server start and a webpack bundle of
 * the workflows take seconds): start one per test file, in `beforeAll`, and `close()` it in `afterAll`.
 */
export async function startTestEnvironment(options: TestEnvironmentOptions): Promise<TestEnvironment> {
  if (!runtimeInstalled) {
    // Quiet Temporal core logs; the worker's own logger says what matters.
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-testing-'));
  const server = options.settings ? null : await startDevServer({ headless: true, log: () => {} });
  const settings: TemporalSettings = options.settings ?? (server ? { address: server.address, namespace: server.namespace } : LOCAL_TEMPORAL);
  const taskQueue = options.taskQueue ?? `warden-test-${Math.random().toString(36).slice(2, 10)}`;
  const registry = new AgentRegistry(options.agents, options.policies.map((p, i) => ({ policy: parsePolicy(p, `policy ${i + 1}`), source: `policy ${i + 1}` })));
  const store = createSqliteStore(path.join(dir, 'warden.db'));
  let connection: NativeConnection | undefined;
  let client: WardenClient | undefined;
  try {
    connection = await connectWorker(settings);
    const worker = await createWardenWorker({
      logger: pino({ name: 'warden-worker', level: 'warn' }),
      allowUnsignedDecisions: options.allowUnsignedDecisions ?? true,
      allowUnsignedOperators: options.allowUnsignedOperators ?? true,
      ...options.worker,
      ...(options.keyring ? { keyring: options.keyring } : {}),
      ...(options.payloadCodec ? { payloadCodec: options.payloadCodec } : {}),
      registry,
      store,
      connection,
      settings,
      taskQueue,
    });
    const running = worker.run();
    client = await WardenClient.connect(settings, taskQueue, options.payloadCodec ? { payloadCodec: options.payloadCodec } : {});
    const openConnection = connection;
    const openClient = client;
    let closing: Promise<void> | null = null;
    return {
      client,
      worker,
      store,
      settings,
      taskQueue,
      server,
      close: () =>
        (closing ??= (async () => {
          worker.shutdown();
          await running.catch(() => undefined);
          await openClient.close().catch(() => undefined);
          await openConnection.close().catch(() => undefined);
          await store.close();
          await server?.stop();
          rmSync(dir, { recursive: true, force: true });
        })()),
    };
  } catch (err) {
    await client?.close().catch(() => undefined);
    await connection?.close().catch(() => undefined);
    await store.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
