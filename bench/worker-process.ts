import { fork } from 'node:child_process';
import path from 'node:path';

/** A bench worker (bench/approval-worker.ts) in a process of its own, asked over IPC. */
export interface BenchWorker {
  /** Sends `message` and resolves with the worker's answer under `key`. */
  ask: <T>(message: Record<string, boolean>, key: string) => Promise<T>;
  stop: () => Promise<void>;
}

export interface BenchWorkerOptions {
  address: string;
  taskQueue: string;
  bundlePath: string;
  storePath: string;
  /** The web key the worker trusts for signed approvals. */
  publicKey: string;
  env?: NodeJS.ProcessEnv;
  /** Node/V8 flags of the worker process, after those of `warden worker`. */
  flags?: string[];
  /** false: Node's defaults instead of the flags and malloc arenas `warden worker` runs with (bin/worker-process.js). */
  tuned?: boolean;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const workerProcess = require('../bin/worker-process.js') as { NODE_FLAGS: readonly string[]; NODE_ENV: Readonly<Record<string, string>> };

/** What a tuned bench worker process is started with, for the bench's output. */
export const WORKER_TUNING = `node ${workerProcess.NODE_FLAGS.join(' ')}, ${Object.entries(workerProcess.NODE_ENV).map(([k, v]) => `${k}=${v}`).join(' ')}`;

/** Forks the approval worker and resolves once it polls. */
export async function forkApprovalWorker(options: BenchWorkerOptions): Promise<BenchWorker> {
  const args = [options.address, options.taskQueue, options.bundlePath, options.storePath, options.publicKey];
  const tuned = options.tuned ?? true;
  const env = options.env ?? process.env;
  const child = fork(path.join(__dirname, 'approval-worker.ts'), args, {
    // The settings `warden worker` starts its process with, for Warden and Temporal alone alike.
    env: tuned ? { ...workerProcess.NODE_ENV, ...env } : env,
    execArgv: ['--expose-gc', ...(tuned ? workerProcess.NODE_FLAGS : []), ...(options.flags ?? []), '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const reply = <T>(key: string) =>
    new Promise<T>((resolve, reject) => {
      const onMessage = (m: Record<string, unknown>) => {
        if (!(key in m)) return;
        child.off('message', onMessage);
        resolve(m[key] as T);
      };
      child.on('message', onMessage);
      child.once('exit', (code) => reject(new Error(`bench: the worker exited (${String(code)})`)));
    });
  await reply<boolean>('ready');
  return {
    ask: <T>(message: Record<string, boolean>, key: string) => {
      const answer = reply<T>(key);
      child.send(message);
      return answer;
    },
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.disconnect();
      await exited;
    },
  };
}
