import type { AuditEvent } from '../governance';
import type { FleetQueries } from './fleet-queries';
import type { KillSwitches } from './kill-switches';
import type { QuotaLedger } from './quota-ledger';

/** One row of a run's conversation: AI SDK `ModelMessage` JSON, keyed by its position. */
export interface MessageRow {
  seq: number;
  message: unknown;
}

/**
 * The run store: append-only rows keyed by run id and sequence number.
 *
 * Every write is idempotent: a retried activity writes the same rows again and nothing
 * changes (messages written with `replace` take the newest attempt's row, so a retried model
 * call that answered differently leaves exactly the answer the workflow saw).
 * The interface is async so a PostgreSQL implementation fits it unchanged.
 * The operations console's bulk reads (`FleetQueries`) and agents' kill switches (`KillSwitches`)
 * live in files of their own.
 */
export interface RunStore extends FleetQueries, KillSwitches, QuotaLedger {
  appendMessages(runId: string, rows: readonly MessageRow[], mode?: 'ignore' | 'replace'): Promise<void>;
  /** Messages `[fromSeq, toSeq)` in order (`fromSeq` 0 by default). Throws `StoreError` if one is missing (a gap is a bug, never silently skipped). */
  readMessages(runId: string, toSeq: number, fromSeq?: number): Promise<unknown[]>;
  appendAudit(runId: string, events: readonly AuditEvent[]): Promise<void>;
  /** All stored audit events of a run, by `seq`. */
  readAudit(runId: string): Promise<AuditEvent[]>;
  /** The policy most recently applied to an agent with `warden policy apply`, if any. */
  getAppliedPolicy(agent: string): Promise<{ policy: unknown; version: string; appliedAt: string; source: string } | null>;
  setAppliedPolicy(agent: string, applied: { policy: unknown; version: string; source: string }): Promise<void>;
  /** Every agent's applied policy, by agent name: what `warden policy list` shows. */
  listAppliedPolicies(): Promise<{ agent: string; policy: unknown; version: string; appliedAt: string; source: string }[]>;
  /**
   * Drops an agent's applied policy, so its policy file counts again for new runs. Runs already
   * going keep the policy they have. Resolves whether there was one.
   */
  removeAppliedPolicy(agent: string): Promise<boolean>;
  /**
   * Claims a run id for the execution that starts it (its first execution's Temporal run id).
   * Resolves the execution holding the id: `execution` itself when the id was free (or already
   * its own), another one when the id was used before. A run id is used once: a terminated run
   * started again under its id, with its signed start copied from history, is not the same run.
   */
  claimRun(runId: string, execution: string): Promise<string>;
  /**
   * The store's secret for sealing state a worker hands to another execution (continue-as-new,
   * delegation): 32 random bytes in hex, made on first use and the same for every worker of the
   * store. Whoever reads the store's secrets table can forge seals; its credentials are a worker
   * secret.
   */
  sealKey(): Promise<string>;
  close(): Promise<void>;
}
