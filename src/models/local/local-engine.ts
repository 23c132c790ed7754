import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { errorMarker } from '../../errors';
import { LocalModelError } from './catalog';
import type { ChatTurn, LlamaReply, LlamaRequest } from './llama-protocol';

export interface GenerateRequest {
  modelPath: string;
  history: ChatTurn[];
  schema: Record<string, unknown>;
  maxTokens: number;
  contextSize: number;
  temperature: number;
}

export type GenerateReply = Extract<LlamaReply, { type: 'done' }>;

/** The model file is not there: a configuration fault, not one a retry mends. */
export class LocalModelMissingError extends LocalModelError {
  static override readonly marker = errorMarker('LocalModelMissingError');
  override name = 'LocalModelMissingError';
}

/** How the model process is started: its compiled file next to this one, or its source through tsx. */
function processEntry(): { file: string; execArgv: string[] } {
  const compiled = path.join(__dirname, 'llama-process.js');
  if (existsSync(compiled)) return { file: compiled, execArgv: [] };
  return { file: path.join(__dirname, 'llama-process.ts'), execArgv: ['--import', pathToFileURL(require.resolve('tsx')).href] };
}

/**
 * The worker's one local model process: started on the first call, answering one generation at a
 * time (its queue), each model loaded once. Held with `unref` while idle, so a CLI command or a
 * test that used it still exits; a process that dies fails the calls it had, and the next call
 * starts a new one.
 */
export class LocalEngine {
  private child: ChildProcess | undefined;
  private readonly pending = new Map<number, { resolve: (reply: GenerateReply) => void; reject: (err: Error) => void }>();
  private nextId = 1;
  private stderr = '';

  private start(): ChildProcess {
    if (this.child) return this.child;
    const entry = processEntry();
    const child = fork(entry.file, [], { execArgv: entry.execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'advanced' });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-2000);
    });
    child.on('message', (reply: LlamaReply) => {
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      this.hold();
      if (reply.type === 'done') waiting.resolve(reply);
      else waiting.reject(reply.missing ? new LocalModelMissingError(reply.message) : new LocalModelError(`the local model failed: ${reply.message}`));
    });
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      const why = new LocalModelError(`the local model process ended (${signal ?? `exit ${code}`})${this.stderr ? `: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`);
      for (const waiting of this.pending.values()) waiting.reject(why);
      this.pending.clear();
    });
    child.on('error', () => undefined);
    this.child = child;
    this.hold();
    return child;
  }

  /** Keeps this process alive only while a generation is pending. */
  private hold(): void {
    const child = this.child;
    if (!child) return;
    const channel = child.channel as { ref?: () => void; unref?: () => void } | undefined;
    const stderr = child.stderr as { ref?: () => void; unref?: () => void } | null;
    if (this.pending.size > 0) {
      child.ref();
      channel?.ref?.();
      stderr?.ref?.();
    } else {
      child.unref();
      channel?.unref?.();
      stderr?.unref?.();
    }
  }

  generate(request: GenerateRequest, signal?: AbortSignal): Promise<GenerateReply> {
    signal?.throwIfAborted();
    const child = this.start();
    const id = this.nextId++;
    return new Promise<GenerateReply>((resolve, reject) => {
      const onAbort = () => child.send({ type: 'abort', id } satisfies LlamaRequest);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: (reply) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(reply);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      });
      this.hold();
      child.send({ type: 'generate', id, ...request } satisfies LlamaRequest);
    });
  }

  /** Ends the model process (tests, benches); the next call starts another. */
  stop(): void {
    this.child?.kill();
    this.child = undefined;
  }
}

let shared: LocalEngine | undefined;

/** The engine every local model of this process shares: one model process per worker process. */
export function sharedLocalEngine(): LocalEngine {
  return (shared ??= new LocalEngine());
}
