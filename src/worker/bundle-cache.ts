import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger as TemporalLogger, LogLevel, LogMetadata } from '@temporalio/common';
import type { BundleOptions } from '@temporalio/worker';
import type { Logger } from 'pino';
import { bundleWardenWorkflows, FAILURE_CONVERTER_PATH, SHARED_WORKFLOW_MODULES, WORKFLOWS_PATH } from './bundle';

/** Bumped when what a cache entry holds changes shape: older entries are then never read. */
const CACHE_FORMAT = 1;

/** What the bundle was built from, beyond the files webpack read. */
export interface BundleCacheOptions {
  /** The directory to keep bundles in (`warden worker` uses `~/.cache/warden/workflow-bundles`, or `$WARDEN_CACHE_DIR/workflow-bundles`). */
  dir: string;
  /** Workflow interceptor modules bundled in (`WORKFLOW_TELEMETRY_MODULES` for a worker that traces). */
  workflowInterceptorModules?: readonly string[];
  logger: Logger;
}

/** Every file webpack read, with its content digest, and the paths it looked for and did not find. */
interface Manifest {
  format: number;
  key: string;
  files: Record<string, string>;
  missing: string[];
}

export interface CachedBundle {
  /** The bundle's file, or its code when the cache directory cannot be written. */
  bundle: { codePath: string } | { code: string };
  /** Taken from the cache (true) or bundled now (false). */
  cached: boolean;
  /** How long finding or making it took. */
  ms: number;
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function fileDigest(file: string): string | null {
  try {
    return sha256(readFileSync(file));
  } catch {
    return null;
  }
}

function sdkVersion(pkg: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(`${pkg}/package.json`) as { version: string }).version;
}

/** The key of what does not come from reading files: SDK and webpack versions, the bundle's options. */
function optionsKey(interceptors: readonly string[]): string {
  return sha256(
    JSON.stringify({
      format: CACHE_FORMAT,
      worker: sdkVersion('@temporalio/worker'),
      workflow: sdkVersion('@temporalio/workflow'),
      webpack: sdkVersion('webpack'),
      workflowsPath: WORKFLOWS_PATH,
      failureConverterPath: FAILURE_CONVERTER_PATH,
      preloadModules: SHARED_WORKFLOW_MODULES,
      workflowInterceptorModules: interceptors,
    }),
  ).slice(0, 32);
}

/** Whether every file the cached bundle was built from is as it was, and nothing it looked for and missed has appeared. */
function stillFresh(manifest: Manifest): boolean {
  for (const [file, digest] of Object.entries(manifest.files)) if (fileDigest(file) !== digest) return false;
  return !manifest.missing.some((file) => existsSync(file));
}

/** The SDK bundler's log, into the worker's: webpack's module report is debug detail, never an info line. */
function bundlerLogger(logger: Logger): TemporalLogger {
  const at = (level: LogLevel) => (message: string, meta?: LogMetadata) => {
    const fields = { ...meta, component: 'workflow-bundler' };
    if (level === 'ERROR') logger.error(fields, message);
    else if (level === 'WARN') logger.warn(fields, message);
    else logger.debug(fields, message.length > 200 ? `${message.slice(0, 200)}…` : message);
  };
  return { log: (level, message, meta) => at(level)(message, meta), trace: at('TRACE'), debug: at('DEBUG'), info: at('INFO'), warn: at('WARN'), error: at('ERROR') };
}

/**
 * Warden's workflow bundle from the cache when nothing it was built from changed, otherwise
 * bundled now (webpack, 15–20 s) and cached. Keyed by the SDK and webpack versions and the
 * bundle's options; an entry is used only while every file webpack read has the digest it had, and
 * no path webpack looked for and did not find has appeared since: a stale bundle is never served.
 */
export async function cachedWorkflowBundle(options: BundleCacheOptions): Promise<CachedBundle> {
  const started = Date.now();
  const interceptors = [...(options.workflowInterceptorModules ?? [])];
  const key = optionsKey(interceptors);
  const manifestPath = path.join(options.dir, `${key}.json`);
  const codePath = path.join(options.dir, `${key}.js`);
  try {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
    if (manifest.format === CACHE_FORMAT && manifest.key === key && existsSync(codePath) && stillFresh(manifest)) {
      return { bundle: { codePath }, cached: true, ms: Date.now() - started };
    }
  } catch {
    // No entry yet, or one that cannot be read: bundle afresh.
  }
  let read: { files: string[]; missing: string[] } = { files: [], missing: [] };
  const hook: BundleOptions['webpackConfigHook'] = (config) => ({
    ...config,
    plugins: [
      ...(config.plugins ?? []),
      {
        apply(compiler) {
          compiler.hooks.done.tap('warden-bundle-cache', (stats) => {
            read = { files: [...stats.compilation.fileDependencies], missing: [...stats.compilation.missingDependencies] };
          });
        },
      },
    ],
  });
  const { code } = await bundleWardenWorkflows({ logger: bundlerLogger(options.logger), webpackConfigHook: hook, ...(interceptors.length > 0 ? { workflowInterceptorModules: interceptors } : {}) });
  const files: Record<string, string> = {};
  for (const file of read.files) {
    // The SDK's generated entry point lives in memory only: the options key covers it.
    const digest = fileDigest(file);
    if (digest !== null) files[file] = digest;
  }
  const manifest: Manifest = { format: CACHE_FORMAT, key, files, missing: read.missing.filter((file) => !existsSync(file)) };
  try {
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    // Written under temporary names and renamed, code first: a worker starting meanwhile reads a whole entry or none.
    const suffix = `.${process.pid}.${Date.now()}.tmp`;
    writeFileSync(codePath + suffix, code, { mode: 0o600 });
    renameSync(codePath + suffix, codePath);
    writeFileSync(manifestPath + suffix, JSON.stringify(manifest), { mode: 0o600 });
    renameSync(manifestPath + suffix, manifestPath);
  } catch (err) {
    options.logger.warn({ err, dir: options.dir }, 'the workflow bundle could not be cached; the next start bundles again');
    return { bundle: { code }, cached: false, ms: Date.now() - started };
  }
  return { bundle: { codePath }, cached: false, ms: Date.now() - started };
}
