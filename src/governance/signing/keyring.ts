import { z } from 'zod';
import { identityKey, normalizeIdentity, spellOut } from './identity-folding';
import { verifySignedClaims, type DecisionClaims, type OperatorAction, type OperatorClaims, type SignedDecision, type StartClaims } from './signed-decision';
import { digestOf } from './digest';
import { errorMarker, WardenError } from '../../errors';
import { formatZodError } from '../../zod-error';

const hexKey = z.string().regex(/^[0-9a-f]{64}$/, 'must be a 32-byte Ed25519 public key in hex');

/**
 * What one trusted key may assert. A person's own key (`people: {"alice": ["finance"]}`) asserts
 * only that person, in at most those groups; a channel key with a directory asserts the people in
 * it; `people: "*"` trusts the channel's authentication for any identity and its groups (an inbox
 * behind OIDC). Every signed claim must also name the key's `channel`.
 */
export const keyGrantSchema = z.strictObject({
  publicKey: hexKey,
  channel: z.string().min(1, 'must name the channel the key signs for (web, slack, cli)'),
  people: z.union([z.literal('*'), z.record(z.string().min(1), z.array(z.string().min(1)))]),
  /**
   * The roles the key may assert for the people it speaks for: `operator` (resume, roll back,
   * pause with a verified name), `policy-admin` (make running runs take up a new policy). Default
   * none: a key that signs approvals or run starts commands no run.
   */
  roles: z.array(z.enum(['operator', 'policy-admin'])).optional(),
  /** A revoked key stays listed (so its earlier decisions can be explained) but signs nothing more. */
  revoked: z.boolean().default(false),
});

/** A role a trusted key may assert (`KeyGrant.roles`). */
export type OperatorRole = 'operator' | 'policy-admin';

/** The role each operator command needs. */
export const ROLE_FOR_ACTION: Readonly<Record<OperatorAction, OperatorRole>> = { pause: 'operator', resume: 'operator', rollback: 'operator', applyPolicy: 'policy-admin', quotaReset: 'operator' };

export type KeyGrant = z.output<typeof keyGrantSchema>;
/** The keys a worker trusts, by key id. Worker configuration only: never from a policy or a message. */
export type Keyring = Record<string, KeyGrant>;

/** A keyring file that does not say what its keys may assert. The message names the file and the key. */
export class KeyringError extends WardenError {
  static override readonly marker = errorMarker('KeyringError');
  override name = 'KeyringError';
}

/** Validates a keyring document (`{"<keyId>": {"publicKey", "channel", "people"}}`); throws `KeyringError` naming `source`. */
export function parseKeyring(doc: unknown, source: string): Keyring {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new KeyringError(`${source}: must be an object of keyId → {"publicKey", "channel", "people"}`);
  const out: Keyring = {};
  for (const [keyId, entry] of Object.entries(doc)) {
    if (typeof entry === 'string') {
      throw new KeyringError(
        `${source}: key "${keyId}" is a bare public key; a trusted key must say what it may assert, e.g. {"publicKey": "…", "channel": "cli", "people": {"alice": ["finance"]}} or {"publicKey": "…", "channel": "web", "people": "*"}`,
      );
    }
    const parsed = keyGrantSchema.safeParse(entry);
    if (!parsed.success) throw new KeyringError(`${source}: key "${keyId}": ${formatZodError(parsed.error)}`);
    if (parsed.data.people !== '*') refuseLookalikes(Object.keys(parsed.data.people), `${source}: key "${keyId}"`);
    out[keyId] = parsed.data;
  }
  return out;
}

/**
 * A directory that lists two people who look alike (`alice` and `аlice` with a Cyrillic а) is
 * refused: four-eyes and quorum count them as one person, so one of the entries is a mistake or a
 * trap, and the worker operator should say which.
 */
function refuseLookalikes(people: readonly string[], where: string): void {
  const seen = new Map<string, string>();
  for (const person of people) {
    const id = normalizeIdentity(person);
    const key = identityKey(person);
    const other = seen.get(key);
    if (other !== undefined && other !== id) throw new KeyringError(`${where} lists ${spellOut(other)} and ${spellOut(id)}, which look alike and count as one person; keep the one that is meant`);
    seen.set(key, id);
  }
}

/** The person a verified claim speaks for: normalised id, the groups it may assert, the channel, the key. */
export interface VerifiedIdentity {
  id: string;
  groups: string[];
  channel: string;
  keyId: string;
}

export type Authorization<C> = { ok: true; claims: C; identity: VerifiedIdentity } | { ok: false; reason: string };

function publicKeys(keyring: Keyring): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const [id, grant] of Object.entries(keyring)) if (!grant.revoked) keys[id] = grant.publicKey;
  return keys;
}

/** Checks that a key may assert this person in these groups on this channel. */
function bind(keyring: Keyring, keyId: string, person: string, groups: readonly string[], channel: string): { ok: true; identity: VerifiedIdentity } | { ok: false; reason: string } {
  const grant = keyring[keyId];
  if (!grant) return { ok: false, reason: `unknown signing key "${keyId}"` };
  if (grant.channel !== channel) return { ok: false, reason: `key "${keyId}" signs for channel ${grant.channel}, not ${channel}` };
  const id = normalizeIdentity(person);
  if (!id) return { ok: false, reason: 'the signed identity is empty' };
  const claimed = [...new Set(groups.map(normalizeIdentity))].filter(Boolean);
  if (grant.people === '*') return { ok: true, identity: { id, groups: claimed, channel, keyId } };
  const entry = Object.entries(grant.people).find(([who]) => normalizeIdentity(who) === id);
  if (!entry) return { ok: false, reason: `key "${keyId}" may not assert ${id} (it speaks for ${Object.keys(grant.people).join(', ') || 'nobody'})` };
  const allowed = [...new Set(entry[1].map(normalizeIdentity))];
  const over = claimed.filter((g) => !allowed.includes(g));
  if (over.length > 0) return { ok: false, reason: `key "${keyId}" may not assert group(s) ${over.join(', ')} for ${id}` };
  // The directory is the authority on groups: a person is in the groups it lists, whatever the claim says.
  return { ok: true, identity: { id, groups: allowed, channel, keyId } };
}

/** The claims of each signed kind, and the person each asserts. */
interface SignedKinds {
  decision: DecisionClaims;
  start: StartClaims;
  operator: OperatorClaims;
}

/**
 * Verifies a signed block of one kind against the worker's current keyring: signature, age,
 * revocation, and that the key may assert the person the claims name (in the groups they state).
 */
function authorize<K extends keyof SignedKinds>(kind: K, signed: unknown, keyring: Keyring, nowMs: number, person: (claims: SignedKinds[K]) => { id: string; groups: readonly string[] }): Authorization<SignedKinds[K]> {
  const verified = verifySignedClaims(signed, publicKeys(keyring), nowMs, kind);
  if (!verified.ok) return revokedOr(verified.reason, signed, keyring);
  const claims = verified.claims as SignedKinds[K];
  const { id, groups } = person(claims);
  const bound = bind(keyring, verified.keyId, id, groups, claims.channel);
  return bound.ok ? { ok: true, claims, identity: bound.identity } : bound;
}

/**
 * Verifies a signed decision against the worker's current keyring: signature, age, revocation,
 * and what the key may assert. Claims about the run (run id, approval id, kind, note) are checked
 * by the caller, who knows what it expects.
 */
export function authorizeDecision(signed: unknown, keyring: Keyring, nowMs: number): Authorization<DecisionClaims> {
  return authorize('decision', signed, keyring, nowMs, (c) => ({ id: c.approver, groups: c.groups }));
}

/** The digest a start claim carries of the goal, so a signature cannot be moved to another goal. */
export function goalDigest(goal: string): string {
  return digestOf(goal).slice(0, 32);
}

/**
 * Verifies a signed run start: the requester a trusted channel authenticated. `nowMs` is the
 * workflow's start time, so a worker that picks the run up late does not unverify it.
 */
export function authorizeStart(signed: unknown, keyring: Keyring, nowMs: number): Authorization<StartClaims> {
  return authorize('start', signed, keyring, nowMs, (c) => ({ id: c.requester, groups: [] }));
}

/**
 * Verifies a signed operator command for one run: signature, age, revocation, that the key may
 * assert the operator, that the claims are for `expected.action` on `expected.runId`, and that the
 * key may assert the role the action needs (`ROLE_FOR_ACTION`).
 */
export function authorizeOperator(signed: unknown, keyring: Keyring, nowMs: number, expected: { action: OperatorAction; runId: string }): Authorization<OperatorClaims> {
  const auth = authorize('operator', signed, keyring, nowMs, (c) => ({ id: c.by, groups: [] }));
  if (!auth.ok) return auth;
  const { claims, identity } = auth;
  if (claims.action !== expected.action) return { ok: false, reason: `the signed command is a ${claims.action}, not a ${expected.action}` };
  if (claims.runId !== expected.runId) return { ok: false, reason: `the signed ${claims.action} is for run ${claims.runId}, not this one` };
  const role = ROLE_FOR_ACTION[expected.action];
  const roles = keyring[identity.keyId]?.roles ?? [];
  if (!roles.includes(role)) return { ok: false, reason: `operator key "${identity.keyId}" may not assert role ${role} (its roles: ${roles.join(', ') || 'none'})` };
  return auth;
}

function revokedOr(reason: string, signed: unknown, keyring: Keyring): { ok: false; reason: string } {
  const keyId = typeof signed === 'object' && signed !== null ? (signed as Partial<SignedDecision>).keyId : undefined;
  if (typeof keyId === 'string' && keyring[keyId]?.revoked) return { ok: false, reason: `signing key "${keyId}" is revoked` };
  return { ok: false, reason };
}
