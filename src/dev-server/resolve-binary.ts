import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DevServerError, TemporalBinaryNotFoundError } from './dev-server-errors';

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

/** `4m05s`, `45s`: how long something has taken. */
function elapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** How often a Go build that is still going says so, by default. */
const PROGRESS_EVERY_MS = 15_000;

/**
 * Runs `go install -v`, which names each module it downloads (`go: downloading …`) and each
 * package it compiles, one per line: counted, they say how far the build is. Every `everyMs` a
 * note gives the time so far and the counts, so minutes of building never look like a hang.
 */
async function goInstall(go: string, binDir: string, log: (msg: string) => void, everyMs: number): Promise<void> {
  await mkdir(binDir, { recursive: true });
  const started = Date.now();
  let downloaded = 0;
  let compiled = 0;
  let output = '';
  let partial = '';
  const count = (chunk: Buffer) => {
    const text = chunk.toString();
    output = (output + text).slice(-16_384);
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('go: downloading ')) downloaded += 1;
      else if (line.trim() !== '' && !line.startsWith('go: ')) compiled += 1;
    }
  };
  const ticker = setInterval(() => {
    log(`  still building the Temporal CLI: ${elapsed(Date.now() - started)} so far, ${downloaded} module(s) downloaded, ${compiled} package(s) compiled`);
  }, everyMs);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(go, ['install', '-v', `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`], {
        env: { ...process.env, GOBIN: binDir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.on('data', count);
      child.stderr.on('data', count);
      child.on('error', reject);
      child.on('close', (code, signal) => {
        if (code === 0) resolve();
        else reject(new Error(`exited with ${signal ?? `code ${code}`}: ${tail(output)}`));
      });
    });
  } finally {
    clearInterval(ticker);
  }
  log(`Built the Temporal CLI into ${binDir} in ${elapsed(Date.now() - started)} (${compiled} packages compiled).`);
}

export interface ResolveTemporalBinaryOptions {
  /** Build the CLI with `go install` when Go is on PATH and nothing else was found. Default true. */
  allowBuild?: boolean;
  /** Progress notes (the Go build takes minutes). Default: stderr. */
  log?: (msg: string) => void;
  /** How often a Go build still going says so (time so far, modules downloaded, packages compiled). Default 15 s. */
  progressEveryMs?: number;
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
      log(
        `No Temporal CLI found (TEMPORAL_CLI_PATH, temporal on PATH, ${cached}): building ${TEMPORAL_CLI_VERSION} from source with ${go} into ${cached}. ` +
          'This happens once and takes a few minutes; later starts use the build.',
      );
      try {
        await goInstall(go, path.dirname(cached), log, opts.progressEveryMs ?? PROGRESS_EVERY_MS);
        if (await isExecutableFile(cached)) return cached;
        tried.push(`${install}: finished but ${cached} is not there`);
      } catch (err) {
        tried.push(`${install}: ${(err as Error).message}`);
      }
    }
  }
  throw new TemporalBinaryNotFoundError(tried);
}
