import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { errorMarker, WardenError } from '../errors';
import { writePrivateFile } from '../private-files';
import { formatZodError } from '../zod-error';
// The governance modules themselves, not its index: the index loads the policy engine (CEL), which
// a command that only signs or reads keys never uses, and every CLI command pays for its load.
import { KeyringError, parseKeyring, type KeyGrant, type Keyring } from '../governance/signing/keyring';
import { generateSigningKey, publicKeyOf, signDecision, type DecisionClaims, type OperatorAction, type OperatorClaims, type SignedDecision, type StartClaims } from '../governance/signing/signed-decision';

// `publicKey` in the file is informative only; a file without it (or with another) still loads.
const signingKeyFileSchema = z.object({
  keyId: z.string().min(1, 'must name the key (its id in trusted-keys files)'),
  privateKey: z.string().regex(/^[0-9a-f]{64}$/, 'must be a 32-byte Ed25519 private key in lowercase hex'),
});

/** A signing key file cannot be read, is malformed, or is in the way of a new one; the message names the file. */
export class SigningKeyError extends WardenError {
  static override readonly marker = errorMarker('SigningKeyError');
  override name = 'SigningKeyError';
}

/** A channel's signing key as stored on disk (mode 0600). */
export interface SigningKeyFile {
  keyId: string;
  privateKey: string;
  publicKey: string;
}

/** A channel that signs the decisions of people it authenticated, and the runs they start. */
export class DecisionSigner {
  constructor(private readonly key: SigningKeyFile) {}

  get keyId(): string {
    return this.key.keyId;
  }

  /** Signs one decision; `note` (the comment or reason) is signed with it, so nobody can change what the person said. */
  sign(claims: Omit<DecisionClaims, 'issuedAt'> & { issuedAt?: string }): SignedDecision {
    return signDecision({ ...claims, issuedAt: claims.issuedAt ?? new Date().toISOString() }, this.key.privateKey, this.key.keyId);
  }

  /**
   * Signs a run start on behalf of the requester the channel authenticated. `goal` is
   * `goalDigest(goal)`, so the signature cannot be moved to another goal.
   */
  signStart(claims: Omit<StartClaims, 'kind' | 'issuedAt'> & { issuedAt?: string }): SignedDecision {
    const start: StartClaims = {
      kind: 'start',
      runId: claims.runId,
      agent: claims.agent,
      requester: claims.requester,
      goal: claims.goal,
      channel: claims.channel,
      issuedAt: claims.issuedAt ?? new Date().toISOString(),
      ...(claims.tenant !== undefined ? { tenant: claims.tenant } : {}),
    };
    return signDecision(start, this.key.privateKey, this.key.keyId);
  }

  /**
   * Signs one operator command (pause, resume, rollback, applyPolicy) to one run, on behalf of the
   * person the channel authenticated. Workers count it only if their trusted-keys file lets this
   * key assert that person and the role the action needs (`roles`).
   */
  signOperator(claims: { action: OperatorAction; runId: string; by: string; channel: string; issuedAt?: string }): SignedDecision {
    const command: OperatorClaims = { kind: 'operator', action: claims.action, runId: claims.runId, by: claims.by, channel: claims.channel, issuedAt: claims.issuedAt ?? new Date().toISOString() };
    return signDecision(command, this.key.privateKey, this.key.keyId);
  }
}

/** Reads a signing key file; the error names the file and what is wrong with it. */
export function loadSigningKey(file: string): SigningKeyFile {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new SigningKeyError(`cannot read signing key ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = signingKeyFileSchema.safeParse(doc);
  // The issues name the field, never its value: a private key must not reach a log.
  if (!parsed.success) throw new SigningKeyError(`signing key ${file} needs "keyId" and a hex "privateKey": ${formatZodError(parsed.error)}`);
  // The public key is derived, never trusted from the file.
  return { keyId: parsed.data.keyId, privateKey: parsed.data.privateKey, publicKey: publicKeyOf(parsed.data.privateKey) };
}

/** Creates a new signing key file (refuses to overwrite one). */
export function createSigningKey(file: string, keyId: string): SigningKeyFile {
  if (existsSync(file)) throw new SigningKeyError(`${file} exists already; remove it to make a new key`);
  const pair = generateSigningKey();
  const key = { keyId, privateKey: pair.privateKey, publicKey: pair.publicKey };
  // New directories on the way 0700, the file 0600, whatever the umask.
  writePrivateFile(file, JSON.stringify(key, null, 2) + '\n', 'wx');
  return key;
}

/**
 * Reads a trusted-keys file (`{"<keyId>": {"publicKey", "channel", "people", "revoked"?}}`).
 * Throws `KeyringError` naming the file: unreadable, not JSON, or a grant that does not say
 * what its key may assert (a bare public key of the old format included).
 */
export function loadKeyring(file: string): Keyring {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new KeyringError(`cannot read trusted keys ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new KeyringError(`trusted keys ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseKeyring(doc, file);
}

/** What identifies one version of a file without reading it. Inode too: an editor that saves by rename keeps size and may keep mtime. */
function versionOf(file: string): string {
  const s = statSync(file);
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

/**
 * A keyring that follows its file: each call checks the file's inode, size and mtime and
 * re-reads it when they changed, so revoking a key in the file takes effect for running runs
 * without a worker restart. The file is read once here, so a bad file stops a worker at start.
 * A file that later disappears or becomes invalid makes every call throw (with the reason):
 * decisions are refused, never checked against a stale or empty keyring.
 */
export function watchKeyring(file: string): () => Keyring {
  let version = versionOf(file);
  let current: { keyring: Keyring } | { error: Error } = { keyring: loadKeyring(file) };
  return () => {
    let now: string;
    try {
      now = versionOf(file);
    } catch (err) {
      throw new KeyringError(`cannot read trusted keys ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (now !== version) {
      version = now;
      try {
        current = { keyring: loadKeyring(file) };
      } catch (err) {
        current = { error: err instanceof Error ? err : new KeyringError(String(err)) };
      }
    }
    if ('error' in current) throw current.error;
    return current.keyring;
  };
}

/** The keyring a worker uses: the file named by `WARDEN_TRUSTED_KEYS`, followed as it changes (`watchKeyring`); none when unset. */
export function keyringFromEnv(env: Readonly<Record<string, string | undefined>>): () => Keyring {
  const file = env.WARDEN_TRUSTED_KEYS;
  if (!file) return () => ({});
  return watchKeyring(file);
}

export type DevChannel = 'cli' | 'web' | 'slack';

/**
 * Development keys under `<home>/keys`: one per channel (cli, web, slack), created on first use,
 * and `<home>/trusted-keys.json` (mode 0600), regenerated from them on every call (so a file of
 * the old bare-key format is replaced). The web and Slack keys may assert anyone (`"*"`): those
 * channels authenticate people themselves (users file, Slack identity map). The CLI key asserts
 * only the people of `cliPeople`, with their groups, because the terminal authenticates nobody.
 * A dev key revoked in the file stays revoked. Production keeps private keys in a secret store
 * and gives workers only the grants.
 */
export function ensureDevKeys(home: string, cliPeople: Record<string, string[]>): { trustedKeysFile: string; keyFile(channel: DevChannel): string } {
  const dir = path.join(home, 'keys');
  const trustedKeysFile = path.join(home, 'trusted-keys.json');
  let previous: Keyring = {};
  try {
    previous = existsSync(trustedKeysFile) ? loadKeyring(trustedKeysFile) : {};
  } catch {
    // An old-format or broken file is replaced below; it has no revocations worth keeping.
  }
  // As written to the file: `revoked` only where it is true, the schema's default covers the rest.
  const trusted: Record<string, Omit<KeyGrant, 'revoked'> & { revoked?: true }> = {};
  for (const channel of ['cli', 'web', 'slack'] as const) {
    const file = path.join(dir, `${channel}.json`);
    const key = existsSync(file) ? loadSigningKey(file) : createSigningKey(file, `dev-${channel}`);
    const people: KeyGrant['people'] = channel === 'cli' ? cliPeople : '*';
    // The development CLI key operates runs too (pause, resume, rollback, policy apply) for the dev
    // users, and so does the inbox's key, for the people its console lets operate (bob, in dev).
    const roles: KeyGrant['roles'] = channel === 'slack' ? undefined : ['operator', 'policy-admin'];
    const revoked = previous[key.keyId]?.publicKey === key.publicKey && previous[key.keyId]?.revoked === true;
    trusted[key.keyId] = { publicKey: key.publicKey, channel, people, ...(roles ? { roles } : {}), ...(revoked ? { revoked: true as const } : {}) };
  }
  writePrivateFile(trustedKeysFile, JSON.stringify(trusted, null, 2) + '\n');
  return { trustedKeysFile, keyFile: (channel) => path.join(dir, `${channel}.json`) };
}
