import type * as TemporalClient from '@temporalio/client';
import { errorMarker, WardenError } from '../errors';
import type * as PolicyModule from '../governance/policy/parse-policy';

/**
 * An error the person at the terminal can fix: printed as one line, no stack trace.
 * Exit code 1 unless said otherwise.
 */
export class CliError extends WardenError {
  static override readonly marker = errorMarker('CliError');
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** A command typed wrongly (a missing or malformed flag): exit code 2, like commander's own. */
export class UsageError extends CliError {
  static override readonly marker = errorMarker('UsageError');
  override name = 'UsageError';
  constructor(message: string) {
    super(message, 2);
  }
}


function oneLine(text: string): string {
  // Node's "Require stack" lists Warden's own files: noise for someone whose module path was wrong.
  return text
    .replace(/\nRequire stack:[\s\S]*$/, '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join('; ');
}

/** Whether a gRPC failure means the server could not be reached at all. */
function isUnreachable(err: Error): boolean {
  const code = (err as { code?: unknown }).code ?? (err.cause as { code?: unknown } | undefined)?.code;
  // 14 is gRPC UNAVAILABLE.
  return code === 14 || /Failed to connect|ECONNREFUSED|ConnectionRefused|tcp connect error|UNAVAILABLE|connect before the deadline|No connection established/i.test(err.message);
}

/**
 * The one line printed for an error. Errors people cause (a bad file, an unknown run, no server)
 * get a sentence that names the thing; anything else gets its message, and its stack only with
 * `WARDEN_DEBUG=1`.
 */
export function describeError(err: unknown, context: { address?: string } = {}): string {
  if (CliError.isInstance(err)) return oneLine(err.message);
  // Required when an error is described, not at start: every command pays for what this module imports.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { PolicyError } = require('../governance/policy/parse-policy') as typeof PolicyModule;
  const { NamespaceNotFoundError, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } = require('@temporalio/client') as typeof TemporalClient;
  /* eslint-enable @typescript-eslint/no-require-imports */
  if (PolicyError.isInstance(err)) {
    const head = err.message.split('\n')[0] ?? err.message;
    // Schema errors list one issue per path; a YAML error's first line already says where, the rest is a code frame.
    return head.endsWith('invalid policy') && err.issues.length > 0 ? `${head}: ${err.issues.join('; ')}` : head.replace(/:\s*$/, '');
  }
  if (err instanceof WorkflowNotFoundError && /already completed/i.test(err.message)) return `run ${err.workflowId} has already finished; it takes no more signals (see 'warden status ${err.workflowId}')`;
  if (err instanceof WorkflowNotFoundError) return `no run ${err.workflowId} in this namespace (check the id in the Temporal UI or with 'warden approvals')`;
  if (err instanceof NamespaceNotFoundError) return `namespace ${err.namespace} does not exist on this Temporal server (TEMPORAL_NAMESPACE)`;
  if (err instanceof WorkflowExecutionAlreadyStartedError) return `a run with id ${err.workflowId} exists already; run keys are never reused`;
  // Every error Warden throws carries a message written for people (it names the file, the field, the run).
  if (WardenError.isInstance(err)) return oneLine(err.message) || err.name;
  if (err instanceof Error) {
    if (/Unknown encoding: binary\/encrypted/.test(err.message)) {
      return 'the runs\' payloads are encrypted and this command has no payload keys: set WARDEN_PAYLOAD_KEYS to the key file the workers use';
    }
    if (isUnreachable(err)) {
      const where = context.address ?? process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
      const detail = /ConnectionRefused|ECONNREFUSED/i.test(err.message) ? 'connection refused' : oneLine(err.message);
      return `cannot reach Temporal at ${where}: ${detail} (start one with 'warden dev', or set TEMPORAL_ADDRESS)`;
    }
    // The client's ServiceError says what failed ("Failed to query Workflow"); its gRPC cause says why.
    const cause = err.name === 'ServiceError' && err.cause instanceof Error ? `: ${oneLine(err.cause.message)}` : '';
    return (oneLine(err.message) || err.name) + cause;
  }
  return String(err);
}

/** The exit code for an error: 2 for usage errors, 1 for everything else. */
export function exitCodeOf(err: unknown): number {
  return CliError.isInstance(err) ? err.exitCode : 1;
}
