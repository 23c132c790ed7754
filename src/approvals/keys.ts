import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateSigningKey, publicKeyOf, signDecision, type DecisionClaims, type SignedDecision, type TrustedKeys } from '../governance';

/** A channel's signing key as stored on disk (mode 0600). */
export interface SigningKeyFile {
  keyId: string;
  privateKey: string;
  publicKey: string;
}

/** A channel that signs the decisions of people it authenticated. */
export class DecisionSigner {
  constructor(private readonly key: SigningKeyFile) {}

  get keyId(): string {
    return this.key.keyId;
  }

  sign(claims: Omit<DecisionClaims, 'issuedAt'> & { issuedAt?: string }): SignedDecision {
    return signDecision({ ...claims, issuedAt: claims.issuedAt ?? new Date().toISOString() }, this.key.privateKey, this.key.keyId);
  }
}

/** Reads a signing key file; the error names the file and what is wrong with it. */
export function loadSigningKey(file: string): SigningKeyFile {
  let parsed: Partial<SigningKeyFile>;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<SigningKeyFile>;
  } catch (err) {
    throw new Error(`cannot read signing key ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof parsed.keyId !== 'string' || typeof parsed.privateKey !== 'string' || !/^[0-9a-f]{64}$/.test(parsed.privateKey)) {
    throw new Error(`signing key ${file} needs "keyId" and a hex "privateKey"`);
  }
  return { keyId: parsed.keyId, privateKey: parsed.privateKey, publicKey: publicKeyOf(parsed.privateKey) };
}

/** Creates a new signing key file (refuses to overwrite one). */
export function createSigningKey(file: string, keyId: string): SigningKeyFile {
  if (existsSync(file)) throw new Error(`${file} exists already; remove it to make a new key`);
  mkdirSync(path.dirname(file), { recursive: true });
  const pair = generateSigningKey();
  const key = { keyId, privateKey: pair.privateKey, publicKey: pair.publicKey };
  writeFileSync(file, JSON.stringify(key, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return key;
}

/** Reads a trusted-keys file: `{ "<keyId>": "<hex public key>" }`. */
export function loadTrustedKeys(file: string): TrustedKeys {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read trusted keys ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${file} must be an object of keyId → hex public key`);
  for (const [id, key] of Object.entries(parsed)) {
    if (typeof key !== 'string' || !/^[0-9a-f]{64}$/.test(key)) throw new Error(`${file}: key "${id}" is not a hex Ed25519 public key`);
  }
  return parsed as TrustedKeys;
}

/** The trusted keys a worker uses: the file named by `WARDEN_TRUSTED_KEYS`, if set. */
export function trustedKeysFromEnv(env: NodeJS.ProcessEnv = process.env): TrustedKeys {
  return env.WARDEN_TRUSTED_KEYS ? loadTrustedKeys(env.WARDEN_TRUSTED_KEYS) : {};
}

/**
 * Development keys under `<home>/keys`: one per channel (cli, web, slack), created on first use,
 * and `<home>/trusted-keys.json` listing their public keys. Production keeps private keys in a
 * secret store and gives workers only the public keys.
 */
export function ensureDevKeys(home: string): { trustedKeysFile: string; keyFile(channel: 'cli' | 'web' | 'slack'): string } {
  const dir = path.join(home, 'keys');
  const trusted: TrustedKeys = {};
  for (const channel of ['cli', 'web', 'slack'] as const) {
    const file = path.join(dir, `${channel}.json`);
    const key = existsSync(file) ? loadSigningKey(file) : createSigningKey(file, `dev-${channel}`);
    trusted[key.keyId] = key.publicKey;
  }
  const trustedKeysFile = path.join(home, 'trusted-keys.json');
  writeFileSync(trustedKeysFile, JSON.stringify(trusted, null, 2) + '\n');
  return { trustedKeysFile, keyFile: (channel) => path.join(dir, `${channel}.json`) };
}
