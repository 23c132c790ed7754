import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Authenticator } from '../../approvals/auth/authenticator';
import { loadUsersFile, localUsersAuthenticator } from '../../approvals/auth/local-users';
import { InboxConfigError, createInboxServer, type InboxServer, type InboxServerOptions } from '../../approvals/inbox/server';
import { wardenHome } from '../context';
import { CliError } from '../cli-errors';

/** The users file `warden dev` creates, where `warden inbox` looks when given no sign-in flags. */
export function devUsersFile(): string {
  return path.join(wardenHome(), 'users.yaml');
}

/** Form login against a users file; the error names the file and what is wrong with it. */
export function usersAuthenticator(file: string): { auth: Authenticator; count: number } {
  if (!existsSync(file)) throw new CliError(`users file ${file} does not exist (its format: examples/users.example.yaml)`);
  try {
    const users = loadUsersFile(file);
    return { auth: localUsersAuthenticator(users), count: users.length };
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err));
  }
}

/** Starts the inbox; a port in use is a one-line error that names the flag to change. */
export async function listenInbox(options: InboxServerOptions, flag = '--port'): Promise<InboxServer> {
  try {
    return await createInboxServer(options);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'EADDRINUSE') throw new CliError(`port ${options.port ?? 0} on ${options.host ?? '127.0.0.1'} is in use; pick another with ${flag}`);
    if (code === 'EADDRNOTAVAIL') throw new CliError(`cannot listen on ${options.host ?? '127.0.0.1'}: no such address on this machine`);
    if (InboxConfigError.isInstance(err)) throw new CliError(err.message);
    throw err;
  }
}
