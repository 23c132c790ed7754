import type Database from 'better-sqlite3';
import type { PostgresQuery } from './fleet-queries';
import { StoreError } from './rows';

/**
 * An agent's kill switch: while it is engaged, the prepare activity refuses every new run (and
 * every continue-as-new) of the agent, with the reason given, and the worker's `verifyOperator`
 * refuses every resume of its runs, however signed. Each engage and lift is a row of
 * its own, never rewritten: the switch's state is its newest row, and the rows are its record
 * (who, when, why).
 */
export interface KillSwitchRecord {
  agent: string;
  engaged: boolean;
  by: string;
  reason: string;
  at: string;
}

export interface KillSwitches {
  /** The agent's switch as it stands (its newest record), or null when it was never engaged. */
  killSwitch(agent: string): Promise<KillSwitchRecord | null>;
  /** Engages (`engaged: true`) or lifts the agent's switch, recorded with who did it and why. */
  setKillSwitch(agent: string, change: { engaged: boolean; by: string; reason: string }): Promise<KillSwitchRecord>;
  /** Every agent's switch as it stands, engaged or lifted, by agent. */
  listKillSwitches(): Promise<KillSwitchRecord[]>;
  /** One agent's records, newest first. */
  killSwitchHistory(agent: string): Promise<KillSwitchRecord[]>;
}

const SQLITE_TABLE = `CREATE TABLE IF NOT EXISTS kill_switches (
  agent TEXT NOT NULL,
  at TEXT NOT NULL,
  seq INTEGER NOT NULL,
  engaged INTEGER NOT NULL,
  by TEXT NOT NULL,
  reason TEXT NOT NULL,
  PRIMARY KEY (agent, seq)
)`;

/** The table the PostgreSQL store's migrations create (`s`: the quoted schema). */
export function postgresKillSwitchSql(s: string): string {
  return `CREATE TABLE ${s}.kill_switches (
    agent text NOT NULL,
    at text NOT NULL,
    seq bigint NOT NULL,
    engaged boolean NOT NULL,
    by text NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (agent, seq)
  );`;
}

function checkChange(agent: string, change: { engaged: boolean; by: string; reason: string }): void {
  if (!agent.trim()) throw new StoreError('a kill switch needs an agent');
  if (!change.by.trim()) throw new StoreError(`the kill switch of agent ${agent}: say who ${change.engaged ? 'engages' : 'lifts'} it`);
  if (typeof change.engaged !== 'boolean') throw new StoreError(`the kill switch of agent ${agent}: engaged must be true or false`);
}

type Row = { agent: string; at: string; engaged: number | boolean; by: string; reason: string };
const record = (r: Row): KillSwitchRecord => ({ agent: r.agent, engaged: Boolean(r.engaged), by: r.by, reason: r.reason, at: r.at });

export function sqliteKillSwitches(db: Database.Database): KillSwitches {
  db.exec(SQLITE_TABLE);
  const latest = db.prepare<[string], Row>('SELECT agent, at, engaged, by, reason FROM kill_switches WHERE agent = ? ORDER BY seq DESC LIMIT 1');
  const history = db.prepare<[string], Row>('SELECT agent, at, engaged, by, reason FROM kill_switches WHERE agent = ? ORDER BY seq DESC');
  const all = db.prepare<[], Row>(
    'SELECT k.agent, k.at, k.engaged, k.by, k.reason FROM kill_switches k WHERE k.seq = (SELECT max(seq) FROM kill_switches m WHERE m.agent = k.agent) ORDER BY k.agent',
  );
  const insert = db.prepare<[{ agent: string; at: string; engaged: number; by: string; reason: string }]>(
    'INSERT INTO kill_switches (agent, at, seq, engaged, by, reason) VALUES (@agent, @at, (SELECT coalesce(max(seq), 0) + 1 FROM kill_switches WHERE agent = @agent), @engaged, @by, @reason)',
  );
  return {
    async killSwitch(agent) {
      const row = latest.get(agent);
      return row ? record(row) : null;
    },
    async setKillSwitch(agent, change) {
      checkChange(agent, change);
      const at = new Date().toISOString();
      insert.run({ agent, at, engaged: change.engaged ? 1 : 0, by: change.by, reason: change.reason });
      return { agent, engaged: change.engaged, by: change.by, reason: change.reason, at };
    },
    async listKillSwitches() {
      return all.all().map(record);
    },
    async killSwitchHistory(agent) {
      return history.all(agent).map(record);
    },
  };
}

export function postgresKillSwitches(query: PostgresQuery, s: string): KillSwitches {
  const columns = 'agent, at, engaged, by, reason';
  return {
    async killSwitch(agent) {
      const { rows } = await query<Row>(`read the kill switch of agent ${agent}`, `SELECT ${columns} FROM ${s}.kill_switches WHERE agent = $1 ORDER BY seq DESC LIMIT 1`, [agent]);
      return rows[0] ? record(rows[0]) : null;
    },
    async setKillSwitch(agent, change) {
      checkChange(agent, change);
      const at = new Date().toISOString();
      // A concurrent change to the same agent collides on (agent, seq) and fails rather than interleaving.
      await query(
        `${change.engaged ? 'engage' : 'lift'} the kill switch of agent ${agent}`,
        `INSERT INTO ${s}.kill_switches (agent, at, seq, engaged, by, reason)
         VALUES ($1, $2, (SELECT coalesce(max(seq), 0) + 1 FROM ${s}.kill_switches WHERE agent = $1), $3, $4, $5)`,
        [agent, at, change.engaged, change.by, change.reason],
      );
      return { agent, engaged: change.engaged, by: change.by, reason: change.reason, at };
    },
    async listKillSwitches() {
      const { rows } = await query<Row>(
        'list kill switches',
        `SELECT DISTINCT ON (agent) ${columns} FROM ${s}.kill_switches ORDER BY agent, seq DESC`,
        [],
      );
      // Byte order, as SQLite sorts, whatever the database's locale.
      return rows.map(record).sort((a, b) => (a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0));
    },
    async killSwitchHistory(agent) {
      const { rows } = await query<Row>(`read the kill switch history of agent ${agent}`, `SELECT ${columns} FROM ${s}.kill_switches WHERE agent = $1 ORDER BY seq DESC`, [agent]);
      return rows.map(record);
    },
  };
}
