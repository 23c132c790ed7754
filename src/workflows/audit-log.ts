import { upsertMemo } from '@temporalio/workflow';
import { emptyAuditHead, nextAuditEvent, type AuditEvent, type AuditEventType, type AuditHead } from '../governance';
import type { AuditTrailView } from './messages';

/** The memo field that anchors a run's audit chain in Temporal (`warden audit --verify` reads it). */
export const AUDIT_ANCHOR_MEMO = 'wardenAuditHead';

/**
 * The run's audit chain as the workflow keeps it: events are hash-chained as they happen; those
 * not yet in the run store ride along in the next activity's input. Each time the store confirms
 * events, the chain head is written to the workflow's memo, where the run store cannot rewrite it.
 */
export class AuditLog {
  private head: AuditHead;
  private events: AuditEvent[] = [];
  private flushedSeq: number;

  constructor(from: AuditHead = emptyAuditHead()) {
    this.head = from;
    this.flushedSeq = from.seq;
  }

  get current(): AuditHead {
    return this.head;
  }

  record(type: AuditEventType, data: Record<string, unknown>): AuditEvent {
    const event = nextAuditEvent(this.head, type, data, new Date().toISOString());
    this.head = { seq: event.seq, hash: event.hash };
    this.events.push(event);
    return event;
  }

  /** Events the store does not have yet, oldest first. */
  unflushed(): AuditEvent[] {
    // Events are appended in seq order, so the unflushed ones are a suffix: no scan of the whole log.
    let i = this.events.length;
    while (i > 0 && (this.events[i - 1]?.seq ?? 0) > this.flushedSeq) i--;
    return this.events.slice(i);
  }

  /** Called once an activity that carried `sent` completed: the store has them; anchor the head. */
  markFlushed(sent: readonly AuditEvent[]): void {
    const last = sent[sent.length - 1];
    if (!last || last.seq <= this.flushedSeq) return;
    this.flushedSeq = last.seq;
    upsertMemo({ [AUDIT_ANCHOR_MEMO]: { seq: last.seq, hash: last.hash } });
  }

  view(): AuditTrailView {
    return { events: [...this.events], firstSeq: this.events[0]?.seq ?? this.head.seq + 1, headSeq: this.head.seq };
  }
}
