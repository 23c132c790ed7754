import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { AuditEvent, AuditEventType } from '../governance';
import { checkSeq, StoreError, toJson } from './rows';
import type { MessageRow, RunStore } from './run-store';
import { postgresFleetIndexSql, postgresFleetQueries } from './fleet-queries';
import { postgresKillSwitchSql, postgresKillSwitches } from './kill-switches';
import { postgresQuotaLedger, postgresQuotaSql } from './quota-ledger-postgres';

/** How the PostgreSQL run store connects and where its tables live. */
export interface PostgresStoreOptions {
  /** Connections in the pool (default 10). Each worker process holds its own pool; keep workers × pool size under the server's `max_connections`. */
  poolSize?: number;
  /** The schema that holds the tables (default `public`); created if missing. Lets several Warden deployments share one database. */
  schema?: string;
}

/** Whether `location` names a PostgreSQL server (`postgres://` or `postgresql://`) rather than a SQLite file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/**
 * A store location fit for logs and error messages: a PostgreSQL URL with its password (and any
 * `password` parameter) replaced by `***`; a file path as it is. An unparsable URL shows only its scheme.
 */
export function redactStoreLocation(location: string): string {
  if (!isPostgresUrl(location)) return location;
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return `${location.slice(0, location.indexOf(':'))}://(unparsable URL)`;
  }
  if (url.password) url.password = '***';
  for (const key of [...url.searchParams.keys()]) if (key.toLowerCase() === 'password') url.searchParams.set(key, '***');
  return url.toString();
}

function describeConfig(config: pg.PoolConfig): string {
  if (config.connectionString) return redactStoreLocation(config.connectionString);
  const host = typeof config.host === 'string' ? config.host : 'localhost';
  return `postgres://${config.user ? `${config.user}@` : ''}${host}${config.port ? `:${config.port}` : ''}/${config.database ?? ''}`;
}

// Each entry runs once, in order, inside the migration transaction; `version` is its position + 1.
// Append new entries; never edit one that has shipped (workers of the old version may still read the tables).
// `json`, not `jsonb`: it keeps the exact text (as the SQLite store does) and accepts `\u0000`, which jsonb refuses.
const MIGRATIONS: readonly { description: string; sql: (schema: string) => string }[] = [
  {
    description: 'messages, audit events, applied policies',
    sql: (s) => `
      CREATE TABLE ${s}.messages (
        run_id text NOT NULL,
        seq bigint NOT NULL CHECK (seq >= 0),
        body json NOT NULL,
        PRIMARY KEY (run_id, seq)
      );
      CREATE TABLE ${s}.audit_events (
        run_id text NOT NULL,
        seq bigint NOT NULL CHECK (seq >= 0),
        at text NOT NULL,
        type text NOT NULL,
        data json NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL,
        PRIMARY KEY (run_id, seq)
      );
      CREATE TABLE ${s}.applied_policies (
        agent text PRIMARY KEY,
        policy json NOT NULL,
        version text NOT NULL,
        applied_at text NOT NULL,
        source text NOT NULL
      );`,
  },
  {
    description: 'run claims and the seal key',
    sql: (s) => `
      CREATE TABLE ${s}.run_claims (
        run_id text PRIMARY KEY,
        execution text NOT NULL,
        claimed_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE ${s}.secrets (
        name text PRIMARY KEY,
        value text NOT NULL
      );`,
  },
  {
    description: "the console's time index on audit events, agents' kill switches",
    sql: (s) => postgresFleetIndexSql(s) + postgresKillSwitchSql(s),
  },
  {
    description: 'quota reservations and rate-limit slots',
    sql: (s) => postgresQuotaSql(s),
  },
];

/** The schema version this code writes; a database at a later version is refused. */
export const POSTGRES_SCHEMA_VERSION = MIGRATIONS.length;

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The schema version recorded in `schema`, 0 where there is no migrations table yet. */
async function schemaVersion(client: pg.PoolClient, schema: string): Promise<number> {
  const { rows } = await client.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [`"${schema}".warden_schema_migrations`]);
  if (!rows[0]?.present) return 0;
  const version = await client.query<{ version: number | null }>(`SELECT max(version) AS version FROM "${schema}".warden_schema_migrations`);
  return version.rows[0]?.version ?? 0;
}

function checkNotNewer(version: number): void {
  if (version > POSTGRES_SCHEMA_VERSION) throw new StoreError(`schema version ${version} is newer than this Warden understands (${POSTGRES_SCHEMA_VERSION})`);
}

/**
 * Brings the schema to `POSTGRES_SCHEMA_VERSION`. An up-to-date schema is only read: a worker's
 * database user needs no DDL rights once the tables exist. Otherwise the migrations run in one
 * transaction under an advisory lock, so workers opening a new database at once migrate it once.
 */
async function migrate(pool: pg.Pool, schema: string): Promise<void> {
  const s = `"${schema}"`;
  const client = await pool.connect();
  try {
    const seen = await schemaVersion(client, schema);
    checkNotNewer(seen);
    if (seen === POSTGRES_SCHEMA_VERSION) return;
    await client.query('BEGIN');
    // Concurrent CREATE ... IF NOT EXISTS can still collide in the catalog; the lock serialises openers.
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('warden.run_store.' || $1::text))`, [schema]);
    const { rows } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (rows.length === 0) await client.query(`CREATE SCHEMA ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.warden_schema_migrations (
      version integer PRIMARY KEY,
      description text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    // Read again under the lock: another opener may have migrated while this one waited.
    const current = await schemaVersion(client, schema);
    checkNotNewer(current);
    for (const [i, migration] of MIGRATIONS.entries()) {
      const version = i + 1;
      if (version <= current) continue;
      await client.query(migration.sql(s));
      await client.query(`INSERT INTO ${s}.warden_schema_migrations (version, description) VALUES ($1, $2)`, [version, migration.description]);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Keeps one row per seq, sorted: the first for `ignore` (as INSERT OR IGNORE does), the last for `replace`. */
function uniqueBySeq<T extends { seq: number }>(rows: readonly T[], keep: 'first' | 'last'): T[] {
  const bySeq = new Map<number, T>();
  for (const row of rows) if (keep === 'last' || !bySeq.has(row.seq)) bySeq.set(row.seq, row);
  // Ascending seq: two workers appending overlapping batches take row locks in the same order and cannot deadlock.
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/**
 * Opens the PostgreSQL run store: a connection pool, and the tables created or migrated (once,
 * under an advisory lock, so any number of workers may open it at the same moment).
 * Same rows and semantics as `createSqliteStore`.
 *
 * Use it when workers run on more than one machine, or the run store must outlive a host. `target`
 * is a `postgres://` URL or a `pg` pool configuration; a password in it never appears in an error.
 */
export async function createPostgresStore(target: string | pg.PoolConfig, options: PostgresStoreOptions = {}): Promise<RunStore> {
  const config: pg.PoolConfig = typeof target === 'string' ? { connectionString: target } : { ...target };
  const where = describeConfig(config);
  const schema = options.schema ?? 'public';
  if (!SCHEMA_NAME.test(schema)) throw new StoreError(`cannot open run store ${where}: schema "${schema}" must match ${SCHEMA_NAME.source}`);
  const poolSize = options.poolSize ?? config.max ?? 10;
  if (!Number.isSafeInteger(poolSize) || poolSize < 1) throw new StoreError(`cannot open run store ${where}: poolSize must be a positive integer, got ${String(poolSize)}`);

  // A connect timeout, so an unreachable server fails the open (or the activity, which Temporal retries) instead of hanging it.
  // Required here, not imported: every user of the store module (SQLite too) would load the driver.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Pool } = require('pg') as typeof pg;
  const pool = new Pool({ ...config, max: poolSize, connectionTimeoutMillis: config.connectionTimeoutMillis ?? 10_000, application_name: config.application_name ?? 'warden' });
  // An idle connection the server drops emits 'error' on the pool; unhandled, it would end the process.
  // The pool discards that connection and the next query opens another, failing there if the server is gone.
  pool.on('error', () => undefined);
  const fail = (err: unknown, doing: string): StoreError =>
    StoreError.isInstance(err) ? err : new StoreError(`run store ${where}: ${doing}: ${(err as Error).message}`, { cause: err });

  try {
    await migrate(pool, schema);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new StoreError(`cannot open run store ${where}: ${(err as Error).message}`, { cause: err });
  }

  const s = `"${schema}"`;
  let closed: Promise<void> | null = null;
  let sealKey: string | undefined;

  async function query<R extends pg.QueryResultRow>(doing: string, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    if (closed) throw new StoreError(`run store ${where} is closed: cannot ${doing}`);
    try {
      return await pool.query<R>(text, values);
    } catch (err) {
      throw fail(err, doing);
    }
  }

  return {
    ...postgresFleetQueries(query, s),
    ...postgresKillSwitches(query, s),
    ...postgresQuotaLedger(query, () => pool.connect(), s),
    async appendMessages(runId: string, rows: readonly MessageRow[], mode: 'ignore' | 'replace' = 'ignore'): Promise<void> {
      const encoded = rows.map((row) => {
        checkSeq(row.seq, `run ${runId} message`);
        return { seq: row.seq, body: toJson(row.message, `run ${runId} message ${row.seq}`) };
      });
      const unique = uniqueBySeq(encoded, mode === 'replace' ? 'last' : 'first');
      if (unique.length === 0) return;
      // One statement per batch: it lands whole or not at all, never a prefix with a gap after it.
      await query(
        `append messages of run ${runId}`,
        `INSERT INTO ${s}.messages (run_id, seq, body)
         SELECT $1, t.seq, t.body::json FROM unnest($2::bigint[], $3::text[]) AS t(seq, body)
         ON CONFLICT (run_id, seq) DO ${mode === 'replace' ? 'UPDATE SET body = EXCLUDED.body' : 'NOTHING'}`,
        [runId, unique.map((r) => r.seq), unique.map((r) => r.body)],
      );
    },

    async readMessages(runId: string, toSeq: number, fromSeq = 0): Promise<unknown[]> {
      checkSeq(toSeq, `run ${runId} readMessages`);
      checkSeq(fromSeq, `run ${runId} readMessages`);
      const { rows } = await query<{ seq: string; body: string }>(
        `read messages of run ${runId}`,
        `SELECT seq, body::text AS body FROM ${s}.messages WHERE run_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq`,
        [runId, fromSeq, toSeq],
      );
      const messages: unknown[] = [];
      for (const [i, row] of rows.entries()) {
        if (Number(row.seq) !== fromSeq + i) throw new StoreError(`run ${runId}: message ${fromSeq + i} is missing (reading messages [${fromSeq}, ${toSeq}))`);
        messages.push(JSON.parse(row.body));
      }
      if (fromSeq + rows.length < toSeq) throw new StoreError(`run ${runId}: message ${fromSeq + rows.length} is missing (reading messages [${fromSeq}, ${toSeq}))`);
      return messages;
    },

    async appendAudit(runId: string, events: readonly AuditEvent[]): Promise<void> {
      const encoded = events.map((e) => {
        checkSeq(e.seq, `run ${runId} audit event`);
        return { ...e, json: toJson(e.data, `run ${runId} audit event ${e.seq} data`) };
      });
      const unique = uniqueBySeq(encoded, 'first');
      if (unique.length === 0) return;
      // DO NOTHING: a stored event is never rewritten, a retried activity's copy is dropped.
      await query(
        `append audit events of run ${runId}`,
        `INSERT INTO ${s}.audit_events (run_id, seq, at, type, data, prev_hash, hash)
         SELECT $1, t.seq, t.at, t.type, t.data::json, t.prev_hash, t.hash
         FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) AS t(seq, at, type, data, prev_hash, hash)
         ON CONFLICT (run_id, seq) DO NOTHING`,
        [runId, unique.map((e) => e.seq), unique.map((e) => e.at), unique.map((e) => e.type), unique.map((e) => e.json), unique.map((e) => e.prevHash), unique.map((e) => e.hash)],
      );
    },

    async readAudit(runId: string): Promise<AuditEvent[]> {
      const { rows } = await query<{ seq: string; at: string; type: string; data: string; prev_hash: string; hash: string }>(
        `read audit events of run ${runId}`,
        `SELECT seq, at, type, data::text AS data, prev_hash, hash FROM ${s}.audit_events WHERE run_id = $1 ORDER BY seq`,
        [runId],
      );
      return rows.map((row) => ({
        seq: Number(row.seq),
        at: row.at,
        type: row.type as AuditEventType,
        data: JSON.parse(row.data) as Record<string, unknown>,
        prevHash: row.prev_hash,
        hash: row.hash,
      }));
    },

    async getAppliedPolicy(agent: string) {
      const { rows } = await query<{ policy: string; version: string; applied_at: string; source: string }>(
        `read the applied policy of agent ${agent}`,
        `SELECT policy::text AS policy, version, applied_at, source FROM ${s}.applied_policies WHERE agent = $1`,
        [agent],
      );
      const row = rows[0];
      if (!row) return null;
      return { policy: JSON.parse(row.policy) as unknown, version: row.version, appliedAt: row.applied_at, source: row.source };
    },

    async setAppliedPolicy(agent: string, applied: { policy: unknown; version: string; source: string }): Promise<void> {
      await query(
        `apply a policy to agent ${agent}`,
        `INSERT INTO ${s}.applied_policies (agent, policy, version, applied_at, source) VALUES ($1, $2::json, $3, $4, $5)
         ON CONFLICT (agent) DO UPDATE SET policy = EXCLUDED.policy, version = EXCLUDED.version, applied_at = EXCLUDED.applied_at, source = EXCLUDED.source`,
        [agent, toJson(applied.policy, `policy for agent ${agent}`), applied.version, new Date().toISOString(), applied.source],
      );
    },

    async listAppliedPolicies() {
      // COLLATE "C": byte order, as SQLite sorts, whatever the database's locale.
      const { rows } = await query<{ agent: string; policy: string; version: string; applied_at: string; source: string }>(
        'list applied policies',
        `SELECT agent, policy::text AS policy, version, applied_at, source FROM ${s}.applied_policies ORDER BY agent COLLATE "C"`,
        [],
      );
      return rows.map((row) => ({ agent: row.agent, policy: JSON.parse(row.policy) as unknown, version: row.version, appliedAt: row.applied_at, source: row.source }));
    },

    async removeAppliedPolicy(agent: string): Promise<boolean> {
      const result = await query(`remove the applied policy of agent ${agent}`, `DELETE FROM ${s}.applied_policies WHERE agent = $1`, [agent]);
      return (result.rowCount ?? 0) > 0;
    },

    async claimRun(runId: string, execution: string): Promise<string> {
      // One statement: of two workers claiming at once, one inserts and both read the winner.
      const { rows } = await query<{ execution: string }>(
        `claim run ${runId}`,
        `WITH ins AS (INSERT INTO ${s}.run_claims (run_id, execution) VALUES ($1, $2) ON CONFLICT (run_id) DO NOTHING RETURNING execution)
         SELECT execution FROM ins UNION ALL SELECT execution FROM ${s}.run_claims WHERE run_id = $1 LIMIT 1`,
        [runId, execution],
      );
      return rows[0]?.execution ?? execution;
    },

    async sealKey(): Promise<string> {
      if (sealKey === undefined) {
        await query('make the seal key', `INSERT INTO ${s}.secrets (name, value) VALUES ('seal-key', $1) ON CONFLICT (name) DO NOTHING`, [randomBytes(32).toString('hex')]);
        const { rows } = await query<{ value: string }>('read the seal key', `SELECT value FROM ${s}.secrets WHERE name = 'seal-key'`, []);
        sealKey = rows[0]?.value;
        if (!sealKey) throw new StoreError(`run store ${where} has no seal key and could not make one`);
      }
      return sealKey;
    },

    async close(): Promise<void> {
      closed ??= pool.end();
      await closed;
    },
  };
}
