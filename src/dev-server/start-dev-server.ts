import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import { makePrivateDir, narrowToPrivate, withPrivateUmask } from '../private-files';
import { wardenSearchAttributes } from '../workflows/search-attributes';
import { DevServerError, TemporalBinaryNotFoundError } from './dev-server-errors';
import { freePorts } from './free-port';
import { resolveTemporalBinary } from './resolve-binary';

/** A running Temporal dev server. `stop()` is safe to call more than once. */
export interface DevServer {
  /** gRPC `host:port` for `Connection.connect` and `NativeConnection.connect`. */
  address: string;
  namespace: string;
  /** The Web UI, or null when headless. */
  uiUrl: string | null;
  stop(): Promise<void>;
}

export interface DevServerOptions {
  /**
   * SQLite file that keeps runs across restarts: new parent dirs are made 0700, the file and its
   * journal are 0600 (an older, more open file is narrowed). Omit for in-memory.
   */
  dbFile?: string;
  /** gRPC port; default: a free one. */
  port?: number;
  /** Web UI port; default: a free one. Ignored when headless. */
  uiPort?: number;
  /** No Web UI. Default false. */
  headless?: boolean;
  /** Namespace created at start and waited for. Default `default`. */
  namespace?: string;
  /** Address the server binds to. Default 127.0.0.1, so nothing is exposed beyond this machine. */
  ip?: string;
  /** Server log level: debug, info, warn, error, never. Default warn. */
  logLevel?: string;
  /**
   * A remote codec endpoint the Web UI decodes payloads through (`--ui-codec-endpoint`), such as
   * the web inbox's `http://127.0.0.1:8787/codec`. The dev server cannot tell the UI to send
   * credentials with it: a person turns that on in the UI's own Codec Server settings.
   * Ignored when headless.
   */
  uiCodecEndpoint?: string;
  /** Further `temporal server start-dev` flags, appended last. */
  extraArgs?: string[];
  /** A binary to run instead of looking one up with `resolveTemporalBinary`. */
  binary?: string;
  /** Let `resolveTemporalBinary` build the CLI with Go. Default true. */
  allowBuild?: boolean;
  /** When no binary is found locally, let the SDK download one. Default true. */
  allowDownload?: boolean;
  /** How long to wait for the namespace and search attributes. Default 60 s. */
  readyTimeoutMs?: number;
  /** Progress notes. Default: stderr. */
  log?: (msg: string) => void;
  /**
   * Notes about getting the Temporal CLI when none is found: a Go build or the SDK's download,
   * minutes the first time, with progress. Default: `log`. A caller that keeps quiet about the
   * server (`log: () => {}`) should still let these through: minutes of silence look like a hang.
   */
  setupLog?: (msg: string) => void;
}

// The CLI's `--search-attribute` flag spells types differently from the SDK's constants.
const cliTypeName: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

const TAIL_BYTES = 16_384;
const TAIL_LINES = 30;
const STOP_GRACE_MS = 10_000;

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-TAIL_LINES).join('\n');
}

function connectHost(ip: string): string {
  if (ip === '0.0.0.0') return '127.0.0.1';
  if (ip === '::') return '[::1]';
  return ip.includes(':') && !ip.startsWith('[') ? `[${ip}]` : ip;
}

/**
 * Polls until the namespace answers and Warden's search attributes are listed. The dev server
 * registers search attributes after its frontend is up, so a worker started at the first
 * successful `describeNamespace` could see "search attribute not found" errors.
 */
async function waitUntilReady(address: string, namespace: string, timeoutMs: number, died: () => string | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const wanted = wardenSearchAttributes.map((k) => k.name);
  let lastProblem = 'no attempt yet';
  for (;;) {
    const death = died();
    if (death !== null) throw new DevServerError(death);
    if (Date.now() > deadline) {
      throw new DevServerError(`Temporal dev server at ${address} was not ready after ${timeoutMs} ms (last problem: ${lastProblem})`);
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.withDeadline(Date.now() + 2000, () => connection.workflowService.describeNamespace({ namespace }));
        const { customAttributes } = await connection.withDeadline(Date.now() + 2000, () =>
          connection.operatorService.listSearchAttributes({ namespace }),
        );
        const missing = wanted.filter((name) => !(name in customAttributes));
        if (missing.length === 0) return;
        lastProblem = `search attributes not registered yet: ${missing.join(', ')}`;
      } finally {
        await connection.close();
      }
    } catch (err) {
      lastProblem = (err as Error).message;
    }
    await sleep(250);
  }
}

// Every live server this process started. One shared set of process listeners serves them all:
// a listener per server would count as "the app's own" for the other servers' listeners.
const liveChildren = new Set<ChildProcess>();
const parentSignals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function killAllNow(): void {
  for (const child of liveChildren) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

function onParentSignal(signal: NodeJS.Signals): void {
  // Having a listener disables Node's default "exit on signal". If the app has its own listener
  // (a worker's graceful shutdown), it decides and the 'exit' hook cleans up; otherwise kill the
  // servers and restore the default by re-raising once our listeners are gone.
  if (process.listenerCount(signal) > 1) return;
  killAllNow();
  liveChildren.clear();
  removeParentListeners();
  process.kill(process.pid, signal);
}

function removeParentListeners(): void {
  process.removeListener('exit', killAllNow);
  for (const s of parentSignals) process.removeListener(s, onParentSignal);
}

/** Kills the child when this process goes away, however it goes; returns the undo for a stopped child. */
function tieToParent(child: ChildProcess): () => void {
  if (liveChildren.size === 0) {
    process.on('exit', killAllNow);
    for (const s of parentSignals) process.on(s, onParentSignal);
  }
  liveChildren.add(child);
  return () => {
    if (liveChildren.delete(child) && liveChildren.size === 0) removeParentListeners();
  };
}

async function spawnDevServer(binary: string, opts: DevServerOptions, log: (msg: string) => void): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const headless = opts.headless ?? false;
  const needed = (opts.port === undefined ? 1 : 0) + (!headless && opts.uiPort === undefined ? 1 : 0);
  const picked = await freePorts(needed, ip);
  const port = opts.port ?? picked.shift()!;
  const uiPort = headless ? null : (opts.uiPort ?? picked.shift()!);

  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--namespace', namespace, '--log-level', opts.logLevel ?? 'warn'];
  if (uiPort !== null) args.push('--ui-port', String(uiPort));
  if (uiPort !== null && opts.uiCodecEndpoint) args.push('--ui-codec-endpoint', opts.uiCodecEndpoint);
  if (headless) args.push('--headless');
  if (opts.dbFile !== undefined) {
    makePrivateDir(path.dirname(path.resolve(opts.dbFile)));
    args.push('--db-filename', opts.dbFile);
  }
  for (const key of wardenSearchAttributes) args.push('--search-attribute', `${key.name}=${cliTypeName[key.type]}`);
  // A worker that schedules an activity it can run itself gets it in the same round trip (off by
  // default in the dev server): sequential tool calls take half the time, in the demo and tests alike.
  args.push('--dynamic-config-value', 'system.enableActivityEagerExecution=true');
  for (const setting of QUEUE_PROCESSOR_SETTINGS) args.push('--dynamic-config-value', setting);
  args.push(...(opts.extraArgs ?? []));

  // Under the umask 077 the server creates its database and journal 0600 from their first byte.
  const child = withPrivateUmask(() => spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const untie = tieToParent(child);
  // Keep reading both pipes for the server's whole life: a full pipe would block it.
  let stderrTail = '';
  let stdoutTail = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderrTail = (stderrTail + chunk.toString()).slice(-TAIL_BYTES)));
  child.stdout?.on('data', (chunk: Buffer) => (stdoutTail = (stdoutTail + chunk.toString()).slice(-TAIL_BYTES)));
  let spawnError: Error | null = null;
  child.on('error', (err) => (spawnError = err));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));

  const command = `${binary} ${args.join(' ')}`;
  const died = (): string | null => {
    if (spawnError) return `cannot run ${command}: ${spawnError.message}`;
    if (child.exitCode === null && child.signalCode === null) return null;
    const how = child.signalCode ?? `code ${child.exitCode}`;
    const output = lastLines(stderrTail) || lastLines(stdoutTail) || '(no output)';
    return `Temporal dev server exited with ${how} before it was ready.\nCommand: ${command}\nOutput (tail):\n${output}`;
  };

  const address = `${connectHost(ip)}:${port}`;
  try {
    await waitUntilReady(address, namespace, opts.readyTimeoutMs ?? 60_000, died);
  } catch (err) {
    child.kill('SIGKILL');
    untie();
    await exited;
    // A timeout message is more useful with whatever the server said.
    const output = lastLines(stderrTail);
    if (DevServerError.isInstance(err) && output && !err.message.includes(output)) {
      throw new DevServerError(`${err.message}\nCommand: ${command}\nServer stderr (tail):\n${output}`);
    }
    throw err;
  }
  if (opts.dbFile !== undefined) narrowToPrivate(sqliteFiles(opts.dbFile));
  const uiUrl = uiPort === null ? null : `http://${connectHost(ip)}:${uiPort}`;
  log(`Temporal dev server ready at ${address} (namespace ${namespace}${uiUrl ? `, UI ${uiUrl}` : ''})`);

  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      untie();
    })();
    return stopping;
  };
  return { address, namespace, uiUrl, stop };
}

async function downloadDevServer(opts: DevServerOptions, log: (msg: string) => void): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const headless = opts.headless ?? false;
  const [freePort, freeUiPort] = await freePorts(2, ip);
  const port = opts.port ?? freePort!;
  const uiPort = opts.uiPort ?? freeUiPort!;
  // Loaded only here: the testing package pulls in the worker's native runtime.
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  // The SDK spawns the server out of reach of our umask: a private directory keeps the database
  // from others while it is new, and its files are narrowed once the server is up.
  if (opts.dbFile !== undefined) makePrivateDir(path.dirname(path.resolve(opts.dbFile)));
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'cached-download' },
      ...(opts.dbFile !== undefined ? { dbFilename: opts.dbFile } : {}),
      namespace,
      ip,
      port,
      ui: !headless,
      ...(headless ? {} : { uiPort }),
      log: { format: 'pretty', level: opts.logLevel ?? 'warn' },
      extraArgs: [...(!headless && opts.uiCodecEndpoint ? ['--ui-codec-endpoint', opts.uiCodecEndpoint] : []), ...(opts.extraArgs ?? [])],
      searchAttributes: [...wardenSearchAttributes],
    },
  });
  try {
    await waitUntilReady(env.address, namespace, opts.readyTimeoutMs ?? 60_000, () => null);
  } catch (err) {
    await env.teardown();
    throw err;
  }
  if (opts.dbFile !== undefined) narrowToPrivate(sqliteFiles(opts.dbFile));
  const uiUrl = headless ? null : `http://${connectHost(ip)}:${uiPort}`;
  log(`Temporal dev server (SDK download) ready at ${env.address}`);
  let stopping: Promise<void> | null = null;
  return { address: env.address, namespace, uiUrl, stop: () => (stopping ??= env.teardown()) };
}

/** A SQLite database and the journal files SQLite keeps beside it. */
function sqliteFiles(dbFile: string): string[] {
  return ['', '-journal', '-wal', '-shm'].map((suffix) => dbFile + suffix);
}

/**
 * The history service polls each of its task queues at most 20 times a second per shard by
 * default, and the dev server has one shard: past a few quick activities, every sequential
 * activity then waits ~45 ms for its transfer task (measured here; ~9 ms with the limit raised).
 * Production clusters should raise the same limits (docs/operations.md, "Run against a real Temporal cluster").
 */
export const QUEUE_PROCESSOR_SETTINGS = [
  'history.transferProcessorMaxPollRPS=2000',
  'history.timerProcessorMaxPollRPS=2000',
  'history.visibilityProcessorMaxPollRPS=2000',
  'history.outboundProcessorMaxPollRPS=2000',
] as const;

/**
 * Starts a real Temporal dev server (`temporal server start-dev`) with Warden's search attributes
 * registered, and resolves once the namespace answers and the attributes are listed.
 *
 * Use it for `warden dev`, demos and tests. Not for production: point workers at a Temporal
 * cluster or Temporal Cloud instead. The server dies with this process; call `stop()` to end it
 * sooner. A persistent server needs `dbFile`.
 */
export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const log = opts.log ?? ((msg: string) => process.stderr.write(`[warden] ${msg}\n`));
  const setupLog = opts.setupLog ?? log;
  let binary = opts.binary;
  if (binary === undefined) {
    try {
      binary = await resolveTemporalBinary({ allowBuild: opts.allowBuild ?? true, log: setupLog });
    } catch (err) {
      if (!TemporalBinaryNotFoundError.isInstance(err) || opts.allowDownload === false) throw err;
      setupLog('No local Temporal CLI, and none could be built here: the Temporal SDK downloads one (once; later starts use its cache).');
      try {
        return await downloadDevServer(opts, log);
      } catch (downloadErr) {
        throw new TemporalBinaryNotFoundError([...err.tried, `the SDK's cached download: ${(downloadErr as Error).message}`]);
      }
    }
  }
  return spawnDevServer(binary, opts, log);
}
