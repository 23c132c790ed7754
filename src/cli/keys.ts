import type { Command } from 'commander';
import { createSigningKey } from '../approvals/keys';
import { CliError } from './errors';
import { out } from './format';

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('Signing keys for approval decisions');
  keys
    .command('generate')
    .description('Create an Ed25519 signing key file (mode 0600) and print its public key for a trusted-keys file')
    .requiredOption('--id <keyId>', 'key id, e.g. cli-alice')
    .requiredOption('--out <file>', 'where to write the private key file (refuses to overwrite)')
    .action((opts: { id: string; out: string }) => {
      let key;
      try {
        key = createSigningKey(opts.out, opts.id);
      } catch (err) {
        throw new CliError(err instanceof Error ? err.message : String(err));
      }
      out(`wrote ${opts.out} (key id ${key.keyId}); keep it private`);
      out(`public key: ${key.publicKey}`);
      out('add it to the trusted-keys file workers read (WARDEN_TRUSTED_KEYS), or to a policy\'s trustedKeys:');
      out(`  ${JSON.stringify({ [key.keyId]: key.publicKey })}`);
      out(`then sign decisions with: warden approve <run> <approval> --as <you> --key ${opts.out}`);
    });
}
