import type { Command } from 'commander';
import type { WardenClient } from '../client';
import { verifyAuditChain, type AuditEvent } from '../governance';
import type { RunStore } from '../store';
import { QUERY_MS, withClientAndStore } from './context';
import { CliError } from './errors';
import { auditLines, out, outJson, printable } from './format';

const FINISHED_QUERY_MS = 3_000;

/** A run's trail and whether its chain holds. */
export interface AuditCheck {
  events: AuditEvent[];
  /** Events read from the run store; the rest came from the run's live tail. */
  stored: number;
  /** Whether the stored events were compared with the run's own copy (the run answered its query). */
  crossChecked: boolean;
  result: { ok: true; count: number; head: string } | { ok: false; seq: number; reason: string };
}

/**
 * Reads a run's audit trail: the run store first, then the events the run holds that are not
 * stored yet. The stored rows win where both have an event: the store is the durable record an
 * audit relies on, so a tampered row must show up in `--verify` instead of being papered over by
 * the workflow's own copy. (`WardenClient.auditTrail(runId, store)` prefers the live copy.)
 */
export async function readTrail(client: WardenClient, store: RunStore, runId: string): Promise<{ events: AuditEvent[]; stored: AuditEvent[]; live: AuditEvent[] }> {
  const stored = await store.readAudit(runId);
  // A finished run flushed every event and its worker may be long gone: it gets a short wait, and
  // its own copy only serves the cross-check. auditTrail answers [] when the run does not answer;
  // the deadline keeps that from taking the server's 30 s.
  const finished = stored.some((e) => e.type === 'run_finished');
  const live = await client.client.connection.withDeadline(Date.now() + (finished ? FINISHED_QUERY_MS : QUERY_MS), () => client.auditTrail(runId));
  if (!finished && live.length === 0 && stored.length > 0) process.stderr.write(`note: run ${printable(runId)} did not answer; showing the events in the run store only\n`);
  const lastStored = stored[stored.length - 1]?.seq ?? 0;
  return { events: [...stored, ...live.filter((e) => e.seq > lastStored)], stored, live };
}

/**
 * Recomputes a run's chain (every hash, every link, no gap) and cross-checks the stored events
 * against the run's own copy. Use it for `warden audit --verify` and the demo.
 */
export async function checkAudit(client: WardenClient, store: RunStore, runId: string): Promise<AuditCheck> {
  const { events, stored, live } = await readTrail(client, store, runId);
  if (events.length === 0) {
    throw new CliError(`no audit events for run ${printable(runId)}: not in the run store (${describeStore()}) and the run did not answer (wrong id, or no worker running?)`);
  }
  const base = { events, stored: stored.length, crossChecked: live.length > 0 };
  const chain = verifyAuditChain(events);
  if (!chain.ok) return { ...base, result: chain };
  // A rewritten store with recomputed hashes forms a valid chain of its own; the workflow's copy
  // of the same events (its state, rebuilt from Temporal history) does not agree with it.
  const liveBySeq = new Map(live.map((e) => [e.seq, e]));
  for (const e of stored) {
    const mine = liveBySeq.get(e.seq);
    if (mine && mine.hash !== e.hash) return { ...base, result: { ok: false, seq: e.seq, reason: "stored event differs from the run's own record of it" } };
  }
  return { ...base, result: { ok: true, count: chain.count, head: chain.head.hash } };
}

function describeStore(): string {
  return process.env.WARDEN_DB ?? `${process.env.WARDEN_HOME ?? '.warden'}/warden.db`;
}

/** The line `--verify` prints on success. */
export function verifiedLine(check: AuditCheck): string {
  // The head hash is read from the run store like the rest, and a broken chain's reason can quote it.
  if (!check.result.ok) return `chain BROKEN at seq ${check.result.seq}: ${printable(check.result.reason)}`;
  const source = check.crossChecked ? "matches the run's own record" : 'run store only: the run did not answer';
  return `chain verified: ${check.result.count} events, head ${printable(check.result.head.slice(0, 12))} (${source})`;
}

export function registerAudit(program: Command): void {
  program
    .command('audit')
    .description("Print a run's audit trail (run store plus the run's live tail); --verify recomputes its hash chain")
    .argument('<runId>', 'run id, e.g. warden/refund-agent/1234')
    .option('--json', 'print the events as JSON')
    .option('--verify', 'recompute the hash chain; exit 1 naming the first broken event')
    .action(async (runId: string, opts: { json?: boolean; verify?: boolean }) => {
      await withClientAndStore(async (client, store) => {
        const check = await checkAudit(client, store, runId);
        if (opts.json) outJson({ runId, events: check.events, ...(opts.verify ? { verification: check.result } : {}) });
        else auditLines(check.events).forEach((l) => out(l));
        if (!opts.verify) return;
        if (!check.result.ok) throw new CliError(`audit chain of ${printable(runId)} is BROKEN at seq ${check.result.seq}: ${printable(check.result.reason)}`);
        if (!opts.json) out(verifiedLine(check));
      });
    });
}
