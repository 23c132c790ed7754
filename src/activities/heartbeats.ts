import { Context } from '@temporalio/activity';

/**
 * How often Warden heartbeats a running model call or tool on its author's behalf. The worker
 * sends at most one heartbeat per `HEARTBEAT_THROTTLE` (src/worker/create-worker.ts), and a
 * cancellation reaches the activity only in the answer to a heartbeat: this is how soon a
 * cancelled tool's `ctx.signal` fires.
 */
export const HEARTBEAT_EVERY_MS = 1000;

/**
 * The heartbeat timeout of the model call and of every tool that does not set its own: a worker
 * that dies mid-call is noticed after this long (not after the start-to-close timeout), and the
 * call is retried on another worker.
 */
export const DEFAULT_HEARTBEAT_TIMEOUT = '10s';

/**
 * Heartbeats the current activity every `everyMs` while `fn` runs, so a tool author does nothing
 * for fast recovery and cancellation. A tool's own `ctx.heartbeat(details)` still counts: its last
 * details are sent again with every beat, so a retry reads them in `heartbeatDetails`. Local
 * activities cannot heartbeat: they run `fn` as it is.
 */
export async function withHeartbeats<T>(fn: (beat: (details?: unknown) => void) => Promise<T>, everyMs = HEARTBEAT_EVERY_MS): Promise<T> {
  const ctx = Context.current();
  if (ctx.info.isLocal) return fn((details) => ctx.heartbeat(details));
  let last: unknown;
  const beat = (details?: unknown): void => {
    if (details !== undefined) last = details;
    ctx.heartbeat(last);
  };
  // The first beat after `everyMs`: a call shorter than that sends none (the heartbeat timeout still counts from its start).
  const timer = setInterval(beat, everyMs);
  try {
    return await fn(beat);
  } finally {
    clearInterval(timer);
  }
}
