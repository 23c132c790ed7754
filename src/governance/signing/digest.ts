import { sha256 } from '@noble/hashes/sha256';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import { canonicalJson } from './canonical';

/** SHA-256 of a UTF-8 string, lower-case hex. Pure JS: workflow code has no Node `crypto`. */
export function sha256Hex(text: string): string {
  return bytesToHex(sha256(utf8ToBytes(text)));
}

/** Digest of a value's canonical JSON: equal for values that mean the same. */
export function digestOf(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}

/** Where a call sits in a run: what an approval id is bound to. */
export interface CallPosition {
  runId: string;
  /** The run's first execution: a new run under a reused workflow id gets other ids. */
  execution: string;
  /** The call's place in the conversation: a later call with the same id and arguments gets another id. */
  seq: number;
  callId: string;
  tool: string;
  args: unknown;
  /** The policy that asked: a policy change that asks again issues a new id, so old signatures cannot count. */
  policyVersion: string;
}

/**
 * The id of an approval, bound to the exact call and its position: run, execution, sequence
 * number, call id, tool, canonical arguments and the policy version that asked. A decision signed
 * for anything else cannot match, and cannot be replayed onto a later call.
 */
export function approvalIdFor(position: CallPosition): string {
  return 'apr_' + digestOf(position).slice(0, 32);
}
