import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Identity } from '../identity';
import type { PasswordAuthenticator } from './authenticator';
import { hashPassword, isPasswordHash, verifyPassword } from './password';
import { errorMarker, WardenError } from '../../errors';
import { formatZodError } from '../../zod-error';

/** A users file cannot be read or is malformed; the message names the file and the path inside it. */
export class UsersFileError extends WardenError {
  static override readonly marker = errorMarker('UsersFileError');
  override name = 'UsersFileError';
}

/** One person of a local users file. */
export interface LocalUser {
  id: string;
  name?: string;
  /** A `hashPassword` hash, never the password. */
  password: string;
  groups: string[];
}

const usersFileSchema = z.strictObject({
  users: z.array(
    z.strictObject({
      id: z.string().regex(/^[^\s:]+$/, 'must be a user id without spaces or ":" (policies name it as user:<id>)'),
      name: z.string().min(1).optional(),
      password: z.string().refine(isPasswordHash, 'must be a hash made by hashPassword (scrypt$N$r$p$salt$hash), not a password'),
      groups: z.array(z.string().regex(/^[^\s]+$/, 'must be a group name without spaces')).default([]),
    }),
  ),
});

/**
 * Reads a development users file (YAML or JSON): `{ users: [{ id, name, password, groups }] }`
 * with scrypt password hashes. The error names the file and the path inside it.
 */
export function loadUsersFile(file: string): LocalUser[] {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsersFileError(`cannot read users file ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = usersFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new UsersFileError(`users file ${file}: ${formatZodError(parsed.error)}`);
  }
  const seen = new Set<string>();
  for (const user of parsed.data.users) {
    if (seen.has(user.id)) throw new UsersFileError(`users file ${file}: user "${user.id}" is listed twice`);
    seen.add(user.id);
  }
  return parsed.data.users;
}

/**
 * Form login against a local users list (from `loadUsersFile`). For development and demos;
 * use `oidcBearerAuthenticator` where people have accounts at an identity provider.
 */
export function localUsersAuthenticator(users: readonly LocalUser[]): PasswordAuthenticator {
  const byId = new Map(users.map((u) => [u.id, u]));
  // An unknown user costs as much as a wrong password, so timing does not tell which ids exist.
  let decoy: Promise<string> | undefined;
  return {
    kind: 'password',
    async verify(username: string, password: string): Promise<Identity | null> {
      const user = byId.get(username);
      if (!user) {
        decoy ??= hashPassword('decoy password');
        await verifyPassword(password, await decoy);
        return null;
      }
      if (!(await verifyPassword(password, user.password))) return null;
      return { id: user.id, ...(user.name ? { name: user.name } : {}), groups: [...user.groups] };
    },
  };
}
