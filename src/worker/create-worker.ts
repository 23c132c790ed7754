import type { PayloadCodec } from '@temporalio/common';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH, SHARED_WORKFLOW_MODULES, WORKFLOWS_PATH } from './bundle';
import pino, { type Logger } from 'pino';
import { createActivities, type ModelEnv, type RunLimits } from '../activities';
import type { AgentRegistry } from '../agents';
import { LOCAL_TEMPORAL, TASK_QUEUE, type TemporalSettings } from '../config';
import type { RunStore } from '../store/run-store';
import type { FleetPolicy, Keyring } from '../governance';
import type * as SlackNotify from '../approvals/slack/notify';
import { traceContextMixin } from '../telemetry/logs';
import type { WardenTelemetry } from '../telemetry/setup';
import { WORKFLOW_TELEMETRY_MODULES, telemetryWorkerOptions } from '../telemetry/worker-telemetry';
import { cachedWorkflowBundle } from './bundle-cache';
import { plaintextGuard } from './plaintext-guard';

export interface WardenWorkerOptions {
  registry: AgentRegistry;
  store: RunStore;
  /** An open connection; otherwise one is made from `settings` (default `LOCAL_TEMPORAL`). */
  connection?: NativeConnection;
  settings?: TemporalSettings;
  taskQueue?: string;
  logger?: Logger;
  /** A prebuilt workflow bundle (tests, faster start); otherwise the workflows are bundled at start. */
  workflowBundle?: { codePath: string } | { code: string };
  /**
   * A directory to keep the workflow bundle in between starts (`warden worker`: `~/.cache/warden/workflow-bundles`):
   * a restart whose workflow sources, SDK and options are unchanged skips webpack (`cachedWorkflowBundle`).
   * Ignored with `workflowBundle`. None: the workflows are bundled at every start.
   */
  bundleCache?: string;
  /**
   * The keys whose signed decisions and run starts count, and what each may assert. A function is
   * called on every decision, so editing the file revokes a key for running runs too
   * (`watchKeyring(file)`). Default: no trusted keys, so no signed decision counts.
   */
  keyring?: Keyring | (() => Keyring);
  /** Development only: count approve/reject messages without a signature (typed into the Temporal UI). Loud in the log. */
  allowUnsignedDecisions?: boolean;
  /**
   * Development only: count resume, rollback and applyPolicy signals that carry no signed operator
   * command (a pause never needs one). Loud in the log. Off: only a key with the role counts.
   */
  allowUnsignedOperators?: boolean;
  /** Tests only: let a start input bring its own policy. Loud in the log. */
  acceptRunInputPolicy?: boolean;
  /** Size limits on what a model may propose (see `RunLimits`). */
  limits?: Partial<RunLimits>;
  /** Post approval requests to Slack (policy `approval.notify.slack.channel`); default none (the CLI passes `SLACK_BOT_TOKEN`). */
  slack?: { botToken: string; slackApiUrl?: string } | null;
  /** Extra Temporal worker options (concurrency limits, identity, …). */
  workerOptions?: Partial<WorkerOptions>;
  /** Encrypts every payload the worker writes and decrypts what it reads (`EncryptionCodec`); clients need the same keys. None: payloads are stored in clear. */
  payloadCodec?: PayloadCodec;
  /**
   * Migration only: with a payload key (`EncryptionCodec`), take payloads that arrive unencrypted
   * too (runs started before encryption was turned on). Loud in the log. Off (default): they are
   * refused wherever Warden would act on them (start and carried state, activity inputs, decisions,
   * operator signals); an unencrypted pause is taken, and audited as such. CLI: WARDEN_ACCEPT_PLAINTEXT_PAYLOADS=1.
   */
  acceptPlaintextPayloads?: boolean;
  /**
   * Export traces (client → workflow → activities, with `invoke_agent`, `chat` and `execute_tool`
   * spans) and metrics (`createTelemetry`). None: nothing is exported. A prebuilt
   * `workflowBundle` must include `WORKFLOW_TELEMETRY_MODULES` for workflow spans.
   */
  telemetry?: WardenTelemetry;
  /** Model API keys and base URLs (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, an agent's `apiKeyEnv`, …). Default none; the CLI passes `process.env`. */
  modelEnv?: ModelEnv;
  /**
   * Quotas and rate limits across every agent this worker serves (`loadFleetPolicy`, the policy
   * directory's `fleet.yaml`). Workers sharing a run store should load the same fleet file.
   */
  fleet?: FleetPolicy;
  /** The tenant of runs whose start does not sign one (`warden worker --default-tenant`). Default: none. */
  defaultTenant?: string;
  /** How long a held quota reservation counts when nothing settles it (a run terminated mid-call); default one hour. */
  quotaReservationTtlMs?: number;
}

/** The most a worker waits between two heartbeats of a running activity to the server. */
export const HEARTBEAT_THROTTLE = '1 second';

/** How many runs a worker keeps in memory by default (`workerOptions.maxCachedWorkflows` overrides it). */
export const DEFAULT_MAX_CACHED_RUNS = 100;

const constant =
  <T>(value: T) =>
  (): T =>
    value;

/** Opens a worker connection from settings (address, namespace, TLS or API key). */
export async function connectWorker(settings: TemporalSettings = LOCAL_TEMPORAL): Promise<NativeConnection> {
  return NativeConnection.connect({ address: settings.address, tls: settings.tls, apiKey: settings.apiKey, metadata: settings.metadata });
}

/**
 * Creates a worker that runs agent-run workflows and the activities of every agent in the
 * registry. Call `run()` on it; `shutdown()` drains it. Several workers on one task queue share
 * the load, and a restarted worker picks up every run where its history left it.
 */
export async function createWardenWorker(options: WardenWorkerOptions): Promise<Worker> {
  const settings = options.settings ?? LOCAL_TEMPORAL;
  const connection = options.connection ?? (await connectWorker(settings));
  const logger = options.logger ?? pino({ name: 'warden-worker', level: 'info', mixin: traceContextMixin });
  const slack = options.slack ?? null;
  let workflowBundle = options.workflowBundle;
  if (!workflowBundle && options.bundleCache !== undefined) {
    const found = await cachedWorkflowBundle({ dir: options.bundleCache, logger, ...(options.telemetry ? { workflowInterceptorModules: WORKFLOW_TELEMETRY_MODULES } : {}) });
    logger.info({ cached: found.cached, ms: found.ms, ...('codePath' in found.bundle ? { bundle: found.bundle.codePath } : {}) }, found.cached ? 'workflow bundle taken from the cache' : 'workflows bundled (cached for the next start)');
    workflowBundle = found.bundle;
  }
  const bundle = workflowBundle ? { workflowBundle } : { workflowsPath: WORKFLOWS_PATH, bundlerOptions: { preloadModules: [...SHARED_WORKFLOW_MODULES] } };
  // MCP servers are listed now, once: their tools become activities, and runs pin these schemas.
  await options.registry.resolveTools();
  const plaintext = plaintextGuard(options.payloadCodec, options.acceptPlaintextPayloads ?? false, logger);
  // A bundle from the cache was built here, with the telemetry modules exactly when this worker traces:
  // without telemetry there is nothing to look for in it (reading it and loading OpenTelemetry to find out cost ~0.1 s).
  const ownBundle = !options.workflowBundle && options.bundleCache !== undefined;
  const tracing = ownBundle && !options.telemetry ? {} : telemetryWorkerOptions(options.telemetry, workflowBundle, logger);
  const worker = await Worker.create({
    connection,
    namespace: settings.namespace,
    taskQueue: options.taskQueue ?? TASK_QUEUE,
    activities: createActivities({
      registry: options.registry,
      store: options.store,
      logger,
      keyring: typeof options.keyring === 'function' ? options.keyring : constant(options.keyring ?? {}),
      ...(options.workerOptions?.identity !== undefined ? { workerIdentity: options.workerOptions.identity } : {}),
      allowUnsignedDecisions: options.allowUnsignedDecisions ?? false,
      allowUnsignedOperators: options.allowUnsignedOperators ?? false,
      acceptRunInputPolicy: options.acceptRunInputPolicy ?? false,
      ...(options.limits ? { limits: options.limits } : {}),
      notifyApproval: slack ? slackNotifier(slack) : undefined,
      ...(slack ? { notifySlackText: slackTextNotifier(slack) } : {}),
      ...(options.telemetry ? { telemetry: options.telemetry } : {}),
      ...(options.modelEnv ? { modelEnv: options.modelEnv } : {}),
      ...(options.fleet ? { fleet: options.fleet } : {}),
      ...(options.defaultTenant !== undefined ? { defaultTenant: options.defaultTenant } : {}),
      ...(options.quotaReservationTtlMs !== undefined ? { quotaReservationTtlMs: options.quotaReservationTtlMs } : {}),
    }),
    ...bundle,
    dataConverter: { failureConverterPath: FAILURE_CONVERTER_PATH, ...(plaintext.payloadCodecs.length > 0 ? { payloadCodecs: plaintext.payloadCodecs } : {}) },
    // Runs that wait for people (hours, days) should not sit in memory: past this many, the least
    // recently used are evicted and replayed from history when a decision arrives.
    maxCachedWorkflows: DEFAULT_MAX_CACHED_RUNS,
    // Warden heartbeats running tools and model calls every second (src/activities/heartbeats.ts);
    // sent as often, a cancellation reaches the tool's ctx.signal within about a second.
    maxHeartbeatThrottleInterval: HEARTBEAT_THROTTLE,
    ...tracing,
    ...options.workerOptions,
    // Added to, never replaced by, the caller's interceptors: the plaintext refusal comes first.
    interceptors: {
      ...tracing.interceptors,
      ...options.workerOptions?.interceptors,
      activity: [...plaintext.activityInterceptors, ...(tracing.interceptors?.activity ?? []), ...(options.workerOptions?.interceptors?.activity ?? [])],
    },
  });
  // The worker's MCP connections end with it (stdio servers' processes too); they reconnect if the registry is used again.
  const run = worker.run.bind(worker);
  worker.run = async () => {
    try {
      await run();
    } finally {
      await options.registry.close().catch((err: unknown) => logger.warn({ err }, 'closing MCP connections failed'));
    }
  };
  return worker;
}

/** Plain Slack messages (quota thresholds), loaded only by a worker configured for Slack. */
function slackTextNotifier(slack: { botToken: string; slackApiUrl?: string }): (channel: string, text: string) => Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { notifySlackText, slackWebClient } = require('../approvals/slack/notify') as typeof SlackNotify;
  const client = slackWebClient(slack);
  return (channel, text) => notifySlackText({ channel, text }, { botToken: slack.botToken, client });
}

/** The Slack notifier, loaded only by a worker configured for Slack (Bolt is several MB of heap). */
function slackNotifier(slack: { botToken: string; slackApiUrl?: string }): ReturnType<typeof SlackNotify.slackNotifyActivity> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../approvals/slack/notify') as typeof SlackNotify).slackNotifyActivity(slack);
}
