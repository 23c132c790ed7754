import { WorkflowNotFoundError } from '@temporalio/client';
import type { WardenClient } from '../../client';
import type { AuditEvent } from '../../governance';
import type { RunStore } from '../../store';
import { CliError } from '../cli-errors';
import { printable } from '../format';

/** A run's trail and whether it holds. */
export interface AuditCheck {
  events: AuditEvent[];
  /** Whether the trail was checked against the head Temporal anchored (absent for a run that never flushed). */
  anchored: boolean;
  /** Stored events after the anchor that nothing in Temporal vouches for yet (a run still going whose worker did not answer). */
  unanchored: number;
  result: { ok: true; count: number; head: string } | { ok: false; seq: number; reason: string };
  /** The runs it delegated to, each checked the same way and against the chain head this trail recorded for it. */
  delegates: { runId: string; check: AuditCheck }[];
}

/** How deep a check follows delegations. */
const MAX_DELEGATION_DEPTH = 8;

/**
 * Reads and verifies a run's trail through `WardenClient.verifyAuditTrail`: the run store's
 * events (the run's live tail after them), every hash and link, and the head Temporal anchored
 * in the run's memo, so a store rewritten with recomputed hashes fails even with no worker
 * running. Use it for `warden audit --verify` and the demo.
 */
export async function checkAudit(client: WardenClient, store: RunStore, runId: string, depth = 0): Promise<AuditCheck> {
  let check;
  try {
    check = await client.verifyAuditTrail(runId, store);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new CliError(`no run ${printable(runId)} in Temporal (wrong id, or its history is past retention)`);
    throw err;
  }
  const { events } = check;
  if (events.length === 0) {
    throw new CliError(`no audit events for run ${printable(runId)}: not in the run store (${describeStore()}) and the run did not answer (is a worker running?)`);
  }
  const base = { events, anchored: check.anchor !== null, unanchored: check.unanchored, delegates: [] as AuditCheck['delegates'] };
  if (!check.ok) return { ...base, result: { ok: false, seq: check.problemSeq ?? 0, reason: check.problem ?? 'verification failed' } };
  // Each delegate's trail must hold, and must be the one this trail recorded when the delegate ended.
  for (const e of events) {
    if (e.type !== 'delegation_finished' || depth >= MAX_DELEGATION_DEPTH) continue;
    const delegate = typeof e.data.runId === 'string' ? e.data.runId : '';
    const head = e.data.audit as { seq?: unknown; hash?: unknown } | undefined;
    if (!delegate || typeof head?.seq !== 'number') continue;
    const sub = await checkAudit(client, store, delegate, depth + 1).catch((err: unknown): AuditCheck => ({
      events: [],
      anchored: false,
      unanchored: 0,
      delegates: [],
      result: { ok: false, seq: 0, reason: err instanceof Error ? err.message : String(err) },
    }));
    base.delegates.push({ runId: delegate, check: sub });
    const fail = (reason: string) => ({ ...base, result: { ok: false as const, seq: e.seq, reason } });
    if (!sub.result.ok) return fail(`delegate run ${delegate}: chain broken at seq ${sub.result.seq}: ${sub.result.reason}`);
    const recorded = sub.events.find((d) => d.seq === head.seq);
    if (!recorded || recorded.hash !== head.hash) return fail(`delegate run ${delegate}: its trail does not hold the chain head recorded here (seq ${head.seq})`);
  }
  return { ...base, result: { ok: true, count: events.length, head: check.head?.hash ?? '' } };
}

function describeStore(): string {
  return process.env.WARDEN_DB ?? `${process.env.WARDEN_HOME ?? '.warden'}/warden.db`;
}

/** The line `--verify` prints on success. */
export function verifiedLine(check: AuditCheck): string {
  // The head hash is read from the run store like the rest, and a broken chain's reason can quote it.
  if (!check.result.ok) return `chain BROKEN at seq ${check.result.seq}: ${printable(check.result.reason)}`;
  const source = check.anchored ? 'matches the head Temporal anchored' : 'nothing flushed yet: checked against the run itself';
  const delegates = countDelegates(check);
  const tree = delegates > 0 ? `; ${delegates} delegate run(s) verified against the heads recorded here` : '';
  const pending = check.unanchored > 0 ? `; the last ${check.unanchored} not anchored yet (the run is still going and no worker answered for it)` : '';
  return `chain verified: ${check.result.count} events, head ${printable(check.result.head.slice(0, 12))} (${source})${pending}${tree}`;
}

function countDelegates(check: AuditCheck): number {
  return check.delegates.reduce((n, d) => n + 1 + countDelegates(d.check), 0);
}
