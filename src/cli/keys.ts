import { chmodSync, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { createSigningKey, loadKeyring } from '../approvals/signing-keys';
import { createPayloadKeyFile, rotatePayloadKeyFile } from '../codec/payload-keys';
import { writePrivateFile } from '../private-files';
import { normalizeIdentity } from '../governance/signing/identity-folding';
import { parseKeyring, type KeyGrant } from '../governance/signing/keyring';
import { CliError, UsageError } from './cli-errors';
import { out } from './format';

interface GrantOptions {
  channel: string;
  person?: string;
  groups?: string;
  anyIdentity?: boolean;
  roles?: string;
}

interface GenerateOptions extends GrantOptions {
  id: string;
  out: string;
}

interface TrustOptions extends GrantOptions {
  id: string;
  publicKey: string;
}

const ROLES = ['operator', 'policy-admin'] as const;

/** The roles the key may assert (`--roles operator,policy-admin`); none unless asked. */
function rolesOf(opts: GrantOptions): NonNullable<KeyGrant['roles']> | undefined {
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
function peopleOf(opts: GrantOptions): KeyGrant['people'] {
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

  keys
    .command('trust')
    .description('Add a grant to a trusted-keys file (created if missing): a public key and what it may assert; refuses a key id or public key it lists already')
    .argument('<file>', 'the trusted-keys file workers read (WARDEN_TRUSTED_KEYS)')
    .requiredOption('--id <keyId>', 'the key id signatures name, e.g. cli-alice')
    .requiredOption('--public-key <hex>', 'the Ed25519 public key (64 hex characters, as warden keys generate prints it)')
    .option('--channel <name>', 'the channel the key signs for (cli, web, slack)', 'cli')
    .option('--person <id>', "the one person this key speaks for (a person's own CLI key)")
    .option('--groups <list>', 'with --person: the groups that person may assert, comma-separated')
    .option('--any-identity', 'the key may assert any person and groups: only for a channel that authenticates people itself')
    .option('--roles <list>', 'roles the key may assert, comma-separated: operator (resume, rollback), policy-admin (policy apply)')
    .action((file: string, opts: TrustOptions) => {
      const people = peopleOf(opts);
      const roles = rolesOf(opts);
      const channel = opts.channel.trim();
      if (!channel) throw new UsageError('--channel must name a channel (cli, web, slack)');
      const keyId = opts.id.trim();
      const entry = { publicKey: opts.publicKey.trim().toLowerCase(), channel, people, ...(roles && roles.length > 0 ? { roles } : {}) };
      // The grant alone first: a bad public key or id is named before the file is touched.
      try {
        parseKeyring({ [keyId]: entry }, '--id/--public-key');
      } catch (err) {
        throw new UsageError(err instanceof Error ? err.message : String(err));
      }
      const exists = existsSync(file);
      const doc = exists ? readTrustedDoc(file) : {};
      if (Object.hasOwn(doc, keyId)) throw new CliError(`${file} has a key "${keyId}" already; it is not replaced (revoke it with warden keys revoke, and trust the new key under a new id)`);
      const same = Object.entries(doc).find(([, grant]) => typeof grant === 'object' && grant !== null && String((grant as { publicKey?: unknown }).publicKey).toLowerCase() === entry.publicKey);
      if (same) throw new CliError(`${file} trusts this public key already, as "${same[0]}"; one key, one grant`);
      const next = { ...doc, [keyId]: entry };
      parseKeyring(next, file);
      const text = JSON.stringify(next, null, 2) + '\n';
      if (exists) replaceFile(file, text);
      else writePrivateFile(file, text, 'wx');
      const [person] = people === '*' ? ['any person'] : Object.keys(people);
      out(`trusted ${keyId} in ${file}: it may assert ${person ?? 'nobody'} on channel ${channel}${roles && roles.length > 0 ? `, in the role(s) ${roles.join(', ')}` : ''}; workers that read this file count its signatures from their next decision`);
    });

  const payload = keys.command('payload').description('Payload key files: the AES keys workers and clients encrypt run data with (WARDEN_PAYLOAD_KEYS)');
  payload
    .command('init')
    .description('Create a payload key file with one fresh random key (mode 0600); refuses to overwrite a file')
    .argument('<file>', 'where to write it')
    .option('--id <keyId>', 'the key id (default key-<date>-<random>)')
    .action((file: string, opts: { id?: string }) => {
      let keys;
      try {
        keys = createPayloadKeyFile(file, ...(opts.id !== undefined ? [opts.id] : []));
      } catch (err) {
        throw new CliError(err instanceof Error ? err.message : String(err));
      }
      out(`wrote ${file} (mode 0600) with key ${keys.current}; keep it private and backed up: payloads written with it cannot be read without it`);
      out(`give workers and clients the same file: WARDEN_PAYLOAD_KEYS=${file}`);
    });
  payload
    .command('rotate')
    .description('Add a fresh key to a payload key file and make it current; older keys stay, so runs already in history still decrypt')
    .argument('<file>', 'the payload key file')
    .option('--id <keyId>', 'the new key id (default key-<date>-<random>)')
    .action((file: string, opts: { id?: string }) => {
      let keys;
      try {
        keys = rotatePayloadKeyFile(file, ...(opts.id !== undefined ? [opts.id] : []));
      } catch (err) {
        throw new CliError(err instanceof Error ? err.message : String(err));
      }
      const older = Object.keys(keys.keys).filter((k) => k !== keys.current);
      out(`rotated ${file}: new payloads are encrypted with ${keys.current}; ${older.join(', ')} still decrypt what was written with them`);
      out('restart workers and clients (or give them the new file) so they encrypt with the new key; drop an old key only once no history written with it is read');
    });
}
