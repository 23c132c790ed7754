/**
 * `warden worker` starts from a cached workflow bundle: the first start bundles with webpack and
 * keeps the bundle in Warden's cache directory, a restart with nothing changed takes it from there.
 * A bundle is never served stale: a file webpack read that changed, or a path it missed that now
 * exists, means bundling again. The worker logs one JSON object per line, without webpack's report.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { cachedWorkflowBundle } from '../src/worker';
import { repoRoot, wardenBin } from './fixtures/run-cli';
import { eventually, settings } from './helpers';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-worker-start-'));
const cacheDir = path.join(tmp, 'cache');
const fixture = path.join(repoRoot, 'test', 'fixtures', 'custom-agents');

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Started {
  readyMs: number;
  lines: string[];
}

/** `warden worker` without a prebuilt bundle, on a queue of its own, with the notes agent. */
function spawnWorker(extraEnv: NodeJS.ProcessEnv = {}): ChildProcessWithoutNullStreams {
  const { address, namespace } = settings();
  return spawn(process.execPath, [wardenBin, 'worker', '--agents', path.join(fixture, 'index.ts'), '--policies', path.join(fixture, 'policies')], {
    cwd: repoRoot,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: namespace,
      WARDEN_HOME: path.join(tmp, 'home'),
      WARDEN_CACHE_DIR: cacheDir,
      WARDEN_TASK_QUEUE: `worker-start-${Math.random().toString(36).slice(2, 10)}`,
      WARDEN_LOG_LEVEL: 'info',
      NOTES_DIR: path.join(tmp, 'notes'),
      ...extraEnv,
    },
    stdio: 'pipe',
  });
}

/** Starts `warden worker`, waits for its ready line, then stops it with SIGTERM. */
function startAndStop(extraEnv: NodeJS.ProcessEnv = {}): Promise<Started> {
  const started = Date.now();
  const child = spawnWorker(extraEnv);
  let output = '';
  let readyMs = -1;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`warden worker was not ready in 150 s: ${output}`));
    }, 150_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (readyMs < 0 && output.includes('worker ready')) {
        readyMs = Date.now() - started;
        child.kill('SIGTERM');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (readyMs < 0 || code !== 0) reject(new Error(`warden worker exited with ${code} before ready or uncleanly: ${output}`));
      else resolve({ readyMs, lines: output.split('\n').filter((l) => l.trim() !== '') });
    });
  });
}

/** The CLI's own status lines (ready, draining on SIGTERM) are for the person at the terminal; every other line is a log line. */
const STATUS_LINE = /^(worker ready|draining the worker|stopped$)/;

function logLines(lines: string[]): Record<string, unknown>[] {
  return lines.filter((l) => !STATUS_LINE.test(l)).map((l) => JSON.parse(l) as Record<string, unknown>);
}

let cold: Started;

test('a restart takes the workflow bundle from the cache and is ready sooner; the log is JSON lines without a webpack report', async () => {
  cold = await startAndStop();
  // A source file edited meanwhile (a shared working tree) rightly means bundling again: a few tries at most.
  let warm = await startAndStop();
  for (let tries = 1; tries < 3 && !warm.lines.some((l) => l.includes('"cached":true')); tries++) warm = await startAndStop();
  console.log(`worker start: ready in ${cold.readyMs} ms with an empty cache (webpack), ${warm.readyMs} ms from the cache`);
  for (const started of [cold, warm]) {
    // Every line but the ready line is one JSON object; nothing of webpack's module report.
    expect(() => logLines(started.lines)).not.toThrow();
    expect(started.lines.join('\n')).not.toMatch(/webpack \d|modules by path|orphan modules|compiled successfully/);
  }
  expect(logLines(cold.lines)).toEqual(expect.arrayContaining([expect.objectContaining({ msg: 'workflows bundled (cached for the next start)', cached: false })]));
  expect(logLines(warm.lines)).toEqual(expect.arrayContaining([expect.objectContaining({ msg: 'workflow bundle taken from the cache', cached: true })]));
  expect(readdirSync(path.join(cacheDir, 'workflow-bundles')).filter((f) => f.endsWith('.js'))).toHaveLength(1);
}, 400_000);

test('WARDEN_LOG_PRETTY=1 logs readable lines instead', async () => {
  const pretty = await startAndStop({ WARDEN_LOG_PRETTY: '1' });
  const line = pretty.lines.find((l) => l.includes('cached='));
  if (!line) throw new Error(`no bundle line in: ${pretty.lines.join('\n')}`);
  expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}(workflow bundle taken from the cache {2}cached=true|workflows bundled \(cached for the next start\) {2}cached=false)/);
  expect(() => logLines(pretty.lines)).toThrow(SyntaxError);
}, 200_000);

test('a cached bundle is not served once a file it was built from changed, or a path webpack missed appeared', async () => {
  const dir = path.join(cacheDir, 'workflow-bundles');
  const logger = pino({ level: 'silent' });
  // Fresh unless a bundled file was edited meanwhile (a shared working tree): then the next call has it cached.
  let first = await cachedWorkflowBundle({ dir, logger });
  for (let tries = 1; tries < 3 && !first.cached; tries++) first = await cachedWorkflowBundle({ dir, logger });
  expect(first.cached).toBe(true);
  const [manifestFile] = readdirSync(dir).filter((f) => f.endsWith('.json'));
  const manifestPath = path.join(dir, manifestFile ?? '');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { files: Record<string, string>; missing: string[] };
  // The workflow sources themselves are among the files the digest covers.
  expect(Object.keys(manifest.files)).toEqual(expect.arrayContaining([path.join(repoRoot, 'src', 'workflows', 'agent-run.ts'), path.join(repoRoot, 'src', 'workflows', 'run', 'tool-calls.ts')]));
  expect(Object.keys(manifest.files).some((f) => f.includes(`${path.sep}@temporalio${path.sep}workflow${path.sep}`))).toBe(true);

  // As if tool-calls.ts had changed since the bundle was made: its recorded digest no longer matches.
  const changed = { ...manifest, files: { ...manifest.files, [path.join(repoRoot, 'src', 'workflows', 'run', 'tool-calls.ts')]: '0'.repeat(64) } };
  writeFileSync(manifestPath, JSON.stringify(changed));
  expect((await cachedWorkflowBundle({ dir, logger })).cached).toBe(false);

  // A path webpack looked for and did not find now exists (a module that would shadow another).
  const appeared = path.join(tmp, 'appeared.ts');
  writeFileSync(appeared, 'export {};\n');
  const rebuilt = JSON.parse(readFileSync(manifestPath, 'utf8')) as { missing: string[] };
  writeFileSync(manifestPath, JSON.stringify({ ...rebuilt, missing: [...rebuilt.missing, appeared] }));
  expect((await cachedWorkflowBundle({ dir, logger })).cached).toBe(false);
}, 400_000);

/** Whether `pid` still runs (a zombie nobody reaped counts as gone). */
function processRuns(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

test('SIGKILL of the warden worker command takes the worker process with it within seconds', async () => {
  const launcher = spawnWorker();
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready: ${output}`)), 150_000);
    const onData = (c: Buffer) => {
      output += c.toString();
      if (output.includes('worker ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    launcher.stdout.on('data', onData);
    launcher.stderr.on('data', onData);
  });
  // The command runs the worker in a tuned Node process of its own (bin/worker-process.js).
  const [worker] = readFileSync(`/proc/${launcher.pid}/task/${launcher.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  if (!worker) throw new Error('no worker process under the command');
  expect(processRuns(worker)).toBe(true);
  const killedAt = Date.now();
  launcher.kill('SIGKILL');
  await eventually(async () => !processRuns(worker), 60_000, 'the worker process to exit');
  const goneMs = Date.now() - killedAt;
  console.log(`launcher: the worker process exited ${goneMs} ms after its command was SIGKILLed`);
  expect(goneMs).toBeLessThan(15_000);
}, 200_000);
