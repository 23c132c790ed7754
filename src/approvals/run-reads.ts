import type { WardenClient } from '../client';
import type { AuditEvent } from '../governance';
import type { RunStore } from '../store/run-store';

/** How long a page or a Slack click waits for one query: a run whose worker is down never answers. */
export const QUERY_TIMEOUT_MS = 3000;

/** Runs `fn`'s Temporal calls under a deadline, so an unanswered query fails instead of hanging a page. */
export function within<T>(client: WardenClient, ms: number, fn: () => Promise<T>): Promise<T> {
  return client.client.connection.withDeadline(Date.now() + ms, fn);
}

const FINISHED = new Set(['completed', 'failed', 'budget_exhausted', 'cancelled', 'rolled_back', 'terminated']);

/** Whether a Warden status (the `WardenStatus` search attribute) is a final outcome. */
export function isFinished(status: string): boolean {
  return FINISHED.has(status);
}

/** A run's trail as the inbox may show it: verified, or the reason it failed verification. */
export type VerifiedTrail = { verified: true; events: AuditEvent[] } | { verified: false; problem: string };

/**
 * A run's audit trail, verified end to end (`WardenClient.verifyAuditTrail`: every hash and link,
 * and the head Temporal anchored). The inbox shows only verified trails: a trail that fails is
 * reported as failed, never shown as if it were the record.
 */
export async function readVerifiedTrail(client: WardenClient, runId: string, store?: RunStore): Promise<VerifiedTrail> {
  const check = await within(client, QUERY_TIMEOUT_MS + 5000, () => client.verifyAuditTrail(runId, store));
  if (!check.ok) return { verified: false, problem: `event ${check.problemSeq ?? '?'}: ${check.problem ?? 'verification failed'}` };
  return { verified: true, events: check.events };
}

/** A short message for a failed read, for people (no stack, no internals beyond the cause). */
export function describeFailure(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (/deadline|timed? ?out/i.test(message)) return 'the run did not answer in time (is a Warden worker running?)';
  if (/not ?found/i.test(message)) return 'no such run';
  return message.split('\n')[0] ?? 'unknown error';
}
