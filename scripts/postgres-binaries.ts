/**
 * Where PostgreSQL's server binaries are on this machine and as whom they run: shared by the
 * throwaway servers of the tests (test/postgres.ts) and the cluster's (scripts/cluster/cluster.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, name))) return dir;
  }
  return undefined;
}

/** The directory with initdb, pg_ctl and postgres: PATH first, then the newest /usr/lib/postgresql/<version>/bin. */
export function findPostgresBin(): string | undefined {
  const fromPath = onPath('initdb');
  if (fromPath && existsSync(path.join(fromPath, 'pg_ctl'))) return fromPath;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v) && existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : undefined;
}

export interface RunAs {
  /** Prefix for every server command: `runuser -u <user> --` when this process is root (initdb and the server refuse root). */
  prefix: string[];
  uid?: number;
  gid?: number;
}

function uidOf(user: string): { uid: number; gid: number } | undefined {
  const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** As whom the server commands run: this process's user, or as root `postgres` (or `nobody`) through runuser; a string says why they cannot. */
export function postgresRunAs(): RunAs | string {
  if (process.getuid?.() !== 0) return { prefix: [] };
  const runuser = onPath('runuser') ?? (existsSync('/usr/sbin/runuser') ? '/usr/sbin' : undefined);
  if (!runuser) return 'running as root and runuser is missing (initdb and the PostgreSQL server refuse to run as root)';
  for (const user of ['postgres', 'nobody']) {
    const ids = uidOf(user);
    if (ids) return { prefix: [path.join(runuser, 'runuser'), '-u', user, '--'], ...ids };
  }
  return 'running as root and there is no postgres or nobody user to run PostgreSQL as (initdb and the server refuse to run as root)';
}

/** Why no PostgreSQL server can be started here, or undefined if one can. */
export function postgresUnavailable(): string | undefined {
  if (!findPostgresBin()) return 'PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin: apt-get install postgresql';
  const as = postgresRunAs();
  return typeof as === 'string' ? as : undefined;
}
