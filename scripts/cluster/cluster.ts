/**
 * A real Temporal cluster on this machine, the way Warden's users run one self-hosted: the
 * Temporal server built from its Go module (`scripts/cluster/build.sh`), PostgreSQL for
 * persistence and visibility, several history shards, the dynamic config Warden's measurements
 * asked for, Warden's search attributes registered. Everything lives in one state directory
 * (`cluster.json`, the server's config, logs, PostgreSQL's data) and listens on 127.0.0.1 only.
 *
 * `scripts/cluster/up.sh` and `down.sh` drive it from a shell; tests and benches import `upCluster`,
 * `restartServer` and `downCluster`. Every step names what failed, with the tail of the log that says why.
 */
import { spawn, execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import pg from 'pg';
import YAML from 'yaml';
import { resolveTemporalBinary, wardenCacheDir } from '../../src/dev-server/resolve-binary';
import { QUEUE_PROCESSOR_SETTINGS } from '../../src/dev-server/start-dev-server';
import { wardenSearchAttributes } from '../../src/workflows/search-attributes';
import { findPostgresBin, postgresRunAs, postgresUnavailable } from '../postgres-binaries';

/** A step of bringing the cluster up or down failed; the message names the step and why. */
export class ClusterError extends Error {
  override name = 'ClusterError';
}

export const DEFAULT_SHARDS = 4;
const HOST = '127.0.0.1';
const PG_USER = 'temporal';
const STATE_FILE = 'cluster.json';
const TAIL_LINES = 30;

export interface ClusterOptions {
  /** The state directory. Default `$WARDEN_CLUSTER_DIR`, else `<tmp>/warden-cluster-<uid>`. */
  dir?: string;
  /** History shards; fixed when the persistence is first set up. Default 4. */
  shards?: number;
  /** The namespace created and waited for. Default `default`. */
  namespace?: string;
  /**
   * PostgreSQL's fsync. Default on, as in production; off for throwaway clusters (tests), where it
   * makes every commit several times cheaper. Takes effect when PostgreSQL starts.
   */
  fsync?: boolean;
  /** Server log level (debug, info, warn, error). Default warn. */
  logLevel?: string;
  /** Progress notes. Default: stderr. */
  log?: (msg: string) => void;
  /** Start the Temporal Web UI when build.sh built it. Default true (WARDEN_CLUSTER_UI=0: false). */
  ui?: boolean;
  /** How long to wait for the server and the namespace. Default 120 s. */
  readyTimeoutMs?: number;
}

/** What `up` wrote to `cluster.json`: enough for `down`, `restartServer` and a second `up` to find everything. */
export interface ClusterState {
  dir: string;
  version: string;
  shards: number;
  namespace: string;
  /** gRPC `host:port` of the frontend: `TEMPORAL_ADDRESS`. */
  address: string;
  ports: { frontend: number; frontendHttp: number; frontendMembership: number; history: number; historyMembership: number; matching: number; matchingMembership: number; worker: number; workerMembership: number; metrics: number; postgres: number; ui?: number };
  fsync: boolean;
  logLevel: string;
  serverPid: number | null;
  /** The Temporal Web UI, when its binary is built and it started; null otherwise. */
  uiPid?: number | null;
  uiUrl?: string | null;
  /** A database on the cluster's PostgreSQL for Warden's run store (`WARDEN_STORE`). */
  runStoreUrl: string;
}

export interface Cluster extends ClusterState {
  /** The server's log file. */
  serverLog: string;
  postgresUrl(database: string): string;
}

export function defaultClusterDir(): string {
  return process.env.WARDEN_CLUSTER_DIR ?? path.join(os.tmpdir(), `warden-cluster-${process.getuid?.() ?? 'user'}`);
}

/** Where build.sh puts the binaries, and the version it built. */
export function clusterBinaries(): { server: string; sqlTool: string; ui: string; version: string | null } {
  const bin = path.join(wardenCacheDir(), 'bin');
  const versionFile = path.join(bin, 'temporal-server.version');
  return {
    server: path.join(bin, 'temporal-server'),
    sqlTool: path.join(bin, 'temporal-sql-tool'),
    ui: path.join(bin, 'temporal-ui-server'),
    version: existsSync(versionFile) ? readFileSync(versionFile, 'utf8').trim() : null,
  };
}

/** Why a cluster cannot be brought up here, or undefined if it can. */
export function clusterUnavailable(): string | undefined {
  const bins = clusterBinaries();
  for (const file of [bins.server, bins.sqlTool]) {
    if (!existsSync(file)) return `${file} is missing: build it with scripts/cluster/build.sh (a Go build of go.temporal.io/server, minutes the first time)`;
  }
  return postgresUnavailable();
}

/** The last lines of a log, each cut short (the server's error lines carry whole stack traces). */
function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .slice(-TAIL_LINES)
      .map((line) => (line.length > 400 ? `${line.slice(0, 400)}…` : line))
      .join('\n');
  } catch {
    return '(no log)';
  }
}

function run(step: string, command: string[], timeoutMs = 120_000): Promise<string> {
  const [file, ...args] = command;
  return new Promise((resolve, reject) => {
    execFile(file!, args, { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new ClusterError(`${step} failed: ${err.message.split('\n')[0]}\ncommand: ${command.join(' ')}\n${(stderr || stdout).trim().split('\n').slice(-TAIL_LINES).join('\n')}`));
      else resolve(stdout);
    });
  });
}

// PostgreSQL --------------------------------------------------------------------------------------

function postgresPaths(dir: string) {
  const root = path.join(dir, 'postgres');
  return { root, data: path.join(root, 'data'), log: path.join(root, 'postgres.log') };
}

function postgresRunning(dir: string): boolean {
  const bin = findPostgresBin();
  const as = postgresRunAs();
  if (!bin || typeof as === 'string' || !existsSync(postgresPaths(dir).data)) return false;
  const [file, ...args] = [...as.prefix, path.join(bin, 'pg_ctl'), '-D', postgresPaths(dir).data, 'status'];
  return spawnSync(file, args).status === 0;
}

async function startPostgres(state: ClusterState, log: (msg: string) => void): Promise<void> {
  const bin = findPostgresBin();
  const as = postgresRunAs();
  if (!bin) throw new ClusterError('PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin: apt-get install postgresql');
  if (typeof as === 'string') throw new ClusterError(as);
  const pgPaths = postgresPaths(state.dir);
  if (as.prefix.length > 0) {
    const [file, ...args] = [...as.prefix, 'test', '-x', state.dir];
    if (spawnSync(file, args).status !== 0) {
      throw new ClusterError(`PostgreSQL runs as another user (${as.prefix.join(' ')}), which cannot reach ${state.dir}: make its parent directories traversable (chmod o+x) or choose a directory under ${os.tmpdir()}`);
    }
  }
  if (!existsSync(path.join(pgPaths.data, 'PG_VERSION'))) {
    log(`initdb ${pgPaths.data}`);
    rmSync(pgPaths.root, { recursive: true, force: true });
    mkdirSync(pgPaths.root, { recursive: true, mode: 0o700 });
    if (as.uid !== undefined && as.gid !== undefined) chownSync(pgPaths.root, as.uid, as.gid);
    await run('initdb (PostgreSQL)', [...as.prefix, path.join(bin, 'initdb'), '-D', pgPaths.data, '-U', PG_USER, '--auth=trust', '--no-locale', '-E', 'UTF8'], 120_000);
  }
  if (postgresRunning(state.dir)) return;
  const opts = [
    `-c listen_addresses=${HOST}`,
    `-p ${state.ports.postgres}`,
    `-k ${pgPaths.root}`,
    // Temporal's services each keep pools for persistence and visibility, and Warden's run store its own.
    '-c max_connections=300',
    `-c fsync=${state.fsync ? 'on' : 'off'}`,
  ].join(' ');
  log(`starting PostgreSQL on ${HOST}:${state.ports.postgres}${state.fsync ? '' : ' (fsync off)'}`);
  try {
    await run('pg_ctl start (PostgreSQL)', [...as.prefix, path.join(bin, 'pg_ctl'), '-D', pgPaths.data, '-l', pgPaths.log, '-w', '-t', '60', '-o', opts, 'start'], 90_000);
  } catch (err) {
    throw new ClusterError(`${(err as Error).message}\nPostgreSQL log (${pgPaths.log}):\n${tail(pgPaths.log)}`);
  }
}

async function stopPostgres(dir: string): Promise<void> {
  const bin = findPostgresBin();
  const as = postgresRunAs();
  if (!bin || typeof as === 'string' || !postgresRunning(dir)) return;
  await run('pg_ctl stop (PostgreSQL)', [...as.prefix, path.join(bin, 'pg_ctl'), '-D', postgresPaths(dir).data, '-m', 'fast', '-w', '-t', '60', 'stop'], 90_000);
}

function postgresUrl(state: ClusterState, database: string): string {
  return `postgres://${PG_USER}@${HOST}:${state.ports.postgres}/${encodeURIComponent(database)}`;
}

async function ensureDatabase(state: ClusterState, name: string): Promise<boolean> {
  const admin = new pg.Client({ connectionString: postgresUrl(state, 'postgres') });
  await admin.connect();
  try {
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    await admin.query(`CREATE DATABASE "${name}"`);
    return true;
  } finally {
    await admin.end();
  }
}

/** Temporal's persistence and visibility schemas, with the SQL tool (which carries the schema files); re-runs only apply what is new. */
async function setupSchemas(state: ClusterState, sqlTool: string, log: (msg: string) => void): Promise<void> {
  for (const [database, schema] of [
    ['temporal', 'postgresql/v12/temporal'],
    ['temporal_visibility', 'postgresql/v12/visibility'],
  ] as const) {
    const base = [sqlTool, '--plugin', 'postgres12', '--endpoint', HOST, '--port', String(state.ports.postgres), '--user', PG_USER, '--password', '', '--database', database];
    if (await ensureDatabase(state, database)) {
      log(`schema ${schema} into a new database ${database}`);
      await run(`temporal-sql-tool setup-schema (${database})`, [...base, 'setup-schema', '-v', '0.0']);
    }
    await run(`temporal-sql-tool update-schema (${database})`, [...base, 'update-schema', '--schema-name', schema]);
  }
  await ensureDatabase(state, 'warden');
}

// The Temporal server -----------------------------------------------------------------------------

/**
 * The server's dynamic config. The queue processor limits and eager activities are what
 * `warden dev` runs its dev server with and docs/operations.md asks clusters for; the visibility
 * rate is the dev server's (the default, 10 a second per frontend, throttles listings and counts).
 */
export const CLUSTER_DYNAMIC_CONFIG: Record<string, unknown> = {
  ...Object.fromEntries(
    QUEUE_PROCESSOR_SETTINGS.map((setting) => {
      const [key, value] = setting.split('=') as [string, string];
      return [key, Number(value)];
    }),
  ),
  'system.enableActivityEagerExecution': true,
  'frontend.namespaceRPS.visibility': 100,
};

function configDir(dir: string): string {
  return path.join(dir, 'config');
}

/** The server's static config (`config/development.yaml`): PostgreSQL persistence and visibility, the shards, the ports. */
export function serverConfig(state: ClusterState): Record<string, unknown> {
  const sql = (database: string, maxConns: number) => ({
    sql: { pluginName: 'postgres12', databaseName: database, connectAddr: `${HOST}:${state.ports.postgres}`, connectProtocol: 'tcp', user: PG_USER, password: '', maxConns, maxIdleConns: maxConns, maxConnLifetime: '1h' },
  });
  const service = (grpcPort: number, membershipPort: number, extra: Record<string, unknown> = {}) => ({ rpc: { grpcPort, membershipPort, bindOnLocalHost: true, ...extra } });
  return {
    log: { stdout: true, level: state.logLevel },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      numHistoryShards: state.shards,
      datastores: { 'postgres-default': sql('temporal', 20), 'postgres-visibility': sql('temporal_visibility', 10) },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: HOST },
      metrics: { prometheus: { framework: 'tally', timerType: 'histogram', listenAddress: `${HOST}:${state.ports.metrics}` } },
    },
    services: {
      frontend: service(state.ports.frontend, state.ports.frontendMembership, { httpPort: state.ports.frontendHttp }),
      history: service(state.ports.history, state.ports.historyMembership),
      matching: service(state.ports.matching, state.ports.matchingMembership),
      worker: service(state.ports.worker, state.ports.workerMembership),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: { active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: state.address } },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    dynamicConfigClient: { filepath: path.join(configDir(state.dir), 'dynamicconfig.yaml'), pollInterval: '10s' },
  };
}

function writeConfig(state: ClusterState): void {
  mkdirSync(configDir(state.dir), { recursive: true });
  const header = '# Written by scripts/cluster (Warden); rewritten on every `up`.\n';
  writeFileSync(path.join(configDir(state.dir), 'development.yaml'), header + YAML.stringify(serverConfig(state)));
  const dynamic = Object.fromEntries(Object.entries(CLUSTER_DYNAMIC_CONFIG).map(([key, value]) => [key, [{ value }]]));
  writeFileSync(path.join(configDir(state.dir), 'dynamicconfig.yaml'), header + YAML.stringify(dynamic));
}

// Children this process started, so their exit is seen even before they are reaped.
const children = new Map<number, ChildProcess>();

function alive(pid: number | null | undefined, program = 'temporal-server'): boolean {
  if (pid === null || pid === undefined) return false;
  const child = children.get(pid);
  if (child) return child.exitCode === null && child.signalCode === null;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A pid reused by something else is not our server.
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(program);
  } catch {
    return true;
  }
}

function serverLog(dir: string): string {
  return path.join(dir, 'server.log');
}

/** Starts the server in the background (it outlives this process: `down` stops it) and waits until it serves the namespace. */
async function startServer(state: ClusterState, serverBin: string, log: (msg: string) => void, readyTimeoutMs: number): Promise<void> {
  const logFd = openSync(serverLog(state.dir), 'a');
  let child: ChildProcess;
  try {
    child = spawn(serverBin, ['--root', state.dir, '--config', 'config', '--env', 'development', '--allow-no-auth', 'start'], { detached: true, stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new ClusterError(`cannot run ${serverBin}`);
  children.set(pid, child);
  child.unref();
  state.serverPid = pid;
  saveState(state);
  log(`starting the Temporal server (pid ${pid}, ${state.shards} history shards), frontend ${state.address}`);
  await waitForServer(state, readyTimeoutMs);
}

/** SIGTERM: the process drains and stops (SIGKILL after 30 s); SIGKILL: a crash. */
async function stopProcess(pid: number | null | undefined, program: string, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  if (pid !== null && pid !== undefined && alive(pid, program)) {
    process.kill(pid, signal);
    const deadline = Date.now() + 30_000;
    while (alive(pid, program) && Date.now() < deadline) await sleep(100);
    if (alive(pid, program)) process.kill(pid, 'SIGKILL');
    while (alive(pid, program)) await sleep(50);
  }
  children.delete(pid ?? -1);
}

async function stopServer(state: ClusterState, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  await stopProcess(state.serverPid, 'temporal-server', signal);
  state.serverPid = null;
  saveState(state);
}

async function stopUi(state: ClusterState): Promise<void> {
  await stopProcess(state.uiPid, 'temporal-ui-server', 'SIGTERM');
  state.uiPid = null;
  state.uiUrl = null;
  saveState(state);
}

/**
 * The Temporal Web UI (`temporal-ui-server`, built by build.sh) on the cluster's frontend, with
 * its own config in `ui/config/development.yaml`. Optional: without the binary, or should it not
 * answer, the cluster runs without it and says so.
 */
async function startUi(state: ClusterState, binary: string, log: (msg: string) => void): Promise<void> {
  if (!existsSync(binary)) {
    log(`no Web UI: ${binary} is not built (scripts/cluster/build.sh builds it)`);
    return;
  }
  if (state.ports.ui === undefined || !(await portsFree([state.ports.ui]))) state.ports.ui = (await freeLowPorts(1))[0]!;
  const root = path.join(state.dir, 'ui');
  mkdirSync(path.join(root, 'config'), { recursive: true });
  const config = {
    temporalGrpcAddress: state.address,
    host: HOST,
    port: state.ports.ui,
    enableUi: true,
    defaultNamespace: state.namespace,
    cors: { cookieInsecure: true },
    notifyOnNewVersion: false,
    hideLogs: true,
  };
  writeFileSync(path.join(root, 'config', 'development.yaml'), `# Written by scripts/cluster (Warden); rewritten on every \`up\`.\n${YAML.stringify(config)}`);
  const uiLog = path.join(state.dir, 'ui.log');
  const logFd = openSync(uiLog, 'a');
  let child: ChildProcess;
  try {
    child = spawn(binary, ['--root', root, '--env', 'development', 'start'], { detached: true, stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  if (child.pid === undefined) return log(`no Web UI: cannot run ${binary}`);
  children.set(child.pid, child);
  child.unref();
  state.uiPid = child.pid;
  const url = `http://${HOST}:${state.ports.ui}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (!alive(state.uiPid, 'temporal-ui-server')) {
      log(`no Web UI: it exited at start (${uiLog}):\n${tail(uiLog)}`);
      return stopUi(state);
    }
    const answered = await fetch(`${url}/`).then(
      (r) => r.status < 500,
      () => false,
    );
    if (answered) break;
    if (Date.now() > deadline) {
      log(`no Web UI: it did not answer at ${url} within 60 s (${uiLog})`);
      return stopUi(state);
    }
    await sleep(250);
  }
  state.uiUrl = url;
  saveState(state);
  log(`Web UI at ${url}`);
}

async function withConnection<T>(address: string, fn: (connection: Connection) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address, connectTimeout: 2000 });
  try {
    return await fn(connection);
  } finally {
    await connection.close();
  }
}

/** Until the frontend answers, or the server dies (with its log's tail). */
async function waitForServer(state: ClusterState, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastProblem = 'no attempt yet';
  for (;;) {
    if (!alive(state.serverPid)) throw new ClusterError(`the Temporal server exited before it answered at ${state.address}.\nServer log (${serverLog(state.dir)}):\n${tail(serverLog(state.dir))}`);
    if (Date.now() > deadline) throw new ClusterError(`the Temporal server did not answer at ${state.address} within ${timeoutMs} ms (last problem: ${lastProblem}).\nServer log:\n${tail(serverLog(state.dir))}`);
    try {
      await withConnection(state.address, (c) => c.withDeadline(Date.now() + 2000, () => c.workflowService.getSystemInfo({})));
      return;
    } catch (err) {
      lastProblem = (err as Error).message;
    }
    await sleep(250);
  }
}

async function temporalCli(): Promise<string> {
  return resolveTemporalBinary({ allowBuild: true, log: (msg) => process.stderr.write(`[cluster] ${msg}\n`) });
}

/**
 * The namespace and Warden's search attributes, created once with the Temporal CLI as an operator
 * would; then waits until the frontend takes a query on them (a new namespace and new attributes
 * reach the frontend's caches within seconds).
 */
async function ensureNamespace(state: ClusterState, log: (msg: string) => void, timeoutMs: number): Promise<void> {
  const cli = await temporalCli();
  const common = ['--address', state.address, '--namespace', state.namespace];
  const exists = await withConnection(state.address, (c) =>
    c.workflowService.describeNamespace({ namespace: state.namespace }).then(
      () => true,
      (err: Error & { code?: number }) => {
        if (err.code === 5) return false; // NOT_FOUND
        throw new ClusterError(`describe namespace ${state.namespace} at ${state.address} failed: ${err.message}`);
      },
    ),
  );
  if (!exists) {
    log(`creating namespace ${state.namespace}`);
    await run(`temporal operator namespace create ${state.namespace}`, [cli, 'operator', 'namespace', 'create', ...common, '--retention', '72h']);
  }
  // The frontend's namespace cache takes a new namespace in within seconds (10 s at most by default).
  const registered = await retry(`namespace ${state.namespace} to be served at ${state.address}`, timeoutMs, () =>
    withConnection(state.address, (c) => c.operatorService.listSearchAttributes({ namespace: state.namespace })),
  );
  for (const key of wardenSearchAttributes) {
    if (key.name in registered.customAttributes) continue;
    log(`registering search attribute ${key.name} (${key.type})`);
    await run(`temporal operator search-attribute create ${key.name}`, [cli, 'operator', 'search-attribute', 'create', ...common, '--name', key.name, '--type', 'Keyword']);
  }
  // A visibility query naming every attribute fails until the frontend knows them all.
  const query = wardenSearchAttributes.map((key) => `${key.name} = 'probe'`).join(' AND ');
  await retry(`Warden's search attributes to be usable in namespace ${state.namespace}`, timeoutMs, () =>
    withConnection(state.address, (c) => c.workflowService.countWorkflowExecutions({ namespace: state.namespace, query })),
  );
}

/** `fn` until it resolves, every half second; past `timeoutMs` an error naming `what` and the last failure. */
async function retry<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw new ClusterError(`timed out after ${timeoutMs} ms waiting for ${what}: ${(err as Error).message.split('\n')[0]}`);
    }
    await sleep(500);
  }
}

// State -------------------------------------------------------------------------------------------

function saveState(state: ClusterState): void {
  writeFileSync(path.join(state.dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
}

export function readState(dir = defaultClusterDir()): ClusterState | null {
  const file = path.join(dir, STATE_FILE);
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ClusterState;
  } catch (err) {
    throw new ClusterError(`${file} is not readable JSON (remove the directory with scripts/cluster/down.sh --purge): ${(err as Error).message}`);
  }
}

function withHelpers(state: ClusterState): Cluster {
  return { ...state, serverLog: serverLog(state.dir), postgresUrl: (database) => postgresUrl(state, database) };
}

async function portsFree(ports: number[]): Promise<boolean> {
  for (const port of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, HOST, () => server.close(() => resolve(true)));
    });
    if (!free) return false;
  }
  return true;
}

/**
 * `count` distinct ports free on 127.0.0.1 below 32768. The server records each service's
 * membership port in a PostgreSQL smallint column, so the ports the OS hands out (from 32768 up
 * on Linux) do not fit; these are drawn at random from 20000–32767 and checked by binding.
 */
async function freeLowPorts(count: number): Promise<number[]> {
  const picked = new Set<number>();
  for (let tries = 0; picked.size < count; tries++) {
    if (tries > 2000) throw new ClusterError(`cannot find ${count} free ports on ${HOST} between 20000 and 32767`);
    const port = 20000 + Math.floor(Math.random() * 12768);
    if (!picked.has(port) && (await portsFree([port]))) picked.add(port);
  }
  return [...picked];
}

/** Free ports for every listener; PostgreSQL keeps `postgres` when given (it is running there). */
async function pickPorts(postgres?: number): Promise<ClusterState['ports']> {
  const names = ['frontend', 'frontendHttp', 'frontendMembership', 'history', 'historyMembership', 'matching', 'matchingMembership', 'worker', 'workerMembership', 'metrics', 'postgres'] as const;
  const free = await freeLowPorts(names.length);
  const ports = Object.fromEntries(names.map((name, i) => [name, free[i] ?? 0])) as ClusterState['ports'];
  if (postgres !== undefined) ports.postgres = postgres;
  return ports;
}

/**
 * Brings the cluster up, or finds it up: PostgreSQL, the schemas, the config, the server, the
 * namespace and search attributes. Re-running it on a running cluster changes nothing; on a
 * stopped one it starts what is down with the data it had.
 */
export async function upCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const log = options.log ?? ((msg: string) => process.stderr.write(`[cluster] ${msg}\n`));
  const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
  const dir = path.resolve(options.dir ?? defaultClusterDir());
  const unavailable = clusterUnavailable();
  if (unavailable) throw new ClusterError(unavailable);
  const bins = clusterBinaries();
  mkdirSync(dir, { recursive: true });
  // PostgreSQL runs as another user when this is root: it must reach its directory inside this one.
  chmodSync(dir, 0o755);

  let state = readState(dir);
  if (state && options.shards !== undefined && options.shards !== state.shards) {
    throw new ClusterError(`the cluster in ${dir} was set up with ${state.shards} history shards; the count cannot change after setup (scripts/cluster/down.sh --purge, then up with --shards ${options.shards})`);
  }
  if (state && options.namespace !== undefined && options.namespace !== state.namespace) {
    state.namespace = options.namespace;
    saveState(state);
  }
  const wantUi = options.ui ?? process.env.WARDEN_CLUSTER_UI !== '0';
  if (state && alive(state.serverPid)) {
    log(`already up at ${state.address} (pid ${state.serverPid})`);
    await ensureNamespace(state, log, readyTimeoutMs);
    if (wantUi && !alive(state.uiPid, 'temporal-ui-server')) await startUi(state, bins.ui, log);
    return withHelpers(state);
  }
  if (state) {
    // Stopped: the same ports if they are still free, so the address stays the same.
    const { postgres, ...server } = state.ports;
    const pgUp = postgresRunning(dir);
    if (!(await portsFree([...Object.values(server), ...(pgUp ? [] : [postgres])]))) {
      state.ports = await pickPorts(pgUp ? postgres : undefined);
      state.address = `${HOST}:${state.ports.frontend}`;
      log(`the ports of the last run are taken; the frontend moves to ${state.address}`);
    }
    // A rebuilt server updates the schemas below (update-schema applies what is new).
    state.version = bins.version ?? state.version;
    state.fsync = options.fsync ?? state.fsync;
    state.logLevel = options.logLevel ?? state.logLevel;
  } else {
    const ports = await pickPorts();
    state = {
      dir,
      version: bins.version ?? 'unknown',
      shards: options.shards ?? DEFAULT_SHARDS,
      namespace: options.namespace ?? 'default',
      address: `${HOST}:${ports.frontend}`,
      ports,
      fsync: options.fsync ?? true,
      logLevel: options.logLevel ?? 'warn',
      serverPid: null,
      runStoreUrl: '',
    };
  }
  state.runStoreUrl = postgresUrl(state, 'warden');
  saveState(state);

  await startPostgres(state, log);
  await setupSchemas(state, bins.sqlTool, log);
  writeConfig(state);
  await startServer(state, bins.server, log, readyTimeoutMs);
  try {
    await ensureNamespace(state, log, readyTimeoutMs);
  } catch (err) {
    await stopServer(state);
    throw err;
  }
  if (wantUi && !alive(state.uiPid, 'temporal-ui-server')) await startUi(state, bins.ui, log);
  return withHelpers(state);
}

/**
 * Stops the server and waits until it serves the namespace again: what a deploy looks like to
 * workers and clients, or with `crash` (SIGKILL, nothing drained) what a crashed server does.
 */
export async function restartServer(cluster: ClusterState, options: Pick<ClusterOptions, 'log' | 'readyTimeoutMs'> & { crash?: boolean } = {}): Promise<void> {
  const log = options.log ?? ((msg: string) => process.stderr.write(`[cluster] ${msg}\n`));
  await stopServer(cluster, options.crash ? 'SIGKILL' : 'SIGTERM');
  await startServer(cluster, clusterBinaries().server, log, options.readyTimeoutMs ?? 120_000);
  await ensureNamespace(cluster, log, options.readyTimeoutMs ?? 120_000);
}

/** Stops the server and PostgreSQL; `purge` also removes the state directory (data, config, logs). */
export async function downCluster(options: { dir?: string; purge?: boolean; log?: (msg: string) => void } = {}): Promise<void> {
  const log = options.log ?? ((msg: string) => process.stderr.write(`[cluster] ${msg}\n`));
  const dir = path.resolve(options.dir ?? defaultClusterDir());
  const state = readState(dir);
  if (state) {
    if (alive(state.uiPid, 'temporal-ui-server')) log(`stopping the Web UI (pid ${state.uiPid})`);
    await stopUi(state);
    if (alive(state.serverPid)) log(`stopping the Temporal server (pid ${state.serverPid})`);
    await stopServer(state);
  }
  if (postgresRunning(dir)) {
    log('stopping PostgreSQL');
    await stopPostgres(dir);
  }
  if (options.purge && existsSync(dir)) {
    log(`removing ${dir}`);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether the server and PostgreSQL of the cluster in `dir` are running. */
export function clusterStatus(dir = defaultClusterDir()): { state: ClusterState | null; server: boolean; postgres: boolean } {
  const state = readState(dir);
  return { state, server: state ? alive(state.serverPid) : false, postgres: postgresRunning(dir) };
}
