import type { PayloadCodec } from '@temporalio/common';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import pino, { type Logger } from 'pino';
import { createActivities, type RunLimits } from '../activities';
import type { AgentRegistry } from '../agents';
import { TASK_QUEUE, temporalSettingsFromEnv, type TemporalSettings } from '../config';
import type { RunStore } from '../store/types';
import { keyringFromEnv } from '../approvals/keys';
import type { Keyring } from '../governance';
import { slackNotifyActivity } from '../approvals/slack/notify';

export interface WardenWorkerOptions {
  registry: AgentRegistry;
  store: RunStore;
  /** An open connection; otherwise one is made from `settings` or the environment. */
  connection?: NativeConnection;
  settings?: TemporalSettings;
  taskQueue?: string;
  logger?: Logger;
  /** A prebuilt workflow bundle (tests, faster start); otherwise the workflows are bundled at start. */
  workflowBundle?: { codePath: string } | { code: string };
  /**
   * The keys whose signed decisions and run starts count, and what each may assert. A function is
   * called on every decision, so editing the file revokes a key for running runs too. Default:
   * the `WARDEN_TRUSTED_KEYS` file, re-read when it changes.
   */
  keyring?: Keyring | (() => Keyring);
  /** Development only: count approve/reject messages without a signature (typed into the Temporal UI). Loud in the log. */
  allowUnsignedDecisions?: boolean;
  /** Tests only: let a start input bring its own policy. Loud in the log. */
  acceptRunInputPolicy?: boolean;
  /** Size limits on what a model may propose (see `RunLimits`). */
  limits?: Partial<RunLimits>;
  /** Post approval requests to Slack (policy `approval.notify.slack.channel`); default from `SLACK_BOT_TOKEN`. */
  slack?: { botToken: string; slackApiUrl?: string } | null;
  /** Extra Temporal worker options (concurrency limits, identity, …). */
  workerOptions?: Partial<WorkerOptions>;
  /** Encrypts every payload the worker writes and decrypts what it reads (`EncryptionCodec`); clients need the same keys. None: payloads are stored in clear. */
  payloadCodec?: PayloadCodec;
}

/** How many runs a worker keeps in memory by default (`workerOptions.maxCachedWorkflows` overrides it). */
export const DEFAULT_MAX_CACHED_RUNS = 100;

const constant =
  <T>(value: T) =>
  (): T =>
    value;

/** Opens a worker connection from settings (address, namespace, TLS or API key). */
export async function connectWorker(settings: TemporalSettings = temporalSettingsFromEnv()): Promise<NativeConnection> {
  return NativeConnection.connect({ address: settings.address, tls: settings.tls, apiKey: settings.apiKey });
}

/**
 * Creates a worker that runs agent-run workflows and the activities of every agent in the
 * registry. Call `run()` on it; `shutdown()` drains it. Several workers on one task queue share
 * the load, and a restarted worker picks up every run where its history left it.
 */
export async function createWardenWorker(options: WardenWorkerOptions): Promise<Worker> {
  const settings = options.settings ?? temporalSettingsFromEnv();
  const connection = options.connection ?? (await connectWorker(settings));
  const logger = options.logger ?? pino({ name: 'warden-worker', level: process.env.WARDEN_LOG_LEVEL ?? 'info' });
  const slack = options.slack === undefined ? (process.env.SLACK_BOT_TOKEN ? { botToken: process.env.SLACK_BOT_TOKEN, slackApiUrl: process.env.SLACK_API_URL } : null) : options.slack;
  const bundle = options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: require.resolve('../workflows') };
  return Worker.create({
    connection,
    namespace: settings.namespace,
    taskQueue: options.taskQueue ?? TASK_QUEUE,
    activities: createActivities({
      registry: options.registry,
      store: options.store,
      logger,
      keyring: typeof options.keyring === 'function' ? options.keyring : options.keyring ? constant(options.keyring) : keyringFromEnv(),
      allowUnsignedDecisions: options.allowUnsignedDecisions ?? false,
      acceptRunInputPolicy: options.acceptRunInputPolicy ?? false,
      ...(options.limits ? { limits: options.limits } : {}),
      notifyApproval: slack ? slackNotifyActivity(slack) : undefined,
    }),
    ...bundle,
    dataConverter: { failureConverterPath: require.resolve('../codec/failure-converter'), ...(options.payloadCodec ? { payloadCodecs: [options.payloadCodec] } : {}) },
    // Runs that wait for people (hours, days) should not sit in memory: past this many, the least
    // recently used are evicted and replayed from history when a decision arrives.
    maxCachedWorkflows: DEFAULT_MAX_CACHED_RUNS,
    ...options.workerOptions,
  });
}
