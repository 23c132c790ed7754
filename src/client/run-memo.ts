import type { LoadedDataConverter, Payload } from '@temporalio/common';
import { decodeOptionalSinglePayload } from '@temporalio/common/lib/internal-non-workflow/codec-helpers';
import { isEncryptedPayload } from '../codec/plaintext-codec';
import type { AuditHead } from '../governance/signing/audit-chain';
import type { PendingApproval } from '../workflows/run-types';

/**
 * Reading what a run says about itself (its audit anchor and pending approvals in its memo, its
 * answer to the `pendingApprovals` query) so that only the run's own words count. Anyone may start
 * a workflow under any id with any memo, and answer its queries from a worker of their own; what
 * they cannot do without the payload key is write a payload that decrypts with it.
 */

/** A value as the run wrote it, or why it does not count (`reason` short, `detail` for people). */
export type RunWords = { ok: true; value: unknown } | { ok: false; reason: string; detail: string };

/**
 * Whether a client decodes payloads through a codec, i.e. holds a payload key: Warden's only codec
 * is `EncryptionCodec`. Such a client refuses what a run says in clear; one without (a plain dev
 * setup) reads it as it is.
 */
export function holdsPayloadKey(converter: LoadedDataConverter): boolean {
  return converter.payloadCodecs.length > 0;
}

/**
 * Decodes a payload of run `workflowId` (`what`: a memo field, a query answer). With a payload
 * key, a payload in clear is refused: a Warden worker holding that key encrypts everything it
 * writes. One that does not decrypt throws the codec's error (a key this client lacks, or an
 * altered payload). No payload: `{ ok: true, value: undefined }`.
 */
export async function readRunPayload(converter: LoadedDataConverter, namespace: string, workflowId: string, payload: Payload | null | undefined, what: { short: string; long: string }): Promise<RunWords> {
  if (!payload) return { ok: true, value: undefined };
  if (holdsPayloadKey(converter) && !isEncryptedPayload(payload)) {
    return { ok: false, reason: `${what.short} not encrypted`, detail: `${what.long} of run ${workflowId} is not encrypted: no Warden worker holding this client's payload key wrote it` };
  }
  return { ok: true, value: await decodeOptionalSinglePayload(converter, payload, { type: 'workflow', namespace, workflowId }) };
}

/** One memo field of run `workflowId`, as `readRunPayload` reads it. */
export function readRunMemoField(converter: LoadedDataConverter, namespace: string, workflowId: string, fields: Record<string, Payload> | null | undefined, field: string): Promise<RunWords> {
  return readRunPayload(converter, namespace, workflowId, fields?.[field], { short: 'memo', long: `memo field ${field}` });
}

/** The audit head a memo value holds, or null when it holds none. */
export function auditHeadOf(value: unknown): AuditHead | null {
  const head = value as Partial<AuditHead> | null | undefined;
  return typeof head?.seq === 'number' && typeof head.hash === 'string' ? { seq: head.seq, hash: head.hash } : null;
}

/**
 * Why a run's pending approvals are not its own, or null when they are: every approval must name
 * the run (`runId`), and have been asked for in this execution (pending approvals are never
 * carried across a continue-as-new, so none is older than the execution's start). This refuses a
 * genuine run's encrypted memo copied into another run, or into a new execution under its id.
 */
export function foreignApprovals(approvals: readonly PendingApproval[], workflowId: string, executionStart: Date | undefined): { reason: string; detail: string } | null {
  if (approvals.some((a) => typeof a !== 'object' || a === null)) return { reason: 'memo malformed', detail: `run ${workflowId} lists something that is not an approval` };
  const other = approvals.find((a) => a.runId !== workflowId);
  if (other) return { reason: 'memo names another run', detail: `run ${workflowId} lists approval ${other.approvalId} of run ${String(other.runId)}` };
  // Workflow time is the workflow task's start, never before the execution's; both read to the millisecond.
  const startMs = executionStart ? Math.floor(executionStart.getTime()) : undefined;
  const older = startMs === undefined ? undefined : approvals.find((a) => !(Date.parse(a.createdAt) >= startMs));
  if (older) {
    return { reason: 'memo written before this execution started', detail: `run ${workflowId} lists approval ${older.approvalId}, asked for at ${String(older.createdAt)}, before its execution started (${executionStart?.toISOString() ?? ''})` };
  }
  return null;
}

/**
 * The lines that tell people how many runs' approvals a listing left out, one per reason:
 * "1 run's approvals ignored: memo not encrypted".
 */
export function ignoredApprovalsLines(refused: readonly { reason: string }[]): string[] {
  const byReason = new Map<string, number>();
  for (const { reason } of refused) byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
  return [...byReason].map(([reason, n]) => `${n} ${n === 1 ? "run's" : "runs'"} approvals ignored: ${reason}`);
}
