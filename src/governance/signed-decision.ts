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
  /** The approval comment or the rejection reason: signed, so nobody can put words in a person's mouth. */
  note?: string;
}

/** What a channel that authenticated a person signs when it starts a run on their behalf. */
export interface StartClaims {
  kind: 'start';
  runId: string;
  agent: string;
  requester: string;
  /** `goalDigest(goal)`: the signature covers the goal without carrying it twice. */
  goal: string;
  channel: string;
  issuedAt: string;
}

/**
 * What an operator's channel signs to let a run the policy paused go on (the loop breaker's
 * `pause`): resuming widens what runs, so it takes a verified person.
 */
export interface OperatorClaims {
  kind: 'operator';
  action: 'resume';
  runId: string;
  by: string;
  channel: string;
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
export function signDecision(claims: DecisionClaims | StartClaims | OperatorClaims, privateKeyHex: string, keyId: string): SignedDecision {
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

function isDecisionClaims(value: Record<string, unknown>): boolean {
  return (
    typeof value.approvalId === 'string' &&
    typeof value.runId === 'string' &&
    (value.decision === 'approve' || value.decision === 'reject') &&
    typeof value.approver === 'string' &&
    Array.isArray(value.groups) &&
    value.groups.every((g) => typeof g === 'string') &&
    typeof value.channel === 'string' &&
    typeof value.issuedAt === 'string' &&
    (value.note === undefined || typeof value.note === 'string')
  );
}

function isStartClaims(value: Record<string, unknown>): boolean {
  return (
    value.kind === 'start' &&
    typeof value.runId === 'string' &&
    typeof value.agent === 'string' &&
    typeof value.requester === 'string' &&
    typeof value.goal === 'string' &&
    typeof value.channel === 'string' &&
    typeof value.issuedAt === 'string'
  );
}

function isOperatorClaims(value: Record<string, unknown>): boolean {
  return value.kind === 'operator' && value.action === 'resume' && typeof value.runId === 'string' && typeof value.by === 'string' && typeof value.channel === 'string' && typeof value.issuedAt === 'string';
}

export type ClaimsVerification = { ok: true; claims: DecisionClaims | StartClaims | OperatorClaims; keyId: string } | { ok: false; reason: string };

/**
 * Verifies a signed block: a key among `trusted`, a valid signature over the exact payload, a
 * canonical payload of the expected kind, and an issue time within the window of `nowMs`.
 * Pure JS. What the key may assert is `keyring.ts`'s business.
 */
export function verifySignedClaims(signed: unknown, trusted: TrustedKeys, nowMs: number, kind: 'decision' | 'start' | 'operator', maxAgeMs = DECISION_MAX_AGE_MS): ClaimsVerification {
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
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return { ok: false, reason: 'signed payload is not an object' };
  const fields = claims as Record<string, unknown>;
  if (kind === 'decision' && !isDecisionClaims(fields)) return { ok: false, reason: 'signed payload lacks approvalId, runId, decision, approver, groups, channel or issuedAt' };
  if (kind === 'start' && !isStartClaims(fields)) return { ok: false, reason: 'signed payload is not a run start (kind, runId, agent, requester, goal, channel, issuedAt)' };
  if (kind === 'operator' && !isOperatorClaims(fields)) return { ok: false, reason: 'signed payload is not an operator resume (kind, action, runId, by, channel, issuedAt)' };
  if (canonicalJson(claims) !== payload) return { ok: false, reason: 'signed payload is not canonical JSON' };
  const issued = Date.parse(fields.issuedAt as string);
  if (!Number.isFinite(issued)) return { ok: false, reason: 'issuedAt is not a time' };
  if (issued > nowMs + CLOCK_SKEW_MS) return { ok: false, reason: `${kind} is issued in the future` };
  if (nowMs - issued > maxAgeMs) return { ok: false, reason: `${kind} expired (issued ${Math.round((nowMs - issued) / 1000)}s ago, valid for ${maxAgeMs / 1000}s)` };
  return { ok: true, claims: claims as DecisionClaims | StartClaims | OperatorClaims, keyId };
}

/** Verifies a signed decision against bare public keys. Prefer `authorizeDecision`, which also checks what the key may assert. */
export function verifySignedDecision(signed: unknown, trusted: TrustedKeys, nowMs: number, maxAgeMs = DECISION_MAX_AGE_MS): DecisionVerification {
  const verified = verifySignedClaims(signed, trusted, nowMs, 'decision', maxAgeMs);
  return verified.ok ? { ok: true, claims: verified.claims as DecisionClaims } : verified;
}
