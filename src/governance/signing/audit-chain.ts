import { WardenError, errorMarker } from '../../errors';
import { canonicalJson } from './canonical';
import { sha256Hex } from './digest';

/** The kinds of audit events a run records (and a quota's trail: `quota_reset`). */
export type AuditEventType =
  | 'run_started'
  | 'run_continued'
  | 'model_turn'
  | 'call_proposed'
  | 'schema_rejected'
  | 'policy_decision'
  | 'approval_requested'
  | 'approval_notified'
  | 'approval_accepted'
  | 'rejection_accepted'
  | 'approval_withdrawn'
  | 'approval_refused'
  | 'approval_decided'
  | 'approval_escalated'
  | 'approval_expired'
  | 'tool_started'
  | 'tool_succeeded'
  | 'tool_failed'
  | 'compensation_run'
  | 'compensation_failed'
  | 'paused'
  | 'resumed'
  | 'resume_refused'
  | 'operator_refused'
  | 'policy_applied'
  | 'policy_shadow_diff'
  | 'budget_exhausted'
  | 'loop_detected'
  | 'rollback_requested'
  | 'delegation_started'
  | 'delegation_finished'
  | 'unencrypted_message'
  | 'run_finished'
  /** A call or a model call's spend crossed a quota's `warn` threshold. */
  | 'quota_warning'
  /** A quota's `deny` or `require_approval` threshold kept a call (or a model call, or the run) from going ahead. */
  | 'quota_exceeded'
  /** Not a run's: an operator set a quota's counters back to zero (`warden quota reset`), on the quota's own trail. */
  | 'quota_reset';

/** One link of a run's audit chain. `hash` covers every other field, `prevHash` links it to the one before. */
export interface AuditEvent {
  seq: number;
  at: string;
  type: AuditEventType;
  data: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** The end of a chain: what the next event links to. */
export interface AuditHead {
  seq: number;
  hash: string;
}

/** The `prevHash` of a run's first event. */
export const GENESIS_HASH = '0'.repeat(64);

export const emptyAuditHead = (): AuditHead => ({ seq: 0, hash: GENESIS_HASH });

function hashOf(event: Omit<AuditEvent, 'hash'>): string {
  return sha256Hex(canonicalJson({ seq: event.seq, at: event.at, type: event.type, data: event.data, prevHash: event.prevHash }));
}

/** Builds the next event of a chain. Deterministic: the workflow calls it, replay gets the same hashes. */
export function nextAuditEvent(head: AuditHead, type: AuditEventType, data: Record<string, unknown>, at: string): AuditEvent {
  const partial = { seq: head.seq + 1, at, type, data: JSON.parse(canonicalJson(data)) as Record<string, unknown>, prevHash: head.hash };
  return { ...partial, hash: hashOf(partial) };
}

export type ChainVerification = { ok: true; count: number; head: AuditHead } | { ok: false; seq: number; reason: string };

/**
 * Recomputes a chain end to end: every hash, every link, no gap in `seq`.
 * Use it on a trail read back from the store or from the `auditTrail` query.
 */
export function verifyAuditChain(events: readonly AuditEvent[], from: AuditHead = emptyAuditHead()): ChainVerification {
  let head = from;
  for (const event of events) {
    if (event.seq !== head.seq + 1) return { ok: false, seq: event.seq, reason: `expected event ${head.seq + 1}, found ${event.seq}` };
    if (event.prevHash !== head.hash) return { ok: false, seq: event.seq, reason: 'prevHash does not match the previous event' };
    if (hashOf(event) !== event.hash) return { ok: false, seq: event.seq, reason: 'hash does not match the event content (altered)' };
    head = { seq: event.seq, hash: event.hash };
  }
  return { ok: true, count: events.length, head };
}

/**
 * A stretch of a chain as it rides in an activity input: its events without their links (two
 * hashes an event, most of its bytes), the hash the first links to and the hash of the last. The
 * worker rebuilds the links (`unpackAudit`) and checks that they end where the workflow's did.
 */
export interface AuditBatch {
  prevHash: string;
  events: Omit<AuditEvent, 'prevHash' | 'hash'>[];
  hash: string;
}

/** What an activity input carries of the chain: the events whole (runs recorded before batches), or a batch. */
export type AuditInput = readonly AuditEvent[] | AuditBatch;

/** Events for an activity input, as a batch; nothing to send stays an empty list. */
export function packAudit(events: readonly AuditEvent[]): AuditInput {
  const first = events[0];
  const last = events[events.length - 1];
  if (!first || !last) return [];
  return { prevHash: first.prevHash, events: events.map(({ prevHash: _prev, hash: _hash, ...event }) => event), hash: last.hash };
}

/** Thrown when a batch's events do not hash to the head it names: it was not the workflow's chain. */
export class AuditBatchError extends WardenError {
  static override readonly marker = errorMarker('AuditBatchError');
  override name = 'AuditBatchError';
}

/** The events of an activity input, links rebuilt and checked against the batch's head. */
export function unpackAudit(input: AuditInput): AuditEvent[] {
  if (Array.isArray(input)) return [...(input as readonly AuditEvent[])];
  const batch = input as AuditBatch;
  let prevHash = batch.prevHash;
  const events = batch.events.map((e) => {
    const linked = { seq: e.seq, at: e.at, type: e.type, data: e.data, prevHash };
    const event = { ...linked, hash: hashOf(linked) };
    prevHash = event.hash;
    return event;
  });
  if (prevHash !== batch.hash) throw new AuditBatchError(`the audit batch of events ${events[0]?.seq ?? '?'}–${events[events.length - 1]?.seq ?? '?'} does not hash to the head it names (${batch.hash.slice(0, 12)}…): it is not the run's chain`);
  return events;
}
