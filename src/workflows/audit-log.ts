import { upsertMemo } from '@temporalio/workflow';
// The module itself, not '../governance/workflow-safe': the client imports AUDIT_ANCHOR_MEMO from here, and the
// sandbox index would load the policy engine (CEL) into every CLI command that connects to Temporal.
import { emptyAuditHead, nextAuditEvent, type AuditEvent, type AuditEventType, type AuditHead } from '../governance/signing/audit-chain';
import type { AuditTrailView } from './messages';

/** The memo field that anchors a run's audit chain in Temporal (`warden audit --verify` reads it). */
export const AUDIT_ANCHOR_MEMO = 'wardenAuditHead';

/**
 * The run's audit chain as the workflow keeps it: events are hash-chained as they happen; those
 * not yet in the run store ride along in the next activity's input. The head the store has
 * confirmed is written to the workflow's memo (`anchor`), where the run store cannot rewrite it.
 */
export class AuditLog {
  private head: AuditHead;
  private events: AuditEvent[] = [];
  private flushed: AuditHead;
  /** What this execution has anchored; a new execution anchors the carried head at its first chance. */
  private anchoredSeq = 0;

  constructor(from: AuditHead = emptyAuditHead()) {
    this.head = from;
    this.flushed = from;
  }

  get current(): AuditHead {
    return this.head;
  }

  /**
   * A local activity resolves in an activation whose clock reads differently on replay (live, the
   * moment it resolved; replayed, the workflow task's time). Events recorded in that activation
   * carry the time the activity was called at instead, so a replayed run records the same trail.
   */
  private pinned: { at: number; during: number } | null = null;

  /** After a local activity called at `at` resolved: events of this activation are stamped `at`. */
  pin(at: number): void {
    this.pinned = { at, during: Date.now() };
  }

  private now(): number {
    const now = Date.now();
    if (this.pinned?.during === now) return this.pinned.at;
    this.pinned = null;
    return now;
  }

  record(type: AuditEventType, data: Record<string, unknown>): AuditEvent {
    const event = nextAuditEvent(this.head, type, data, new Date(this.now()).toISOString());
    this.head = { seq: event.seq, hash: event.hash };
    this.events.push(event);
    return event;
  }

  /** Events the store does not have yet, oldest first. */
  unflushed(): AuditEvent[] {
    // Events are appended in seq order, so the unflushed ones are a suffix: no scan of the whole log.
    let i = this.events.length;
    while (i > 0 && (this.events[i - 1]?.seq ?? 0) > this.flushed.seq) i--;
    return this.events.slice(i);
  }

  /** Called once an activity that carried `sent` completed: the store has them. */
  markFlushed(sent: readonly AuditEvent[]): void {
    const last = sent[sent.length - 1];
    if (last && last.seq > this.flushed.seq) this.flushed = { seq: last.seq, hash: last.hash };
  }

  /**
   * Writes the head the store has confirmed to the memo, if it moved. The run calls it once a
   * turn, before it waits for people, and when it flushes at the end: one history event a turn,
   * not one an activity, and what a rewritten store could hide is at most the current turn.
   * `also`: other memo fields (the pending approvals) written in the same upsert.
   */
  anchor(also: Record<string, unknown> = {}): void {
    if (this.flushed.seq <= this.anchoredSeq && Object.keys(also).length === 0) return;
    this.upsert(also);
  }

  /**
   * Writes memo fields now, with the head if it moved (one upsert); nothing when `fields` is
   * empty, so a run whose history predates those fields emits no command it did not emit before.
   */
  write(fields: Record<string, unknown>): void {
    if (Object.keys(fields).length > 0) this.upsert(fields);
  }

  private upsert(fields: Record<string, unknown>): void {
    const head = this.flushed.seq > this.anchoredSeq ? { [AUDIT_ANCHOR_MEMO]: { seq: this.flushed.seq, hash: this.flushed.hash } } : {};
    this.anchoredSeq = Math.max(this.anchoredSeq, this.flushed.seq);
    upsertMemo({ ...head, ...fields });
  }

  view(): AuditTrailView {
    return { events: [...this.events], firstSeq: this.events[0]?.seq ?? this.head.seq + 1, headSeq: this.head.seq };
  }
}
