import { existsSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { modelIdOf } from '../agents';
import { TENANT_NAME } from '../governance';
import { openRunStore, redactStoreLocation } from '../store';
import { DEFAULT_MAX_CACHED_RUNS, connectWorker, createWardenWorker } from '../worker';
import { acceptPlaintextFromEnv, logLevelFromEnv, payloadCodecFromEnv, payloadKeysFile, settingsFromEnv, slackFromEnv, storeLocation, taskQueueFromEnv, trustedKeysFromEnv } from './context';
import type * as DevChannelsModule from './dev-channels';
import type { DevChannels } from './dev-channels';
import { CliError, UsageError, describeError } from './cli-errors';
import { out } from './format';
import { DEFAULT_PORT, describeStack, installRuntime, loadFleet, loadRegistry, runWorker, telemetryFromCliEnv, withPortOptions, type LocalStack } from './local-stack';
import { onShutdownSignal } from './serve';
import { defaultAgentsPath, defaultPoliciesPath, exampleAgentsPath } from './support/project-paths';
import { workerLogger } from '../telemetry/logs';
import { wardenCacheDir } from '../dev-server';

interface DevOptions {
  agents?: string;
  policies?: string;
  headless?: boolean;
  port?: number;
  uiPort?: number;
  inboxPort?: number;
}

/** Ends the process when a worker stops on its own (a fatal error), after cleaning up. */
function exitWhenWorkerDies(done: Promise<void>, cleanup: () => Promise<void>): void {
  done.then(
    () => undefined,
    async (err: unknown) => {
      process.stderr.write(`error: the worker stopped: ${describeError(err)}\n`);
      await cleanup().catch(() => undefined);
      process.exit(1);
    },
  );
}

/** The worker process's Node flags and malloc arenas, for its ready line (bin/worker-process.js sets them). */
function nodeSettings(): string {
  const flags = process.execArgv.length > 0 ? process.execArgv.join(' ') : 'no flags';
  return `node ${flags}, MALLOC_ARENA_MAX ${process.env.MALLOC_ARENA_MAX ?? 'unset'}`;
}

/** Readable log lines with `--pretty`, `WARDEN_LOG_PRETTY=1`, or on a terminal (unless `WARDEN_LOG_PRETTY=0`); JSON lines otherwise. */
function prettyLogs(flag: boolean | undefined): boolean {
  if (flag) return true;
  const env = process.env.WARDEN_LOG_PRETTY;
  if (env === '1' || env === 'true') return true;
  if (env === '0' || env === 'false') return false;
  return process.stdout.isTTY === true;
}

/** How long a worker whose launcher died may drain before it exits anyway. */
const LAUNCHER_GONE_GRACE_MS = 3000;

/**
 * Started by bin/worker-process.js (the tuned process): the worker lives and dies with the
 * `warden worker` command that started it, as if that command had exec'd it. When the command is
 * gone — its IPC channel closes, or this process is handed to another parent (a SIGKILL of the
 * command) — the worker drains as on SIGTERM, and exits after LAUNCHER_GONE_GRACE_MS at the
 * latest: a supervisor that killed the command may already be starting the next one. Calls still
 * in flight are retried by another worker after their heartbeat timeout.
 */
function dieWithLauncher(logger: { warn(fields: object, msg: string): void }): void {
  const launcher = process.ppid;
  let gone = false;
  const onGone = (how: string) => {
    if (gone) return;
    gone = true;
    logger.warn({ launcher, how }, 'the warden worker command that started this process is gone: stopping');
    setTimeout(() => process.exit(1), LAUNCHER_GONE_GRACE_MS).unref();
    process.kill(process.pid, 'SIGTERM');
  };
  process.once('disconnect', () => onGone('its IPC channel closed'));
  process.channel?.unref();
  // Belt and braces: a parent that changed means the command is gone, whatever the channel says.
  setInterval(() => {
    if (process.ppid !== launcher) onGone(`this process's parent is now ${process.ppid}`);
  }, 500).unref();
}

/** The SDK's workflow-task slots (40): a smaller cache would evict runs while their tasks are in progress. */
const MIN_CACHED_RUNS = 40;

/** `--max-cached-runs` / `WARDEN_MAX_CACHED_RUNS`: a whole number of runs, from the worker's task slots up. */
function parseCachedRuns(value: string): number {
  // Digits only: `Number` would also take "1e3" or "0x40".
  const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < MIN_CACHED_RUNS) {
    throw new InvalidArgumentError(`must be a whole number of runs, at least ${MIN_CACHED_RUNS} (the worker's workflow-task slots)`);
  }
  return n;
}

/** A file to print in a command: relative to the working directory when it is inside it. */
function shownPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

/** How many agents `warden dev` suggests a run of; the rest are named. */
const SUGGESTED_AGENTS = 3;

/**
 * What to try from another terminal, for the agents the worker serves: the example refunds when
 * the examples are loaded, else a run of each agent (with `--script` for a scripted model).
 */
function runSuggestions(stack: LocalStack, agentsPath: string, channels: DevChannels): string[] {
  const agents = stack.registry.list();
  const inbox = `${channels.inbox.url} (${channels.signInHint})`;
  if (path.resolve(agentsPath) === exampleAgentsPath() && agents.some((a) => a.name === 'refund-agent')) {
    const scripts = path.join(exampleAgentsPath(), 'scripts');
    return [
      `  warden run refund-agent --goal "Order ORD-1001 arrived late; refund what is fair" --script ${shownPath(path.join(scripts, 'refund-out-of-scope.json'))} --wait`,
      `  warden run refund-agent --goal "The desk from ORD-1003 arrived cracked; refund it" --script ${shownPath(path.join(scripts, 'refund-large.json'))}`,
      `      a $450 refund waits for finance: approve it in the inbox, ${inbox}`,
      '  warden approvals          # or from the terminal: warden approve <run> <approval> --as alice',
    ];
  }
  const scripted = agents.filter((a) => modelIdOf(a.model) === 'scripted');
  const lines = agents.slice(0, SUGGESTED_AGENTS).map((a) => `  warden run ${a.name} --goal "<what ${a.name} should do>"${scripted.includes(a) ? ' --script <turns.json>' : ''} --wait`);
  if (agents.length > SUGGESTED_AGENTS) lines.push(`      (likewise ${agents.slice(SUGGESTED_AGENTS).map((a) => a.name).join(', ')})`);
  const example = scripted[0];
  if (example) {
    const tool = example.tools[0]?.name ?? '<tool>';
    lines.push(`      a scripted model answers from --script, a JSON array of turns: [{"toolCalls":[{"name":"${tool}","args":{…}}]},{"text":"Done."}]`);
  }
  lines.push(`  warden approvals          # calls waiting for approval; decide them in the inbox, ${inbox}, or with warden approve`);
  return lines;
}

/** `--agents` and `--policies`, the same for every command that runs a worker. */
function withAgentOptions(command: Command): Command {
  return command
    .option('--agents <module>', 'module exporting agents (TS or JS)', defaultAgentsPath())
    .option('--policies <dir>', 'directory of policy files', defaultPoliciesPath());
}

export function registerDev(program: Command): void {
  withPortOptions(
    withAgentOptions(program.command('dev'))
      .description('Start a local Temporal dev server (with UI), dev signing keys and a worker, in one process; Ctrl-C stops all')
      .option('--headless', 'no Temporal Web UI'),
  ).action(async (opts: DevOptions) => {
    out('starting the Temporal dev server, a worker and the web inbox…');
    const agents = opts.agents ?? defaultAgentsPath();
    // Loaded here, not for `warden worker`: the inbox, Slack's Bolt and Express are `warden dev`'s alone.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { startDevEnvironment } = require('./dev-channels') as typeof DevChannelsModule;
    const env = await startDevEnvironment({
      agents,
      policies: opts.policies ?? defaultPoliciesPath(),
      headless: opts.headless,
      port: opts.port,
      uiPort: opts.uiPort,
      inboxPort: opts.inboxPort,
    });
    const { stack, channels } = env;
    onShutdownSignal(() => env.shutdown(), 'stopping the inbox, the worker and the Temporal dev server');
    exitWhenWorkerDies(stack.worker.done, () => env.shutdown());
    const address = stack.settings.address;
    const exportLine = address === `127.0.0.1:${DEFAULT_PORT}` ? [] : [`  export TEMPORAL_ADDRESS=${address}`];
    for (const line of [
      '',
      'Warden dev environment is up',
      ...describeStack(stack),
      ...channels.lines,
      '',
      'Start a run from another terminal:',
      ...exportLine,
      ...runSuggestions(stack, agents, channels),
      '',
      'Ctrl-C stops the inbox, the worker and the server.',
    ]) {
      out(line);
    }
    await stack.worker.done.catch(() => undefined);
  });

  withAgentOptions(program.command('worker'))
    .description('Run a worker against TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE (trusted keys and what each may assert from WARDEN_TRUSTED_KEYS, re-read when it changes)')
    .option('--workflow-bundle <file>', 'a prebuilt workflow bundle (bundleWorkflowCode output) instead of the cached one (bundled at the first start, in $WARDEN_CACHE_DIR/workflow-bundles)')
    .option('--pretty', 'log readable lines instead of one JSON object per line (the default on a terminal; WARDEN_LOG_PRETTY=1)')
    .addOption(
      new Option('--max-cached-runs <n>', `runs kept in memory (default ${DEFAULT_MAX_CACHED_RUNS}); past it the least recently used are replayed from history when they next have work: more is faster approvals for more memory`)
        .env('WARDEN_MAX_CACHED_RUNS')
        .argParser(parseCachedRuns),
    )
    .addOption(new Option('--default-tenant <name>', "the tenant of runs whose start does not sign one (quotas scoped by tenant, run.tenant); default none").env('WARDEN_DEFAULT_TENANT'))
    .action(async (opts: { agents: string; policies: string; workflowBundle?: string; maxCachedRuns?: number; pretty?: boolean; defaultTenant?: string }) => {
      const logger = workerLogger({ name: 'warden-worker', level: logLevelFromEnv('info'), pretty: prettyLogs(opts.pretty) });
      installRuntime('INFO', logger);
      const maxCachedRuns = opts.maxCachedRuns ?? DEFAULT_MAX_CACHED_RUNS;
      const registry = loadRegistry(opts.agents, opts.policies);
      const fleet = loadFleet(opts.policies);
      if (opts.defaultTenant !== undefined && !TENANT_NAME.test(opts.defaultTenant)) throw new UsageError(`--default-tenant must be 1–128 printable characters, got "${opts.defaultTenant}"`);
      const settings = settingsFromEnv();
      let keyring: ReturnType<typeof trustedKeysFromEnv>;
      try {
        // Read now, so a bad file stops the worker here; afterwards every decision re-reads it if it changed.
        keyring = trustedKeysFromEnv();
      } catch (err) {
        throw new CliError(`WARDEN_TRUSTED_KEYS: ${err instanceof Error ? err.message : String(err)}`);
      }
      const keyCount = Object.values(keyring()).filter((grant) => !grant.revoked).length;
      if (opts.workflowBundle && !existsSync(opts.workflowBundle)) throw new CliError(`workflow bundle ${opts.workflowBundle} does not exist`);
      // Resolved as every CLI client resolves it, so runs started with `warden run` here can be read.
      const payloadCodec = payloadCodecFromEnv();
      const acceptPlaintextPayloads = acceptPlaintextFromEnv();
      const payloads = payloadCodec
        ? `payloads encrypted with key ${payloadCodec.currentKeyId} of ${payloadKeysFile()?.file ?? ''}, ${acceptPlaintextPayloads ? 'PLAINTEXT ACCEPTED too (WARDEN_ACCEPT_PLAINTEXT_PAYLOADS=1)' : 'plaintext refused'}`
        : 'payloads NOT encrypted (set WARDEN_PAYLOAD_KEYS to a payload key file)';
      const telemetry = telemetryFromCliEnv();
      const storePath = storeLocation();
      const store = await openRunStore(storePath);
      let connection;
      try {
        connection = await connectWorker(settings);
      } catch (err) {
        await store.close();
        await telemetry?.shutdown().catch(() => undefined);
        throw new CliError(describeError(err, { address: settings.address }));
      }
      const worker = runWorker(
        await createWardenWorker({
          registry,
          store,
          connection,
          settings,
          keyring,
          payloadCodec,
          acceptPlaintextPayloads,
          taskQueue: taskQueueFromEnv(),
          slack: slackFromEnv(),
          logger,
          bundleCache: path.join(wardenCacheDir(), 'workflow-bundles'),
          ...(telemetry ? { telemetry } : {}),
          ...(opts.workflowBundle ? { workflowBundle: { codePath: path.resolve(opts.workflowBundle) } } : {}),
          workerOptions: { maxCachedWorkflows: maxCachedRuns },
          ...(fleet ? { fleet } : {}),
          ...(opts.defaultTenant !== undefined ? { defaultTenant: opts.defaultTenant } : {}),
          // The one place model keys are read: the library itself reads no environment variables.
          modelEnv: process.env,
        }),
      );
      const conn = connection;
      const cleanup = async () => {
        await worker.shutdown();
        // The last spans and metrics leave before the process does.
        await telemetry?.shutdown().catch(() => undefined);
        await conn.close().catch(() => undefined);
        await store.close();
      };
      onShutdownSignal(cleanup, 'draining the worker');
      exitWhenWorkerDies(worker.done, cleanup);
      if (process.env.WARDEN_WORKER_TUNED === '1' && process.connected) dieWithLauncher(logger);
      out(
        `worker ready: task queue ${taskQueueFromEnv()} at ${settings.address} (namespace ${settings.namespace}); ` +
          `agents: ${registry.list().map((a) => a.name).join(', ')}; run store ${redactStoreLocation(storePath)}; ${keyCount} trusted key(s)${process.env.WARDEN_TRUSTED_KEYS ? ` from ${process.env.WARDEN_TRUSTED_KEYS}, re-read when it changes` : ''}; ${payloads}${telemetry ? `; traces and metrics to ${process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? ''} (OTLP/HTTP)` : ''}; up to ${maxCachedRuns} runs in memory; ${nodeSettings()}`,
      );
      await worker.done.catch(() => undefined);
    });
}
