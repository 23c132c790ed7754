import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { AuditEvent, AuditEventType } from '../governance';
import type { MessageRow, RunStore } from './run-store';
import { sqliteQuotaLedger } from './quota-ledger-sqlite';
import { checkSeq, StoreError, toJson } from './rows';
import { sqliteFleetQueries } from './fleet-queries';
import { sqliteKillSwitches } from './kill-switches';

export { StoreError } from './rows';

/**
 * Where the embedded store lives unless the caller says otherwise:
 * `$WARDEN_DB`, else `$WARDEN_HOME/warden.db`, else `.warden/warden.db` under the working directory.
 * Use it in the worker and the CLI so both open the same file.
 */
export function defaultStorePath(): string {
  return process.env.WARDEN_DB ?? path.join(process.env.WARDEN_HOME ?? '.warden', 'warden.db');
}

// Bumped when the tables change, so a later version can migrate an older file instead of guessing.
const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  run_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_events (
  run_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  at TEXT NOT NULL,
  type TEXT NOT NULL,
  data TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS applied_policies (
  agent TEXT PRIMARY KEY NOT NULL,
  policy TEXT NOT NULL,
  version TEXT NOT NULL,
  applied_at TEXT NOT NULL,
  source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_claims (
  run_id TEXT PRIMARY KEY NOT NULL,
  execution TEXT NOT NULL,
  claimed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (
  name TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
);
`;

interface MessageDbRow {
  seq: number;
  body: string;
}

interface AuditDbRow {
  seq: number;
  at: string;
  type: string;
  data: string;
  prev_hash: string;
  hash: string;
}

interface PolicyDbRow {
  policy: string;
  version: string;
  applied_at: string;
  source: string;
}

// SQLite's companion files; it creates each with the main file's mode, a crash may leave them behind.
const COMPANION_SUFFIXES = ['-wal', '-shm', '-journal'];

/**
 * Makes `file` exist readable by its owner alone before SQLite opens it: the store holds
 * conversations, tool results and audit events. SQLite gives `-wal`/`-shm` the main file's mode,
 * so they follow. A directory this creates is 0700; an existing one is left as it is (it may be
 * the working directory). An existing file more open than 0600 is narrowed without a word: it is
 * the owner's own file.
 */
function createPrivateFile(file: string): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(file, 'wx', 0o600));
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  for (const f of [file, ...COMPANION_SUFFIXES.map((suffix) => file + suffix)]) {
    let mode: number;
    try {
      mode = statSync(f).mode & 0o777;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if ((mode & ~0o600) !== 0) chmodSync(f, mode & 0o600);
  }
}

/**
 * Opens (or creates) the embedded SQLite run store at `file`, creating parent directories and tables.
 * The file and its `-wal`/`-shm` companions are private to the owner (0600), a directory it creates 0700.
 *
 * Use it for local runs, `warden dev` and tests; several processes (worker, CLI) may open the same
 * file. Use a PostgreSQL store when workers run on more than one machine.
 */
export function createSqliteStore(file: string): RunStore {
  let db: Database.Database;
  try {
    if (file !== ':memory:' && file !== '') createPrivateFile(file);
    db = new Database(file);
    // WAL lets the CLI read while a worker writes; busy_timeout makes a second writer wait instead of failing.
    // synchronous stays FULL: an activity that returned must not lose its rows on power loss, Temporal will not retry it.
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new StoreError(`schema version ${version} is newer than this Warden understands (${SCHEMA_VERSION})`);
    }
    if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  } catch (err) {
    throw new StoreError(`cannot open run store ${file}: ${(err as Error).message}`, { cause: err });
  }

  const insertMessageIgnore = db.prepare<[string, number, string]>('INSERT OR IGNORE INTO messages (run_id, seq, body) VALUES (?, ?, ?)');
  const insertMessageReplace = db.prepare<[string, number, string]>('INSERT OR REPLACE INTO messages (run_id, seq, body) VALUES (?, ?, ?)');
  const selectMessages = db.prepare<[string, number, number], MessageDbRow>('SELECT seq, body FROM messages WHERE run_id = ? AND seq >= ? AND seq < ? ORDER BY seq');
  const insertAudit = db.prepare<[string, number, string, string, string, string, string]>(
    'INSERT OR IGNORE INTO audit_events (run_id, seq, at, type, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const selectAudit = db.prepare<[string], AuditDbRow>('SELECT seq, at, type, data, prev_hash, hash FROM audit_events WHERE run_id = ? ORDER BY seq');
  const selectPolicy = db.prepare<[string], PolicyDbRow>('SELECT policy, version, applied_at, source FROM applied_policies WHERE agent = ?');
  const upsertPolicy = db.prepare<[string, string, string, string, string]>(
    'INSERT OR REPLACE INTO applied_policies (agent, policy, version, applied_at, source) VALUES (?, ?, ?, ?, ?)',
  );
  const selectPolicies = db.prepare<[], PolicyDbRow & { agent: string }>('SELECT agent, policy, version, applied_at, source FROM applied_policies ORDER BY agent');
  const deletePolicy = db.prepare<[string]>('DELETE FROM applied_policies WHERE agent = ?');
  const insertClaim = db.prepare<[string, string, string]>('INSERT OR IGNORE INTO run_claims (run_id, execution, claimed_at) VALUES (?, ?, ?)');
  const selectClaim = db.prepare<[string], { execution: string }>('SELECT execution FROM run_claims WHERE run_id = ?');
  const insertSecret = db.prepare<[string, string]>('INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)');
  const selectSecret = db.prepare<[string], { value: string }>('SELECT value FROM secrets WHERE name = ?');
  let sealKey: string | undefined;

  // One transaction per batch: a crash mid-append leaves none of the batch, never a prefix with a gap after it.
  const appendMessagesTx = db.transaction((runId: string, rows: readonly { seq: number; body: string }[], replace: boolean) => {
    const stmt = replace ? insertMessageReplace : insertMessageIgnore;
    for (const row of rows) stmt.run(runId, row.seq, row.body);
  });
  const appendAuditTx = db.transaction((runId: string, events: readonly AuditEvent[], data: readonly string[]) => {
    events.forEach((e, i) => insertAudit.run(runId, e.seq, e.at, e.type, data[i] ?? '{}', e.prevHash, e.hash));
  });

  const fleet = sqliteFleetQueries(db);
  const killSwitches = sqliteKillSwitches(db);
  const quotaLedger = sqliteQuotaLedger(db);

  return {
    ...fleet,
    ...killSwitches,
    ...quotaLedger,
    async appendMessages(runId: string, rows: readonly MessageRow[], mode: 'ignore' | 'replace' = 'ignore'): Promise<void> {
      const encoded = rows.map((row) => {
        checkSeq(row.seq, `run ${runId} message`);
        return { seq: row.seq, body: toJson(row.message, `run ${runId} message ${row.seq}`) };
      });
      appendMessagesTx(runId, encoded, mode === 'replace');
    },

    async readMessages(runId: string, toSeq: number, fromSeq = 0): Promise<unknown[]> {
      checkSeq(toSeq, `run ${runId} readMessages`);
      checkSeq(fromSeq, `run ${runId} readMessages`);
      const rows = selectMessages.all(runId, fromSeq, toSeq);
      const messages: unknown[] = [];
      for (const [i, row] of rows.entries()) {
        if (row.seq !== fromSeq + i) throw new StoreError(`run ${runId}: message ${fromSeq + i} is missing (reading messages [${fromSeq}, ${toSeq}))`);
        messages.push(JSON.parse(row.body));
      }
      if (fromSeq + rows.length < toSeq) throw new StoreError(`run ${runId}: message ${fromSeq + rows.length} is missing (reading messages [${fromSeq}, ${toSeq}))`);
      return messages;
    },

    async appendAudit(runId: string, events: readonly AuditEvent[]): Promise<void> {
      const data = events.map((e) => {
        checkSeq(e.seq, `run ${runId} audit event`);
        return toJson(e.data, `run ${runId} audit event ${e.seq} data`);
      });
      appendAuditTx(runId, events, data);
    },

    async readAudit(runId: string): Promise<AuditEvent[]> {
      return selectAudit.all(runId).map((row) => ({
        seq: row.seq,
        at: row.at,
        type: row.type as AuditEventType,
        data: JSON.parse(row.data) as Record<string, unknown>,
        prevHash: row.prev_hash,
        hash: row.hash,
      }));
    },

    async getAppliedPolicy(agent: string) {
      const row = selectPolicy.get(agent);
      if (!row) return null;
      return { policy: JSON.parse(row.policy) as unknown, version: row.version, appliedAt: row.applied_at, source: row.source };
    },

    async setAppliedPolicy(agent: string, applied: { policy: unknown; version: string; source: string }): Promise<void> {
      upsertPolicy.run(agent, toJson(applied.policy, `policy for agent ${agent}`), applied.version, new Date().toISOString(), applied.source);
    },

    async listAppliedPolicies() {
      return selectPolicies.all().map((row) => ({ agent: row.agent, policy: JSON.parse(row.policy) as unknown, version: row.version, appliedAt: row.applied_at, source: row.source }));
    },

    async removeAppliedPolicy(agent: string): Promise<boolean> {
      return deletePolicy.run(agent).changes > 0;
    },

    async claimRun(runId: string, execution: string): Promise<string> {
      insertClaim.run(runId, execution, new Date().toISOString());
      return selectClaim.get(runId)?.execution ?? execution;
    },

    async sealKey(): Promise<string> {
      if (sealKey === undefined) {
        // Whoever inserts first wins; every worker then reads the same key.
        insertSecret.run('seal-key', randomBytes(32).toString('hex'));
        sealKey = selectSecret.get('seal-key')?.value;
        if (!sealKey) throw new StoreError('the run store has no seal key and could not make one');
      }
      return sealKey;
    },

    async close(): Promise<void> {
      if (db.open) db.close();
    },
  };
}
