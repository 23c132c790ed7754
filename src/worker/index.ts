import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import pino, { type Logger } from 'pino';
import { createActivities } from '../activities';
import type { AgentRegistry } from '../agents';
import { TASK_QUEUE, temporalSettingsFromEnv, type TemporalSettings } from '../config';
import type { RunStore } from '../store/types';
import { trustedKeysFromEnv } from '../approvals/keys';
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
  /** Public keys (hex, by key id) whose signed approvals count; default: the `WARDEN_TRUSTED_KEYS` file. */
  trustedKeys?: Record<string, string>;
  /** Post approval requests to Slack (policy `approval.notify.slack.channel`); default from `SLACK_BOT_TOKEN`. */
  slack?: { botToken: string; slackApiUrl?: string } | null;
  /** Extra Temporal worker options (concurrency limits, identity, …). */
  workerOptions?: Partial<WorkerOptions>;
}

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
      trustedKeys: options.trustedKeys ?? trustedKeysFromEnv(),
      notifyApproval: slack ? slackNotifyActivity(slack) : undefined,
    }),
    ...bundle,
    ...options.workerOptions,
  });
}
