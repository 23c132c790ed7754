import type { AuditEvent } from '../governance';

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
 */
export interface RunStore {
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
  close(): Promise<void>;
}
