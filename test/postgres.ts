/**
 * A real PostgreSQL server for the tests that need one: initdb in a temporary directory, trust
 * authentication for one test user, listening on 127.0.0.1 at a free port with its Unix socket in
 * the same directory. Where the binaries are missing, the suites that ask for it are skipped with a
 * warning that says what to install.
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePorts } from '../src/dev-server/free-port';
import { findPostgresBin, postgresRunAs, postgresUnavailable } from '../scripts/postgres-binaries';

const TEST_USER = 'warden_test';

export interface PostgresServer {
  host: string;
  port: number;
  user: string;
  /** A URL for `database` as the test user; a password, if given, is ignored by the server (trust) but proves redaction. */
  url(database: string, password?: string): string;
  /** Creates an empty database with a fresh name and returns its URL. */
  createDatabase(prefix?: string): Promise<string>;
  stop(): Promise<void>;
}

/** One port the OS reports free on 127.0.0.1. */
const freePort = async (): Promise<number> => (await freePorts(1))[0] ?? 0;

function run(command: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  const [file, ...args] = command;
  return new Promise((resolve, reject) => {
    execFile(file!, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** Starts a throwaway server. Call `stop()` at the end: it stops the server and removes its directory. */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = findPostgresBin();
  const as = postgresRunAs();
  if (!bin || typeof as === 'string') throw new Error(postgresUnavailable());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-pg-'));
  if (as.uid !== undefined && as.gid !== undefined) chownSync(dir, as.uid, as.gid);
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  const host = '127.0.0.1';
  let started = false;
  try {
    await run([...as.prefix, path.join(bin, 'initdb'), '-D', data, '-U', TEST_USER, '--auth=trust', '--no-locale', '-E', 'UTF8', '--no-sync'], 60_000);
    // The port is free when asked; another process may take it before the server binds, so try a few.
    let port = 0;
    for (let attempt = 1; !started; attempt++) {
      port = await freePort();
      // fsync off: a test server's data is thrown away; it makes migrations and appends several times faster.
      const opts = `-c listen_addresses=${host} -p ${port} -k ${dir} -c fsync=off -c max_connections=100`;
      try {
        await run([...as.prefix, path.join(bin, 'pg_ctl'), '-D', data, '-l', log, '-w', '-t', '60', '-o', opts, 'start'], 90_000);
        started = true;
      } catch (err) {
        if (attempt >= 3) throw new Error(`${(err as Error).message}\n${existsSync(log) ? readFileSync(log, 'utf8') : ''}`);
      }
    }
    const url = (database: string, password?: string) =>
      `postgres://${TEST_USER}${password ? `:${encodeURIComponent(password)}` : ''}@${host}:${port}/${encodeURIComponent(database)}`;
    let stopped = false;
    return {
      host,
      port,
      user: TEST_USER,
      url,
      async createDatabase(prefix = 'warden') {
        const name = `${prefix}_${Math.random().toString(36).slice(2, 10)}`;
        const admin = new pg.Client({ connectionString: url('postgres') });
        await admin.connect();
        try {
          await admin.query(`CREATE DATABASE "${name}"`);
        } finally {
          await admin.end();
        }
        return url(name);
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        try {
          await run([...as.prefix, path.join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop'], 60_000);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    if (started) await run([...as.prefix, path.join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop'], 60_000).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * `describe` with a PostgreSQL server started before the suite and stopped after it; `server()`
 * returns it inside tests and hooks. Where PostgreSQL is unavailable the suite is skipped, with a
 * warning saying why and what to install.
 */
export function describeWithPostgres(name: string, body: (server: () => PostgresServer) => void): void {
  const unavailable = postgresUnavailable();
  if (unavailable) {
    console.warn(`skipping "${name}": ${unavailable}`);
    describe.skip(name, () =>
      body(() => {
        throw new Error(unavailable);
      }),
    );
    return;
  }
  describe(name, () => {
    let current: PostgresServer | undefined;
    beforeAll(async () => {
      current = await startPostgres();
    }, 120_000);
    body(() => {
      if (!current) throw new Error('the PostgreSQL server did not start (see beforeAll)');
      return current;
    });
    // Declared after the body's own hooks, so it runs after them (jest-circus runs afterAll hooks in
    // declaration order): the suite closes its pools before the server goes away.
    afterAll(async () => {
      await current?.stop();
    });
  });
}
