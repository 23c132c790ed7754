import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadKeyring } from '../../approvals/signing-keys';
import { authorizeOperator, ROLE_FOR_ACTION, type Keyring, type VerifiedIdentity } from '../../governance/signing/keyring';
import type { OperatorAction, SignedDecision } from '../../governance/signing/signed-decision';
import { CliError } from '../cli-errors';
import { wardenHome } from '../context';
import { resolveSigner } from './signers';

/** A command the CLI carries out itself (in the run store, no run involved), signed and checked as workers check theirs. */
export interface AuthorizedCommand {
  signature: SignedDecision;
  identity: VerifiedIdentity;
}

/** The trusted-keys file: `--trusted`, else `WARDEN_TRUSTED_KEYS`, else the one `warden dev` writes; null when there is none. */
function keyringFile(trusted: string | undefined): string | null {
  if (trusted) return trusted;
  if (process.env.WARDEN_TRUSTED_KEYS) return process.env.WARDEN_TRUSTED_KEYS;
  const dev = path.join(wardenHome(), 'trusted-keys.json');
  return existsSync(dev) ? dev : null;
}

/**
 * Signs an operator command with the CLI key and checks it against the trusted-keys file the
 * workers use, as a worker checks a signed resume: the key may assert `by`, with the role
 * `action` needs (`ROLE_FOR_ACTION`). For commands that change the run store directly, where no
 * worker stands between the CLI and the effect; the signature goes into the store's record, so
 * anyone with the keyring can check it later. Refuses, naming what is missing, before anything
 * is changed.
 */
export function authorizeCliOperator(action: OperatorAction, target: string, by: string, options: { key?: string; trusted?: string; doing: string }): AuthorizedCommand {
  const role = ROLE_FOR_ACTION[action];
  const file = keyringFile(options.trusted);
  if (!file) {
    throw new CliError(
      `${options.doing} needs the ${role} role: no trusted-keys file to check it against (pass --trusted <file>, set WARDEN_TRUSTED_KEYS to the file the workers use, or run 'warden dev' once). Nothing was changed.`,
    );
  }
  let keyring: Keyring;
  try {
    keyring = loadKeyring(file);
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err));
  }
  const signer = resolveSigner(options.key);
  const signature = signer.signOperator({ action, runId: target, by, channel: 'cli' });
  const auth = authorizeOperator(signature, keyring, Date.now(), { action, runId: target });
  if (!auth.ok) throw new CliError(`${options.doing} refused: it needs the ${role} role, and ${auth.reason} (${file}). Nothing was changed.`);
  return { signature, identity: auth.identity };
}
