import { ApplicationFailure } from '@temporalio/common';
import type { LogLevel, LogMetadata } from '@temporalio/worker';

/**
 * Which of the worker's log entries the demo writes to its console (`installRuntime`'s filter):
 * all but the SDK's warning, with its stack trace, for a tool that failed (a `ToolError`, never
 * retried): that failure is expected and the run's story shows it (`issue_refund failed: …`).
 * A tool error that will be retried, a tool that crashed and the worker's own errors are written.
 */
export function writtenInDemo(level: LogLevel, message: string, meta?: LogMetadata): boolean {
  return !(level === 'WARN' && message === 'Activity failed' && isToolFailure(meta?.error));
}

/** The failure the tool activity makes of a `ToolError`: non-retryable, of type ToolError. */
function isToolFailure(error: unknown): boolean {
  return error instanceof ApplicationFailure && error.type === 'ToolError' && error.nonRetryable === true;
}
