import { createHmac, timingSafeEqual } from 'node:crypto';
import { canonicalJson } from '../governance/signing/canonical';
import type { ExecutionRef } from './activity-types';

/**
 * What a seal binds: the kind of state, the execution that handed it over, the workflow it is for,
 * and the digest of the input that execution receives. Temporal's own fields
 * (`continuedFromExecutionRunId`, `parent`) say where an input came from, not who made it; a seal
 * is made only by a worker holding the store's seal key, for its own execution.
 */
export interface SealFields {
  kind: 'carry' | 'delegation';
  by: ExecutionRef;
  to: string;
  digest: string;
}

const SEAL_HEX = /^[0-9a-f]{64}$/;

/** HMAC-SHA256 of the fields' canonical JSON with the seal key (hex). */
export function sealOf(keyHex: string, fields: SealFields): string {
  return createHmac('sha256', Buffer.from(keyHex, 'hex'))
    .update(canonicalJson({ v: 1, kind: fields.kind, by: { workflowId: fields.by.workflowId, runId: fields.by.runId }, to: fields.to, digest: fields.digest }))
    .digest('hex');
}

/** Whether `given` is the seal of `fields` under the key; compared in constant time. */
export function sealMatches(keyHex: string, fields: SealFields, given: unknown): boolean {
  if (typeof given !== 'string' || !SEAL_HEX.test(given)) return false;
  return timingSafeEqual(Buffer.from(sealOf(keyHex, fields), 'hex'), Buffer.from(given, 'hex'));
}
