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

/**
 * What a grant binds: a run and the digest of the preparation its worker made for it (agent,
 * policy, requester: `preparedDigest`). Activity results can be completed by anyone holding a
 * Temporal client (`RespondActivityTaskCompletedById`); a grant is made only by a worker holding the
 * store's seal key, so a preparation handed to the run by someone else carries none that matches.
 */
export interface GrantFields {
  runId: string;
  digest: string;
}

/** What a proposal seal binds: the call as the worker's model activity parsed it for the run. */
export interface ProposalFields {
  runId: string;
  callId: string;
  tool: string;
  /** `digestOf` the arguments the tool's schema made of the model's. */
  argsDigest: string;
}

function hmacHex(keyHex: string, payload: unknown): string {
  return createHmac('sha256', Buffer.from(keyHex, 'hex')).update(canonicalJson(payload)).digest('hex');
}

function matches(expected: string, given: unknown): boolean {
  if (typeof given !== 'string' || !SEAL_HEX.test(given)) return false;
  return timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(given, 'hex'));
}

export function grantOf(keyHex: string, fields: GrantFields): string {
  return hmacHex(keyHex, { v: 1, kind: 'grant', runId: fields.runId, digest: fields.digest });
}

export function grantMatches(keyHex: string, fields: GrantFields, given: unknown): boolean {
  return matches(grantOf(keyHex, fields), given);
}

export function proposalSealOf(keyHex: string, fields: ProposalFields): string {
  return hmacHex(keyHex, { v: 1, kind: 'proposal', runId: fields.runId, callId: fields.callId, tool: fields.tool, argsDigest: fields.argsDigest });
}

export function proposalMatches(keyHex: string, fields: ProposalFields, given: unknown): boolean {
  return matches(proposalSealOf(keyHex, fields), given);
}

/** What a spend seal binds: a run's own model spend up to and including one model call. */
export interface SpendFields {
  runId: string;
  step: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

export function spendSealOf(keyHex: string, fields: SpendFields): string {
  return hmacHex(keyHex, { v: 1, kind: 'spend', runId: fields.runId, step: fields.step, inputTokens: fields.inputTokens, outputTokens: fields.outputTokens, costUsd: fields.costUsd });
}

export function spendMatches(keyHex: string, fields: SpendFields, given: unknown): boolean {
  return matches(spendSealOf(keyHex, fields), given);
}
