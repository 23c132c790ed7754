import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DevServerError, TemporalBinaryNotFoundError } from './errors';

/**
 * The CLI release Warden builds with `go install`. Later tags carry a `replace` directive in their
 * go.mod, which `go install pkg@version` refuses, so this cannot simply be `latest`.
 */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';

const exe = process.platform === 'win32' ? '.exe' : '';

/** `$WARDEN_CACHE_DIR`, else `~/.cache/warden`: where Warden keeps binaries it built. */
export function wardenCacheDir(): string {
  return process.env.WARDEN_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'warden');
}

/** Where a Temporal CLI built (or placed) for Warden lives. */
export function cachedTemporalBinaryPath(): string {
  return path.join(wardenCacheDir(), 'bin', `temporal${exe}`);
}

async function isExecutableFile(file: string): Promise<boolean> {
  try {
    if (!(await stat(file)).isFile()) return false;
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function findOnPath(name: string): Promise<string | null> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, `${name}${exe}`);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return null;
}

function tail(text: string, lines = 20): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

async function goInstall(go: string, binDir: string): Promise<void> {
  await mkdir(binDir, { recursive: true });
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, ['install', `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`], {
      env: { ...process.env, GOBIN: binDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`exited with ${signal ?? `code ${code}`}: ${tail(output)}`));
    });
  });
}

export interface ResolveTemporalBinaryOptions {
  /** Build the CLI with `go install` when Go is on PATH and nothing else was found. Default true. */
  allowBuild?: boolean;
  /** Progress notes (the Go build takes minutes). Default: stderr. */
  log?: (msg: string) => void;
}

/**
 * Finds a Temporal CLI binary to run `temporal server start-dev` with, in this order:
 * `$TEMPORAL_CLI_PATH`, `temporal` on PATH, the Warden cache, and a `go install` into the cache.
 *
 * Use it before spawning the dev server yourself; `startDevServer` calls it for you.
 * A `TEMPORAL_CLI_PATH` that points nowhere is an error (a `DevServerError`), never silently skipped.
 * When nothing is found it throws `TemporalBinaryNotFoundError` listing what was tried: the
 * caller's cue to fall back to the SDK's own download where the machine has internet.
 */
export async function resolveTemporalBinary(opts: ResolveTemporalBinaryOptions = {}): Promise<string> {
  const log = opts.log ?? ((msg: string) => process.stderr.write(`[warden] ${msg}\n`));
  const tried: string[] = [];

  const explicit = process.env.TEMPORAL_CLI_PATH;
  if (explicit !== undefined && explicit !== '') {
    if (await isExecutableFile(explicit)) return explicit;
    const exists = await stat(explicit).then(
      (s) => (s.isFile() ? 'is not executable' : 'is not a file'),
      () => 'does not exist',
    );
    throw new DevServerError(`TEMPORAL_CLI_PATH is set to ${explicit}, which ${exists}. Point it at a Temporal CLI binary or unset it.`);
  }
  tried.push('TEMPORAL_CLI_PATH: not set');

  const onPath = await findOnPath('temporal');
  if (onPath) return onPath;
  tried.push('`temporal` on PATH: not found');

  const cached = cachedTemporalBinaryPath();
  if (await isExecutableFile(cached)) return cached;
  tried.push(`Warden cache ${cached}: not there`);

  const install = `GOBIN=${path.dirname(cached)} go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`;
  if (opts.allowBuild === false) {
    tried.push(`${install}: building not allowed here`);
  } else {
    const go = await findOnPath('go');
    if (!go) {
      tried.push(`${install}: \`go\` not on PATH`);
    } else {
      log(`Building the Temporal CLI ${TEMPORAL_CLI_VERSION} with ${go}; this takes a few minutes, once.`);
      try {
        await goInstall(go, path.dirname(cached));
        if (await isExecutableFile(cached)) {
          log(`Built ${cached}`);
          return cached;
        }
        tried.push(`${install}: finished but ${cached} is not there`);
      } catch (err) {
        tried.push(`${install}: ${(err as Error).message}`);
      }
    }
  }
  throw new TemporalBinaryNotFoundError(tried);
}
