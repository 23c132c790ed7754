/**
 * Worker processes for the tests that run Warden on more than one worker, as on more than one
 * host: each a fixture script (`test/fixtures/...`, run with `node --require tsx/cjs`) that prints
 * `worker <id> ready` once it polls (test/fixtures/serve-worker-process.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface WorkerProcess {
  id: string;
  child: ChildProcess;
  /** Its own working directory, or undefined when it runs in the test's. */
  dir: string | undefined;
  /** Everything it printed so far, stdout and stderr. */
  output: () => string;
  exited: Promise<number | null>;
}

export interface WorkerScript {
  /** The fixture script's path. */
  script: string;
  /** The environment variable that gives the process its id. */
  idVariable: string;
  /** A working directory of its own (made under the system's temporary directory with this prefix and the id), removed by `stopWorkers`. */
  ownDir?: string;
  /** How long it may take to print that it is ready (default 60 s). */
  readyWithinMs?: number;
}

/** Starts a worker process; resolves once it says it polls, rejects if it exits or is not ready in time. */
export function startWorkerProcess(id: string, env: NodeJS.ProcessEnv, how: WorkerScript): Promise<WorkerProcess> {
  // Its own working directory, like a worker on another host: nothing it writes there is shared.
  const dir = how.ownDir === undefined ? undefined : mkdtempSync(path.join(os.tmpdir(), `${how.ownDir}${id}-`));
  const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), how.script], { ...(dir ? { cwd: dir } : {}), env: { ...env, [how.idVariable]: id }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const readyWithinMs = how.readyWithinMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker ${id} did not start in ${readyWithinMs / 1000} s: ${output}`)), readyWithinMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(`worker ${id} ready`)) {
        clearTimeout(timer);
        resolve({ id, child, dir, output: () => output, exited });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`worker ${id} exited with ${code}: ${output}`));
    });
  });
}

/** Kills a worker process with SIGKILL, as a host that dies would, and waits until it is gone; resolves when that was. */
export async function killWorker(w: WorkerProcess): Promise<number> {
  w.child.kill('SIGKILL');
  await w.exited;
  return Date.now();
}

/** Kills the workers still running and removes their working directories (a suite's afterAll). */
export async function stopWorkers(workers: readonly WorkerProcess[]): Promise<void> {
  for (const w of workers) {
    if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await w.exited;
    if (w.dir) rmSync(w.dir, { recursive: true, force: true });
  }
}
