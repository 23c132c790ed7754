import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { hashPassword } from '../approvals/auth/password';
import { writePrivateFile } from '../private-files';

/**
 * The people of the demo's policies: alice approves refunds, bob gets the escalations and operates
 * runs (the console's operators and policy admins), carol may not approve.
 */
const DEV_USERS = [
  { id: 'alice', name: 'Alice Adams', groups: ['finance'] },
  { id: 'bob', name: 'Bob Brown', groups: ['finance-leads', 'operators', 'policy-admins'] },
  { id: 'carol', name: 'Carol Clark', groups: ['support'] },
] as const;

/**
 * The development users as a key's directory (id → groups): what the development CLI key may
 * assert, so `warden approve --as alice` is finance and `--as anyone-else` is refused.
 */
export function devUserDirectory(): Record<string, string[]> {
  return Object.fromEntries(DEV_USERS.map((u) => [u.id, [...u.groups]]));
}

export interface DevUser {
  id: string;
  groups: string[];
  password: string;
}

export interface DevUsers {
  /** `<home>/users.yaml`: what the inbox signs people in against (password hashes only). */
  usersFile: string;
  /** `<home>/dev-passwords.txt` (mode 0600), or null when the users file was not made here. */
  passwordsFile: string | null;
  /** The users and their passwords when this call created them; null when they existed already. */
  created: DevUser[] | null;
}

/** A password people can type: 16 characters of base64url, 96 random bits. */
function newPassword(): string {
  return randomBytes(12).toString('base64url');
}

/**
 * The web inbox's development users: on first use, `<home>/users.yaml` with alice (finance), bob
 * (finance-leads) and carol (support), each with a random password. The passwords are returned
 * once, to be printed, and kept in plain text in `<home>/dev-passwords.txt` (mode 0600), so someone
 * who started the demo can sign in later. A users file that exists is left as it is: people edit it.
 * Development only; production inboxes sign people in with OIDC.
 */
export async function ensureDevUsers(home: string): Promise<DevUsers> {
  const usersFile = path.join(home, 'users.yaml');
  const passwordsFile = path.join(home, 'dev-passwords.txt');
  if (existsSync(usersFile)) return { usersFile, passwordsFile: existsSync(passwordsFile) ? passwordsFile : null, created: null };

  const users = DEV_USERS.map((u) => ({ ...u, groups: [...u.groups], password: newPassword() }));
  const hashes = await Promise.all(users.map((u) => hashPassword(u.password)));
  // The passwords first: a users file without them would lock everyone out.
  const passwords = [
    '# Passwords of the development users in users.yaml (made by `warden dev` / `warden demo`).',
    '# Delete users.yaml and this file to get new ones.',
    ...users.map((u) => `${u.id}\t${u.password}`),
    '',
  ].join('\n');
  // Both 0600 exactly, in a home made 0700 if it is new, whatever the umask.
  writePrivateFile(passwordsFile, passwords);
  const yaml = toYaml({ users: users.map((u, i) => ({ id: u.id, name: u.name, password: hashes[i], groups: u.groups })) });
  const header = '# Development users of the web inbox (warden dev / warden demo). Passwords: dev-passwords.txt.\n# Format: examples/users.example.yaml. Hash a new password with: echo -n \'pw\' | npx tsx src/approvals/auth/password.ts\n';
  writePrivateFile(usersFile, header + yaml);
  return { usersFile, passwordsFile, created: users.map(({ id, groups, password }) => ({ id, groups, password })) };
}
