import { existsSync } from 'node:fs';
import path from 'node:path';
import { DecisionSigner, loadSigningKey } from '../../approvals/signing-keys';
import { wardenHome } from '../context';
import { CliError } from '../cli-errors';

const KEY_ENV = { cli: 'WARDEN_SIGNING_KEY', web: 'WARDEN_WEB_SIGNING_KEY', slack: 'WARDEN_SLACK_SIGNING_KEY' } as const;

/**
 * A channel's signing key: `--key`, else its environment variable (`WARDEN_SIGNING_KEY` for the
 * CLI, `WARDEN_WEB_SIGNING_KEY`, `WARDEN_SLACK_SIGNING_KEY`), else `<home>/keys/<channel>.json`
 * (made by `warden dev`). Workers count a decision only if they trust the key that signed it.
 */
export function resolveSigningKey(keyFile: string | undefined, channel: keyof typeof KEY_ENV): { signer: DecisionSigner; file: string } {
  const variable = KEY_ENV[channel];
  const file = keyFile ?? process.env[variable] ?? path.join(wardenHome(), 'keys', `${channel}.json`);
  if (!keyFile && !process.env[variable] && !existsSync(file)) {
    const which = channel === 'cli' ? 'signing key' : `${channel} signing key`;
    throw new CliError(`no ${which}: pass --key FILE, set ${variable}, or run 'warden dev' once to create ${file}`);
  }
  try {
    return { signer: new DecisionSigner(loadSigningKey(file)), file };
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err));
  }
}

/** The CLI's own signer (`resolveSigningKey` for channel `cli`): for commands that must sign (`warden approve`). */
export function resolveSigner(keyFile?: string): DecisionSigner {
  return resolveSigningKey(keyFile, 'cli').signer;
}

/**
 * The CLI's signer where one is set up, else null: for commands that work without a key but
 * mean less (`warden run` starts an unverified run). A key that was asked for (a flag or
 * `WARDEN_SIGNING_KEY`) and cannot be read is still an error: silence would hide a typo.
 */
export function optionalSigner(keyFile?: string): DecisionSigner | null {
  if (!keyFile && !process.env[KEY_ENV.cli] && !existsSync(path.join(wardenHome(), 'keys', 'cli.json'))) return null;
  return resolveSigner(keyFile);
}
