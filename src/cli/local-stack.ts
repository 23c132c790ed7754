import net from 'node:net';
import { InvalidArgumentError, type Command } from 'commander';
import path from 'node:path';
import { DefaultLogger, Runtime, type LogLevel, type LogMetadata, type NativeConnection, type Worker } from '@temporalio/worker';
import pino from 'pino';
import { ensureDevKeys, watchKeyring } from '../approvals/signing-keys';
import { loadAgents, loadFleetPolicy, type AgentRegistry } from '../agents';
import type { FleetPolicy } from '../governance';
import type { TemporalSettings } from '../config';
import { startDevServer, type DevServer } from '../dev-server';
import { openRunStore, redactStoreLocation, type RunStore } from '../store';
import { connectWorker, createWardenWorker } from '../worker';
import { traceContextMixin } from '../telemetry/logs';
import type * as TelemetrySetup from '../telemetry/setup';
import type { WardenTelemetry } from '../telemetry/setup';
import { WardenClient } from '../client';
// Not ../codec: its index brings the codec endpoint's Hono, which a worker never serves.
import type { EncryptionCodec } from '../codec/encryption-codec';
import { ensureDevPayloadKeys } from '../codec/payload-keys';
import { ensureWardenHome } from '../private-files';
import { acceptPlaintextFromEnv, logLevelFromEnv, payloadCodecFromEnv, payloadKeysFile, slackFromEnv, storeLocation, taskQueueFromEnv, wardenHome } from './context';
import { CliError, describeError } from './cli-errors';
import { devUserDirectory } from './dev-users';
import { checkPoliciesDir, prepareAgentsModule } from './support/project-paths';
import { DEFAULT_INBOX_PORT } from './support/server-settings';

/**
 * Where the CLI says how getting the Temporal CLI goes (a Go build or the SDK's download, minutes
 * the first time): stderr, so a command's output stays what it was; the server's own notes are not printed.
 */
export function devServerSetupNote(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** Temporal's own ports, used when free so that the default TEMPORAL_ADDRESS reaches `warden dev`. */
export const DEFAULT_PORT = 7233;
export const DEFAULT_UI_PORT = 8233;

const LOG_LEVELS = new Set(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']);

let runtimeInstalled = false;

/** Which of the SDK's log entries are written; the others are dropped. */
export type LogFilter = (level: LogLevel, message: string, meta?: LogMetadata) => boolean;

/** The SDK's default logger, writing only the entries `keep` accepts. */
class FilteredLogger extends DefaultLogger {
  constructor(
    level: LogLevel,
    write: ConstructorParameters<typeof DefaultLogger>[1],
    private readonly keep: LogFilter,
  ) {
    super(level, write);
  }

  override log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (this.keep(level, message, meta)) super.log(level, message, meta);
  }
}

/**
 * Installs the Temporal runtime once, quiet unless WARDEN_LOG_LEVEL says otherwise, and without its
 * own signal handlers: the CLI drains its worker itself on Ctrl-C, then stops the server. `keep`:
 * only the SDK's entries it accepts are written (the demo leaves out what its own output shows).
 */
export function installRuntime(defaultLevel: LogLevel = 'WARN', into?: pino.Logger, keep?: LogFilter): void {
  if (runtimeInstalled) return;
  const wanted = (process.env.WARDEN_LOG_LEVEL ?? '').toUpperCase();
  const level = (LOG_LEVELS.has(wanted) ? wanted : defaultLevel) as LogLevel;
  // Given the worker's logger, the SDK's lines are its lines too: one format (JSON) for a log collector.
  const forward = into
    ? (entry: { level: LogLevel; message: string; meta?: Record<string, unknown> }) => {
        const method = entry.level === 'ERROR' ? 'error' : entry.level === 'WARN' ? 'warn' : entry.level === 'INFO' ? 'info' : entry.level === 'DEBUG' ? 'debug' : 'trace';
        into[method]({ ...entry.meta, component: 'temporal-sdk' }, entry.message);
      }
    : undefined;
  Runtime.install({ logger: keep ? new FilteredLogger(level, forward, keep) : new DefaultLogger(level, forward), shutdownSignals: [] });
  runtimeInstalled = true;
}

/**
 * The worker's telemetry from the environment: OTLP/HTTP export when `OTEL_EXPORTER_OTLP_ENDPOINT`
 * is set (`OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_METRIC_EXPORT_INTERVAL` too), none otherwise.
 */
export function telemetryFromCliEnv(): WardenTelemetry | undefined {
  // The OpenTelemetry SDK is loaded only when it is asked for.
  if (!process.env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()) return undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('../telemetry/setup') as typeof TelemetrySetup).telemetryFromEnv(process.env, { serviceName: 'warden-worker' });
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err));
  }
}

/** The policy directory's fleet file (`fleet.yaml`: quotas and rate limits across agents), if it has one; a bad one is a one-line error. */
export function loadFleet(policies: string): FleetPolicy | undefined {
  try {
    return loadFleetPolicy(path.resolve(policies))?.fleet;
  } catch (err) {
    throw new CliError(describeError(err));
  }
}

/** Loads agents and policies, turning a bad module or policy file into a one-line error. */
export function loadRegistry(agents: string, policies: string): AgentRegistry {
  prepareAgentsModule(agents);
  checkPoliciesDir(policies);
  let registry: AgentRegistry;
  try {
    registry = loadAgents(agents, path.resolve(policies));
  } catch (err) {
    throw new CliError(describeError(err));
  }
  for (const agent of registry.list()) {
    if (!registry.policyFor(agent.name)) process.stderr.write(`warning: no policy for agent ${agent.name} in ${policies}; its runs will fail until one is added or applied\n`);
  }
  return registry;
}

async function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** The port asked for, or the preferred one if it is free, or undefined (the caller lets the system pick one). */
export async function choosePort(asked: number | undefined, preferred: number, flag = '--port/--ui-port'): Promise<number | undefined> {
  if (asked !== undefined) {
    if (!(await portFree(asked, '127.0.0.1'))) throw new CliError(`port ${asked} is in use; pick another with ${flag}`);
    return asked;
  }
  return (await portFree(preferred, '127.0.0.1')) ? preferred : undefined;
}

/**
 * Runs a worker until `shutdown()`: its `done` promise settles when the worker has drained.
 * The caller owns the connection and store it was given.
 */
export interface RunningWorker {
  worker: Worker;
  done: Promise<void>;
  shutdown(): Promise<void>;
}

export function runWorker(worker: Worker): RunningWorker {
  const done = worker.run();
  let stopping: Promise<void> | null = null;
  return {
    worker,
    done,
    shutdown() {
      stopping ??= (async () => {
        try {
          worker.shutdown();
        } catch {
          // Already stopping or stopped (it failed on its own): nothing to drain.
        }
        await done.catch(() => undefined);
      })();
      return stopping;
    },
  };
}

export interface LocalStackOptions {
  agents: string;
  policies: string;
  headless?: boolean;
  port?: number;
  uiPort?: number;
  /** Where the dev UI decodes payloads: the web inbox's codec endpoint (`http://127.0.0.1:8787/codec`). */
  uiCodecEndpoint?: string;
}

/** A dev server, dev keys, a run store and a worker, all in this process tree (`warden dev`, `warden demo`). */
export interface LocalStack {
  server: DevServer;
  settings: TemporalSettings;
  registry: AgentRegistry;
  store: RunStore;
  storePath: string;
  home: string;
  dbFile: string;
  trustedKeysFile: string;
  cliKeyFile: string;
  /** The development key of a channel (`<home>/keys/<channel>.json`); the worker trusts all three (the CLI's for the dev users only). */
  keyFile(channel: 'cli' | 'web' | 'slack'): string;
  worker: RunningWorker;
  /** Encrypts every payload of the stack's runs; the worker and `connectClient` use it. */
  payloadCodec: EncryptionCodec;
  /** `WARDEN_PAYLOAD_KEYS`, else the development key file `<home>/keys/payload.json`. */
  payloadKeysFile: string;
  /** The codec endpoint the dev UI was started with, or null. */
  uiCodecEndpoint: string | null;
  /** A client with the stack's payload codec; the caller closes it. */
  connectClient(): Promise<WardenClient>;
  /** Drains the worker, then stops the server. Safe to call more than once. */
  shutdown(): Promise<void>;
}

/**
 * Starts what `warden dev` runs: a Temporal dev server keeping its data in `<home>/temporal.db`,
 * development signing keys (`ensureDevKeys`), and a worker that trusts them.
 */
export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  installRuntime();
  // Agents and policies first: a typo in a policy should not cost a server start.
  const registry = loadRegistry(opts.agents, opts.policies);
  const fleet = loadFleet(opts.policies);
  const home = wardenHome();
  // Keys, passwords, the run store and temporal.db live here: 0700, narrowed (and said) if older and looser.
  ensureWardenHome(home);
  const keys = ensureDevKeys(home, devUserDirectory());
  // Followed, not read once: `warden keys revoke` on this file takes effect in the running worker.
  const keyring = watchKeyring(keys.trustedKeysFile);
  // The same resolution as every CLI client (context.ts), so `warden run` in another terminal encrypts with this key.
  if (!process.env.WARDEN_PAYLOAD_KEYS) {
    try {
      ensureDevPayloadKeys(home);
    } catch (err) {
      throw new CliError(err instanceof Error ? err.message : String(err));
    }
  }
  const payloadCodec = payloadCodecFromEnv();
  const keysFile = payloadKeysFile();
  if (!payloadCodec || !keysFile) throw new CliError(`no payload key file at ${path.join(home, 'keys', 'payload.json')} after creating it`);
  const uiCodecEndpoint = opts.headless ? null : (opts.uiCodecEndpoint ?? null);
  const port = await choosePort(opts.port, DEFAULT_PORT);
  const uiPort = opts.headless ? undefined : await choosePort(opts.uiPort, DEFAULT_UI_PORT);
  const dbFile = path.join(home, 'temporal.db');
  const server = await startDevServer({ dbFile, port, uiPort, headless: opts.headless ?? false, ...(uiCodecEndpoint ? { uiCodecEndpoint } : {}), log: () => {}, setupLog: devServerSetupNote });
  const settings: TemporalSettings = { address: server.address, namespace: server.namespace };
  const storePath = storeLocation();
  const telemetry = telemetryFromCliEnv();
  let store: RunStore | undefined;
  let connection: NativeConnection | undefined;
  try {
    store = await openRunStore(storePath);
    connection = await connectWorker(settings);
    const worker = await createWardenWorker({
      registry,
      store,
      connection,
      settings,
      keyring,
      payloadCodec,
      acceptPlaintextPayloads: acceptPlaintextFromEnv(),
      logger: pino({ name: 'warden-worker', level: logLevelFromEnv('warn'), mixin: traceContextMixin }),
      taskQueue: taskQueueFromEnv(),
      slack: slackFromEnv(),
      workerOptions: { shutdownGraceTime: '5s' },
      ...(telemetry ? { telemetry } : {}),
      ...(fleet ? { fleet } : {}),
      // The one place model keys are read: the library itself reads no environment variables.
      modelEnv: process.env,
    });
    const running = runWorker(worker);
    const openStore = store;
    const openConnection = connection;
    let stopping: Promise<void> | null = null;
    return {
      server,
      settings,
      registry,
      store,
      storePath,
      home,
      dbFile,
      trustedKeysFile: keys.trustedKeysFile,
      cliKeyFile: keys.keyFile('cli'),
      keyFile: (channel) => keys.keyFile(channel),
      worker: running,
      payloadCodec,
      payloadKeysFile: keysFile.file,
      uiCodecEndpoint,
      connectClient: () => WardenClient.connect(settings, taskQueueFromEnv(), { payloadCodec, ...(telemetry ? { telemetry } : {}) }),
      shutdown: () =>
        (stopping ??= (async () => {
          await running.shutdown();
          // The last spans and metrics leave before the process does.
          await telemetry?.shutdown().catch(() => undefined);
          await openConnection.close().catch(() => undefined);
          await server.stop();
          await openStore.close();
        })()),
    };
  } catch (err) {
    await telemetry?.shutdown().catch(() => undefined);
    await connection?.close().catch(() => undefined);
    await store?.close();
    await server.stop();
    throw err;
  }
}

function payloadLines(stack: LocalStack): string[] {
  const lines = [`  payloads    encrypted in Temporal with key ${stack.payloadCodec.currentKeyId} of ${stack.payloadKeysFile}; warden commands here read that file too`];
  if (stack.uiCodecEndpoint) {
    // The dev server's --ui-codec-endpoint cannot ask the UI to send cookies; the browser-level setting can.
    lines.push(
      `              the UI decrypts them through ${stack.uiCodecEndpoint} for operators and approvers signed in to the inbox: in the UI's Codec Server`,
      `              settings choose the browser setting, enter that endpoint and turn on "Include cross-origin credentials"`,
    );
  }
  return lines;
}

/** What `warden dev` and `warden demo` print about the environment they started. */
export function describeStack(stack: LocalStack): string[] {
  const agents = stack.registry.list().map((a) => a.name);
  return [
    `  Temporal    ${stack.settings.address} (namespace ${stack.settings.namespace}), data in ${stack.dbFile}`,
    `  UI          ${stack.server.uiUrl ?? '(headless)'}`,
    `  worker      task queue ${taskQueueFromEnv()}; agents: ${agents.join(', ')}`,
    `  run store   ${redactStoreLocation(stack.storePath)}`,
    `  keys        CLI signing key ${stack.cliKeyFile} (may speak for ${Object.keys(devUserDirectory()).join(', ')}); the worker trusts ${stack.trustedKeysFile}`,
    ...payloadLines(stack),
  ];
}

/** Parses a port flag; commander hands it over as text. */
export function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65_535) throw new InvalidArgumentError('must be a port number (1-65535)');
  return n;
}

/**
 * `--port`, `--ui-port` and `--inbox-port` of `warden dev` and `warden demo`, as `choosePort`
 * treats them: a port asked for must be free (else an error naming the flag); without the flag,
 * the usual port if it is free, else any free port.
 */
export function withPortOptions(command: Command): Command {
  const fallback = 'or any free port if that one is taken';
  return command
    .option('--port <n>', `gRPC port (default ${DEFAULT_PORT}, ${fallback})`, parsePort)
    .option('--ui-port <n>', `Web UI port (default ${DEFAULT_UI_PORT}, ${fallback})`, parsePort)
    .option('--inbox-port <n>', `web inbox port (default ${DEFAULT_INBOX_PORT}, ${fallback})`, parsePort);
}
