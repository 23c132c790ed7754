import { chmodSync, copyFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PayloadCodec } from '@temporalio/common';
import { Runtime, DefaultLogger, NativeConnection, type Worker } from '@temporalio/worker';
import pino, { type Logger } from 'pino';
import { AgentRegistry, type Agent } from '../src/agents';
import { WardenClient } from '../src/client';
import { EncryptionCodec, loadPayloadKeys } from '../src/codec';
import { parsePolicy, type Keyring, type Policy, type PolicyInput } from '../src/governance';
import { createSqliteStore, type RunStore } from '../src/store';
import { createWardenWorker, type WardenWorkerOptions } from '../src/worker';
import type { WardenTelemetry } from '../src/telemetry';
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

let payloadKeysCopy: string | undefined;

/**
 * The suite's fixed payload key file (`test/fixtures/payload-keys.json`), copied once to a temp
 * file of mode 0600: git keeps no mode but the executable bit, and a key file others may read is
 * refused. The recorded histories in `test/histories` are encrypted with this key.
 */
export function testPayloadKeysFile(): string {
  if (!payloadKeysCopy) {
    payloadKeysCopy = path.join(mkdtempSync(path.join(os.tmpdir(), 'warden-payload-keys-')), 'payload-keys.json');
    copyFileSync(path.join(__dirname, 'fixtures', 'payload-keys.json'), payloadKeysCopy);
    chmodSync(payloadKeysCopy, 0o600);
  }
  return payloadKeysCopy;
}

/** The codec of `testPayloadKeysFile()`: what every test bed encrypts with unless told otherwise. */
export function testPayloadCodec(): EncryptionCodec {
  return new EncryptionCodec(loadPayloadKeys(testPayloadKeysFile()));
}

/**
 * `payloadCodec`: what the bed's worker and client encrypt with; default `testPayloadCodec()`, `null` for payloads in clear.
 * With the default, `WARDEN_PAYLOAD_KEYS` is set to the test key file (unless set already) so `warden` child processes read the same payloads.
 */
export interface TestBedOptions {
  agents?: Agent[];
  policies?: Policy[];
  storePath?: string;
  /** The worker's trusted keys; a function is read on every decision (revocation tests). Default: none. */
  keyring?: Keyring | (() => Keyring);
  /** Count unsigned decisions (as typed into the Temporal UI). Off unless a test says so. */
  allowUnsignedDecisions?: boolean;
  /** Count resume, rollback and applyPolicy without a signed operator command. Off unless a test says so. */
  allowUnsignedOperators?: boolean;
  /** Let start inputs bring their own policy, as most tests do. Default on; security tests turn it off. */
  acceptRunInputPolicy?: boolean;
  limits?: WardenWorkerOptions['limits'];
  taskQueue?: string;
  slack?: { botToken: string; slackApiUrl?: string };
  payloadCodec?: PayloadCodec | null;
  /** Take unencrypted payloads although the worker holds a payload key (the migration setting). Off unless a test says so. */
  acceptPlaintextPayloads?: boolean;
  /** Traces and metrics of the bed's worker and client. */
  telemetry?: WardenTelemetry;
  /** A workflow bundle instead of the suite's (`WARDEN_TEST_WORKFLOW_BUNDLE`); `null`: the worker bundles the workflows itself. */
  workflowBundle?: { codePath: string } | { code: string } | null;
  /** The worker's logger; default silent. */
  logger?: Logger;
  /** More Temporal worker options, over the bed's own. */
  workerOptions?: WardenWorkerOptions['workerOptions'];
  /** The worker's fleet quotas and rate limits, and its default tenant. */
  fleet?: WardenWorkerOptions['fleet'];
  defaultTenant?: string;
}

export async function createTestBed(options: TestBedOptions = {}): Promise<TestBed> {
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
  if (options.payloadCodec === undefined) process.env.WARDEN_PAYLOAD_KEYS ??= testPayloadKeysFile();
  const payloadCodec = options.payloadCodec === undefined ? testPayloadCodec() : (options.payloadCodec ?? undefined);
  const client = await WardenClient.connect({ address, namespace }, taskQueue, { payloadCodec, ...(options.telemetry ? { telemetry: options.telemetry } : {}) });
  const logger = options.logger ?? pino({ level: 'silent' });
  const codePath = process.env.WARDEN_TEST_WORKFLOW_BUNDLE;
  const workflowBundle = options.workflowBundle === undefined ? (codePath ? { codePath } : undefined) : (options.workflowBundle ?? undefined);
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
        workflowBundle,
        keyring: options.keyring ?? {},
        allowUnsignedDecisions: options.allowUnsignedDecisions ?? false,
        allowUnsignedOperators: options.allowUnsignedOperators ?? false,
        acceptRunInputPolicy: options.acceptRunInputPolicy ?? true,
        ...(options.limits ? { limits: options.limits } : {}),
        slack: options.slack ?? null,
        workerOptions: { shutdownGraceTime: '1s', ...options.workerOptions },
        payloadCodec,
        ...(options.acceptPlaintextPayloads ? { acceptPlaintextPayloads: true } : {}),
        ...(options.telemetry ? { telemetry: options.telemetry } : {}),
        ...(options.fleet ? { fleet: options.fleet } : {}),
        ...(options.defaultTenant !== undefined ? { defaultTenant: options.defaultTenant } : {}),
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

/** Transfers wait for `group:finance`; everything else is allowed. */
export function financeApprovalPolicy(approval: Partial<NonNullable<NonNullable<PolicyInput['rules']>[number]['approval']>> = {}): Policy {
  return testPolicy({
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
