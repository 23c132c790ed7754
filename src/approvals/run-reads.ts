import type { WardenClient } from '../client';
import type { AuditEvent } from '../governance';
import type { RunStore } from '../store/types';

/** How long a page or a Slack click waits for one query: a run whose worker is down never answers. */
export const QUERY_TIMEOUT_MS = 3000;

/** Runs `fn`'s Temporal calls under a deadline, so an unanswered query fails instead of hanging a page. */
export function within<T>(client: WardenClient, ms: number, fn: () => Promise<T>): Promise<T> {
  return client.client.connection.withDeadline(Date.now() + ms, fn);
}

const FINISHED = new Set(['completed', 'failed', 'budget_exhausted', 'cancelled', 'rolled_back']);

/** Whether a Warden status (the `WardenStatus` search attribute) is a final outcome. */
export function isFinished(status: string): boolean {
  return FINISHED.has(status);
}

/**
 * A run's audit trail. A finished run flushed all its events to the store, so when the store has
 * them no query is sent (its worker may be long gone); otherwise store and live query are merged.
 */
export async function readAuditTrail(client: WardenClient, runId: string, options: { store?: RunStore; finished?: boolean } = {}): Promise<AuditEvent[]> {
  if (options.store && options.finished) {
    const stored = await options.store.readAudit(runId);
    if (stored.some((e) => e.type === 'run_finished')) return stored;
  }
  return within(client, QUERY_TIMEOUT_MS, () => client.auditTrail(runId, options.store));
}

/** A short message for a failed read, for people (no stack, no internals beyond the cause). */
export function describeFailure(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (/deadline|timed? ?out/i.test(message)) return 'the run did not answer in time (is a Warden worker running?)';
  if (/not ?found/i.test(message)) return 'no such run';
  return message.split('\n')[0] ?? 'unknown error';
}
