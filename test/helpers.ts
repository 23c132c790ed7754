import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Runtime, DefaultLogger, NativeConnection, type Worker } from '@temporalio/worker';
import pino from 'pino';
import { AgentRegistry, type Agent } from '../src/agents';
import { WardenClient } from '../src/client';
import { parsePolicy, type Policy, type PolicyInput } from '../src/governance';
import { createSqliteStore, type RunStore } from '../src/store';
import { createWardenWorker } from '../src/worker';
import { testAgent } from './fixtures/test-agents';

let runtimeInstalled = false;

/** A worker on its own task queue against the suite's dev server, with a client and a store. */
export interface TestBed {
  client: WardenClient;
  store: RunStore;
  storePath: string;
  taskQueue: string;
  worker: Worker;
  startWorker(): Promise<Worker>;
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

export function settings() {
  const address = process.env.WARDEN_TEST_TEMPORAL_ADDRESS;
  const namespace = process.env.WARDEN_TEST_NAMESPACE ?? 'default';
  if (!address) throw new Error('WARDEN_TEST_TEMPORAL_ADDRESS is not set: run the tests through jest (global setup starts the dev server)');
  return { address, namespace };
}

export async function createTestBed(options: { agents?: Agent[]; policies?: Policy[]; storePath?: string; trustedKeys?: Record<string, string>; taskQueue?: string; slack?: { botToken: string; slackApiUrl?: string } } = {}): Promise<TestBed> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const { address, namespace } = settings();
  const taskQueue = options.taskQueue ?? `test-${Math.random().toString(36).slice(2, 10)}`;
  const storePath = options.storePath ?? path.join(mkdtempSync(path.join(os.tmpdir(), 'warden-store-')), 'warden.db');
  const store = createSqliteStore(storePath);
  const registry = new AgentRegistry(options.agents ?? [testAgent], (options.policies ?? []).map((policy) => ({ policy, source: 'test' })));
  const connection = await NativeConnection.connect({ address });
  const client = await WardenClient.connect({ address, namespace }, taskQueue);
  const logger = pino({ level: 'silent' });
  const codePath = process.env.WARDEN_TEST_WORKFLOW_BUNDLE;
  let running: Promise<void> | null = null;
  const bed: TestBed = {
    client,
    store,
    storePath,
    taskQueue,
    worker: undefined as unknown as Worker,
    async startWorker() {
      bed.worker = await createWardenWorker({
        registry,
        store,
        connection,
        settings: { address, namespace },
        taskQueue,
        logger,
        workflowBundle: codePath ? { codePath } : undefined,
        trustedKeys: options.trustedKeys ?? {},
        slack: options.slack ?? null,
        workerOptions: { shutdownGraceTime: '1s' },
      });
      running = bed.worker.run();
      return bed.worker;
    },
    async stopWorker() {
      if (!running) return;
      bed.worker.shutdown();
      await running;
      running = null;
    },
    async close() {
      await bed.stopWorker();
      await client.close();
      await connection.close();
      await store.close();
    },
  };
  await bed.startWorker();
  return bed;
}

/** A policy for the test agent: everything allowed unless a test says otherwise. */
export function testPolicy(overrides: Partial<PolicyInput> = {}): Policy {
  return parsePolicy(
    {
      agent: 'test-agent',
      tools: { echo: {}, transfer: {}, flaky: {}, broken: {}, undo_fails: {} },
      rules: [{ id: 'allow-all', decision: 'allow', reason: 'test' }],
      allowUnsignedDecisions: true,
      ...overrides,
    },
    'test policy',
  );
}

/** Polls until `check` returns a value (not undefined/false), or fails after `ms`. */
export async function eventually<T>(check: () => Promise<T | undefined | false | null>, ms = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false && value !== null) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

/** Transfers wait for `group:finance` and only signed decisions count; everything else is allowed. */
export function financeApprovalPolicy(approval: Partial<NonNullable<NonNullable<PolicyInput['rules']>[number]['approval']>> = {}): Policy {
  return testPolicy({
    allowUnsignedDecisions: false,
    rules: [
      {
        id: 'transfers-need-finance',
        tools: ['transfer'],
        decision: 'require_approval',
        reason: 'money leaves the company',
        approval: { approvers: ['group:finance'], timeout: '10m', ...approval },
      },
      { id: 'allow-rest', decision: 'allow' },
    ],
  });
}
