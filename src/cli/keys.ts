import { chmodSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { createSigningKey, loadKeyring } from '../approvals/signing-keys';
import { normalizeIdentity } from '../governance/signing/identity-folding';
import { parseKeyring, type KeyGrant } from '../governance/signing/keyring';
import { CliError, UsageError } from './cli-errors';
import { out } from './format';

interface GenerateOptions {
  id: string;
  out: string;
  channel: string;
  person?: string;
  groups?: string;
  anyIdentity?: boolean;
  roles?: string;
}

const ROLES = ['operator', 'policy-admin'] as const;

/** The roles the key may assert (`--roles operator,policy-admin`); none unless asked. */
function rolesOf(opts: GenerateOptions): NonNullable<KeyGrant['roles']> | undefined {
  if (opts.roles === undefined) return undefined;
  const roles = parseList(opts.roles);
  const unknown = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (unknown.length > 0) throw new UsageError(`--roles: unknown role(s) ${unknown.join(', ')}; a key may assert ${ROLES.join(', ')}`);
  return roles as NonNullable<KeyGrant['roles']>;
}

function parseList(value?: string): string[] {
  return [
    ...new Set(
      (value ?? '')
        .split(',')
        .map((g) => normalizeIdentity(g))
        .filter(Boolean),
    ),
  ];
}

/**
 * What the new key may assert, from the flags: one person and their groups (a person's own key),
 * or anyone (a channel that authenticates people itself). A key that asserts nobody is useless,
 * and guessing would widen trust, so one of the two is required.
 */
function peopleOf(opts: GenerateOptions): KeyGrant['people'] {
  if (opts.anyIdentity && (opts.person !== undefined || opts.groups !== undefined)) throw new UsageError('--any-identity trusts the channel for every person and group; it takes no --person or --groups');
  if (opts.anyIdentity) return '*';
  if (opts.groups !== undefined && opts.person === undefined) throw new UsageError('--groups needs --person: they are the groups that person may assert');
  if (opts.person === undefined) throw new UsageError('say what the key may assert: --person <id> [--groups a,b] for one person\'s key, or --any-identity for a channel that authenticates people itself');
  const person = normalizeIdentity(opts.person);
  if (!person) throw new UsageError('--person must name someone (it is empty once trimmed)');
  return { [person]: parseList(opts.groups) };
}

/** Writes next to the file and renames over it, so a worker re-reading the keyring never sees half a file. */
function replaceFile(file: string, text: string): void {
  const mode = statSync(file).mode & 0o777;
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, text, { mode });
  chmodSync(temp, mode);
  renameSync(temp, file);
}

function readTrustedDoc(file: string): Record<string, unknown> {
  // Validated whole first: revoking in a file the workers cannot read would change nothing.
  try {
    loadKeyring(file);
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err));
  }
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('Signing keys for approval decisions and run starts, and the trusted-keys file workers read');
  keys
    .command('generate')
    .description('Create an Ed25519 signing key file (mode 0600) and print the grant to add to the trusted-keys file')
    .requiredOption('--id <keyId>', 'key id, e.g. cli-alice')
    .requiredOption('--out <file>', 'where to write the private key file (refuses to overwrite)')
    .option('--channel <name>', 'the channel the key signs for (cli, web, slack)', 'cli')
    .option('--person <id>', 'the one person this key speaks for (a person\'s own CLI key)')
    .option('--groups <list>', 'with --person: the groups that person may assert, comma-separated')
    .option('--any-identity', 'the key may assert any person and groups: only for a channel that authenticates people itself (an inbox behind OIDC)')
    .option('--roles <list>', 'roles the key may assert for its people, comma-separated: operator (resume, rollback), policy-admin (policy apply)')
    .action((opts: GenerateOptions) => {
      const people = peopleOf(opts);
      const roles = rolesOf(opts);
      const channel = opts.channel.trim();
      if (!channel) throw new UsageError('--channel must name a channel (cli, web, slack)');
      let key;
      try {
        key = createSigningKey(opts.out, opts.id);
      } catch (err) {
        throw new CliError(err instanceof Error ? err.message : String(err));
      }
      const grant = { [key.keyId]: { publicKey: key.publicKey, channel, people, ...(roles && roles.length > 0 ? { roles } : {}) } };
      // The line printed must be one the workers accept as it is.
      parseKeyring(grant, 'the printed grant');
      out(`wrote ${opts.out} (key id ${key.keyId}); keep it private`);
      out(`public key: ${key.publicKey}`);
      const [person, groups]: [string, string[]] = people === '*' ? ['<who>', []] : (Object.entries(people)[0] ?? ['<who>', []]);
      out(
        people === '*'
          ? `it may assert any person on channel ${channel}: give it only to a channel that authenticates people itself`
          : `it may assert only ${person} (${groups.length > 0 ? `groups ${groups.join(', ')}` : 'no groups'}), on channel ${channel}`,
      );
      if (roles && roles.length > 0) out(`in the role(s) ${roles.join(', ')}: warden resume, rollback${roles.includes('policy-admin') ? ' and policy apply' : ''} count when signed with it`);
      out('add this grant to the trusted-keys file workers read (WARDEN_TRUSTED_KEYS):');
      out(`  ${JSON.stringify(grant)}`);
      if (channel === 'cli') out(`then sign with: warden approve <run> <approval> --as ${person} --key ${opts.out}`);
    });

  keys
    .command('revoke')
    .description('Mark a key revoked in a trusted-keys file; workers re-read the file, so running runs refuse it at once')
    .argument('<keyId>', 'the key to revoke')
    .option('--trusted <file>', 'the trusted-keys file (default: $WARDEN_TRUSTED_KEYS)')
    .action((keyId: string, opts: { trusted?: string }) => {
      const file = opts.trusted ?? process.env.WARDEN_TRUSTED_KEYS;
      if (!file) throw new UsageError('name the trusted-keys file: --trusted <file> (or set WARDEN_TRUSTED_KEYS)');
      const doc = readTrustedDoc(file);
      const entry = doc[keyId];
      if (typeof entry !== 'object' || entry === null) throw new CliError(`${file} has no key "${keyId}" (it lists ${Object.keys(doc).join(', ') || 'no keys'})`);
      if ((entry as { revoked?: unknown }).revoked === true) return out(`key ${keyId} is already revoked in ${file}`);
      // The entry stays, marked: earlier decisions signed with it can still be explained.
      doc[keyId] = { ...entry, revoked: true };
      parseKeyring(doc, file);
      replaceFile(file, JSON.stringify(doc, null, 2) + '\n');
      out(`revoked ${keyId} in ${file}: workers that read this file refuse its signatures from their next decision`);
    });
}
