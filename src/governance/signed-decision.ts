import { ed25519 } from '@noble/curves/ed25519';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils';
import { canonicalJson } from './canonical';

/** What a channel that authenticated a person signs for one decision. */
export interface DecisionClaims {
  approvalId: string;
  runId: string;
  decision: 'approve' | 'reject';
  approver: string;
  groups: string[];
  /** `web`, `slack`, `cli`, … */
  channel: string;
  /** ISO time the channel issued it; a decision older than the window is refused as expired. */
  issuedAt: string;
}

/** A signed decision as it travels in an approve/reject signal. */
export interface SignedDecision {
  /** Canonical JSON of the claims: exactly the bytes that were signed. */
  payload: string;
  /** Hex Ed25519 signature over `payload`. */
  signature: string;
  keyId: string;
}

/** Public keys (hex) that may sign decisions, by key id. */
export type TrustedKeys = Record<string, string>;

/** How long a signed decision stays valid after it was issued. */
export const DECISION_MAX_AGE_MS = 5 * 60_000;
/** How far a channel's clock may run ahead of the workflow's. */
const CLOCK_SKEW_MS = 60_000;

export type DecisionVerification = { ok: true; claims: DecisionClaims } | { ok: false; reason: string };

/**
 * Signs decision claims with a channel's Ed25519 private key (hex). Use it in channels that
 * authenticated the person (web inbox, Slack app, CLI with a key), never in workflow code.
 */
export function signDecision(claims: DecisionClaims, privateKeyHex: string, keyId: string): SignedDecision {
  const payload = canonicalJson(claims);
  const signature = bytesToHex(ed25519.sign(utf8ToBytes(payload), hexToBytes(privateKeyHex)));
  return { payload, signature, keyId };
}

/** A new Ed25519 key pair, hex encoded. */
export function generateSigningKey(): { privateKey: string; publicKey: string } {
  const secret = ed25519.utils.randomPrivateKey();
  return { privateKey: bytesToHex(secret), publicKey: bytesToHex(ed25519.getPublicKey(secret)) };
}

export function publicKeyOf(privateKeyHex: string): string {
  return bytesToHex(ed25519.getPublicKey(hexToBytes(privateKeyHex)));
}

function isClaims(value: unknown): value is DecisionClaims {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.approvalId === 'string' &&
    typeof v.runId === 'string' &&
    (v.decision === 'approve' || v.decision === 'reject') &&
    typeof v.approver === 'string' &&
    Array.isArray(v.groups) &&
    v.groups.every((g) => typeof g === 'string') &&
    typeof v.channel === 'string' &&
    typeof v.issuedAt === 'string'
  );
}

/**
 * Verifies a signed decision: a trusted key, a valid signature over the exact payload, and an
 * issue time within the window. Pure JS, so the workflow runs it in its sandbox before it counts
 * a decision; `nowMs` is the workflow's clock.
 */
export function verifySignedDecision(signed: unknown, trusted: TrustedKeys, nowMs: number, maxAgeMs = DECISION_MAX_AGE_MS): DecisionVerification {
  if (typeof signed !== 'object' || signed === null) return { ok: false, reason: 'signature block is not an object' };
  const { payload, signature, keyId } = signed as Partial<SignedDecision>;
  if (typeof payload !== 'string' || typeof signature !== 'string' || typeof keyId !== 'string') {
    return { ok: false, reason: 'signature block needs payload, signature and keyId strings' };
  }
  const publicKey = trusted[keyId];
  if (!publicKey) return { ok: false, reason: `unknown signing key "${keyId}"` };
  let valid = false;
  try {
    valid = ed25519.verify(hexToBytes(signature), utf8ToBytes(payload), hexToBytes(publicKey));
  } catch {
    valid = false;
  }
  if (!valid) return { ok: false, reason: `signature does not verify with key "${keyId}" (forged or altered)` };
  let claims: unknown;
  try {
    claims = JSON.parse(payload);
  } catch {
    return { ok: false, reason: 'signed payload is not JSON' };
  }
  if (!isClaims(claims)) return { ok: false, reason: 'signed payload lacks approvalId, runId, decision, approver, groups, channel or issuedAt' };
  if (canonicalJson(claims) !== payload) return { ok: false, reason: 'signed payload is not canonical JSON' };
  const issued = Date.parse(claims.issuedAt);
  if (!Number.isFinite(issued)) return { ok: false, reason: 'issuedAt is not a time' };
  if (issued > nowMs + CLOCK_SKEW_MS) return { ok: false, reason: 'decision is issued in the future' };
  if (nowMs - issued > maxAgeMs) return { ok: false, reason: `decision expired (issued ${Math.round((nowMs - issued) / 1000)}s ago, valid for ${maxAgeMs / 1000}s)` };
  return { ok: true, claims };
}
