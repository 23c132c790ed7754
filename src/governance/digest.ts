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

/**
 * The id of an approval, bound to the exact call: run, call id, tool and canonical arguments.
 * An approval signal whose id was computed for anything else cannot match.
 */
export function approvalIdFor(runId: string, callId: string, tool: string, args: unknown): string {
  return 'apr_' + digestOf({ runId, callId, tool, args }).slice(0, 32);
}
