import type Database from 'better-sqlite3';
import type pg from 'pg';
import { StoreError } from './rows';

/**
 * What the operations console reads from the run store in bulk: fleet figures aggregated over the
 * audit table by hour or day (one GROUP BY, never a trail per run), approval waits, and one line
 * per run for a listing page (one query for the page's runs). The audit table is the record: these
 * figures are what the trails say, not what a metrics pipeline sampled.
 */

/** Which audit events a fleet figure counts: `from` ≤ at < `to` (ISO times), per hour or day, optionally one agent's or one tenant's runs. */
export interface FleetRange {
  from: string;
  to: string;
  bucket: 'hour' | 'day';
  agent?: string;
  /** Runs whose `run_started` event names this tenant. */
  tenant?: string;
}

/** Events of one type (and decision or outcome) in one bucket, with the model figures summed. */
export interface FleetActivityRow {
  /** `2026-12-06T23` (hour) or `2026-12-06` (day), UTC. */
  bucket: string;
  type: string;
  /** `policy_decision`: allow, deny or require_approval. */
  decision: string | null;
  /** `run_finished`: the outcome. */
  status: string | null;
  count: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** One settled approval: how long it waited, in the bucket it was settled in. */
export interface ApprovalWaitRow {
  bucket: string;
  waitMs: number;
  outcome: 'approved' | 'rejected' | 'expired';
}

/** One run as its stored trail sums it up, for a listing (`runDigests`). */
export interface RunDigest {
  runId: string;
  steps: number;
  toolCalls: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  /** The last stored event: what the run did last, and when. */
  lastType: string;
  lastAt: string;
}

export interface FleetQueries {
  /** Audit events in `range` counted by bucket, type, decision and outcome; model turns' tokens and cost summed. */
  fleetActivity(range: FleetRange): Promise<FleetActivityRow[]>;
  /** Every approval settled (decided or expired) in `range`, with how long it waited since it was asked for. */
  approvalWaits(range: FleetRange): Promise<ApprovalWaitRow[]>;
  /** The stored figures of each run named (runs with no stored events are left out); one query whatever their number. */
  runDigests(runIds: readonly string[]): Promise<RunDigest[]>;
}

const BUCKET_CHARS = { hour: 13, day: 10 } as const;
/** The event types the fleet charts count; approvals are read by `approvalWaits`. */
const COUNTED = ['model_turn', 'policy_decision', 'schema_rejected', 'budget_exhausted', 'loop_detected', 'run_finished'];

/** `warden/<agent>/` as a LIKE prefix, its wildcards escaped. */
function agentPrefix(agent: string): string {
  return `warden/${agent.replace(/[\\%_]/g, (c) => `\\${c}`)}/%`;
}

function checkRange(range: FleetRange): void {
  if (!Number.isFinite(Date.parse(range.from)) || !Number.isFinite(Date.parse(range.to))) throw new StoreError(`a fleet range needs ISO times, got ${range.from} to ${range.to}`);
  if (range.bucket !== 'hour' && range.bucket !== 'day') throw new StoreError(`a fleet range buckets by hour or day, not ${String(range.bucket)}`);
}

const num = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));

/** `fleetActivity`'s rows as both stores' queries name their columns. */
function activityRows(rows: readonly Record<string, unknown>[]): FleetActivityRow[] {
  return rows.map((r) => ({
    bucket: String(r.bucket),
    type: String(r.type),
    decision: (r.decision as string | null) ?? null,
    status: (r.status as string | null) ?? null,
    count: num(r.count),
    inputTokens: num(r.input_tokens),
    outputTokens: num(r.output_tokens),
    costUsd: num(r.cost_usd),
  }));
}

function waitRows(rows: readonly { bucket: string; asked: string; settled: string; type: string; decision: string | null }[]): ApprovalWaitRow[] {
  return rows.map((r) => ({
    bucket: r.bucket,
    waitMs: Math.max(0, Date.parse(r.settled) - Date.parse(r.asked)),
    outcome: r.type === 'approval_expired' ? 'expired' : r.decision === 'rejected' ? 'rejected' : 'approved',
  }));
}

function digestRows(rows: readonly Record<string, unknown>[]): RunDigest[] {
  return rows.map((r) => ({
    runId: String(r.run_id),
    steps: num(r.steps),
    toolCalls: num(r.tool_calls),
    inputTokens: num(r.input_tokens),
    outputTokens: num(r.output_tokens),
    costUsd: num(r.cost_usd),
    lastType: typeof r.last_type === 'string' ? r.last_type : '',
    lastAt: typeof r.last_at === 'string' ? r.last_at : '',
  }));
}

/** The queries over a SQLite store's tables (`createSqliteStore`). */
export function sqliteFleetQueries(db: Database.Database): FleetQueries {
  // Fleet figures select a few event types over a time range: by type, then time, each type's rows
  // in the range are one contiguous stretch of the index, and the other types are never read.
  db.exec('CREATE INDEX IF NOT EXISTS audit_events_by_type_time ON audit_events (type, at)');
  const where = (range: FleetRange, alias = '') => {
    const clauses = [`${alias}at >= @from`, `${alias}at < @to`];
    if (range.agent) clauses.push(`${alias}run_id LIKE @agent ESCAPE '\\'`);
    if (range.tenant) clauses.push(`${alias}run_id IN (SELECT run_id FROM audit_events WHERE type = 'run_started' AND json_extract(data, '$.tenant') = @tenant)`);
    return clauses.join(' AND ');
  };
  const params = (range: FleetRange) => ({ from: range.from, to: range.to, n: BUCKET_CHARS[range.bucket], ...(range.agent ? { agent: agentPrefix(range.agent) } : {}), ...(range.tenant ? { tenant: range.tenant } : {}) });
  return {
    async fleetActivity(range) {
      checkRange(range);
      const rows = db
        .prepare(
          `SELECT substr(at, 1, @n) AS bucket, type,
             CASE WHEN type = 'policy_decision' THEN json_extract(data, '$.decision') END AS decision,
             CASE WHEN type = 'run_finished' THEN json_extract(data, '$.status') END AS status,
             count(*) AS count,
             sum(CASE WHEN type = 'model_turn' THEN json_extract(data, '$.inputTokens') END) AS input_tokens,
             sum(CASE WHEN type = 'model_turn' THEN json_extract(data, '$.outputTokens') END) AS output_tokens,
             sum(CASE WHEN type = 'model_turn' THEN json_extract(data, '$.costUsd') END) AS cost_usd
           FROM audit_events WHERE ${where(range)} AND type IN (${COUNTED.map((t) => `'${t}'`).join(', ')})
           GROUP BY 1, 2, 3, 4 ORDER BY 1`,
        )
        .all(params(range)) as Record<string, unknown>[];
      return activityRows(rows);
    },

    async approvalWaits(range) {
      checkRange(range);
      const rows = db
        .prepare(
          `SELECT substr(s.at, 1, @n) AS bucket, a.at AS asked, s.at AS settled, s.type AS type, json_extract(s.data, '$.decision') AS decision
           FROM audit_events s JOIN audit_events a
             ON a.run_id = s.run_id AND a.type = 'approval_requested' AND json_extract(a.data, '$.approvalId') = json_extract(s.data, '$.approvalId')
           WHERE ${where(range, 's.')} AND s.type IN ('approval_decided', 'approval_expired')`,
        )
        .all(params(range)) as { bucket: string; asked: string; settled: string; type: string; decision: string | null }[];
      return waitRows(rows);
    },

    async runDigests(runIds) {
      if (runIds.length === 0) return [];
      const rows = db
        .prepare(
          `SELECT run_id,
             sum(type = 'model_turn') AS steps,
             sum(type = 'tool_started') AS tool_calls,
             sum(CASE WHEN type = 'model_turn' THEN json_extract(data, '$.inputTokens') END) AS input_tokens,
             sum(CASE WHEN type = 'model_turn' THEN json_extract(data, '$.outputTokens') END) AS output_tokens,
             sum(CASE WHEN type = 'model_turn' THEN json_extract(data, '$.costUsd') END) AS cost_usd,
             (SELECT type FROM audit_events l WHERE l.run_id = e.run_id ORDER BY seq DESC LIMIT 1) AS last_type,
             max(at) AS last_at
           FROM audit_events e WHERE run_id IN (SELECT value FROM json_each(?)) GROUP BY run_id`,
        )
        .all(JSON.stringify(runIds)) as Record<string, unknown>[];
      return digestRows(rows);
    },
  };
}

/** What the PostgreSQL store's queries go through: its pool, its error wording. */
export type PostgresQuery = <R extends pg.QueryResultRow>(doing: string, text: string, values: unknown[]) => Promise<pg.QueryResult<R>>;

/** The index the PostgreSQL store's migrations create for these queries (`s`: the quoted schema). */
export function postgresFleetIndexSql(s: string): string {
  return `CREATE INDEX audit_events_by_type_time ON ${s}.audit_events (type, at);`;
}

/** The same queries over a PostgreSQL store's tables (`createPostgresStore`); `s` is the quoted schema. */
export function postgresFleetQueries(query: PostgresQuery, s: string): FleetQueries {
  const where = (range: FleetRange, values: unknown[], alias = '') => {
    values.push(range.from, range.to);
    const clauses = [`${alias}at >= $${values.length - 1}`, `${alias}at < $${values.length}`];
    if (range.agent) {
      values.push(agentPrefix(range.agent));
      clauses.push(`${alias}run_id LIKE $${values.length}`);
    }
    if (range.tenant) {
      values.push(range.tenant);
      clauses.push(`${alias}run_id IN (SELECT run_id FROM ${s}.audit_events WHERE type = 'run_started' AND data->>'tenant' = $${values.length})`);
    }
    return clauses.join(' AND ');
  };
  return {
    async fleetActivity(range) {
      checkRange(range);
      const values: unknown[] = [BUCKET_CHARS[range.bucket]];
      const { rows } = await query<Record<string, unknown>>(
        'aggregate fleet activity',
        `SELECT substr(at, 1, $1) AS bucket, type,
           CASE WHEN type = 'policy_decision' THEN data->>'decision' END AS decision,
           CASE WHEN type = 'run_finished' THEN data->>'status' END AS status,
           count(*) AS count,
           sum(CASE WHEN type = 'model_turn' THEN (data->>'inputTokens')::float8 END) AS input_tokens,
           sum(CASE WHEN type = 'model_turn' THEN (data->>'outputTokens')::float8 END) AS output_tokens,
           sum(CASE WHEN type = 'model_turn' THEN (data->>'costUsd')::float8 END) AS cost_usd
         FROM ${s}.audit_events WHERE ${where(range, values)} AND type = ANY($${values.length + 1})
         GROUP BY 1, 2, 3, 4 ORDER BY 1`,
        [...values, COUNTED],
      );
      return activityRows(rows);
    },

    async approvalWaits(range) {
      checkRange(range);
      const values: unknown[] = [BUCKET_CHARS[range.bucket]];
      const { rows } = await query<{ bucket: string; asked: string; settled: string; type: string; decision: string | null }>(
        'read approval waits',
        `SELECT substr(s.at, 1, $1) AS bucket, a.at AS asked, s.at AS settled, s.type AS type, s.data->>'decision' AS decision
         FROM ${s}.audit_events s JOIN ${s}.audit_events a
           ON a.run_id = s.run_id AND a.type = 'approval_requested' AND a.data->>'approvalId' = s.data->>'approvalId'
         WHERE ${where(range, values, 's.')} AND s.type IN ('approval_decided', 'approval_expired')`,
        values,
      );
      return waitRows(rows);
    },

    async runDigests(runIds) {
      if (runIds.length === 0) return [];
      const { rows } = await query<Record<string, unknown>>(
        'sum up runs',
        `SELECT run_id,
           count(*) FILTER (WHERE type = 'model_turn') AS steps,
           count(*) FILTER (WHERE type = 'tool_started') AS tool_calls,
           sum((data->>'inputTokens')::float8) FILTER (WHERE type = 'model_turn') AS input_tokens,
           sum((data->>'outputTokens')::float8) FILTER (WHERE type = 'model_turn') AS output_tokens,
           sum((data->>'costUsd')::float8) FILTER (WHERE type = 'model_turn') AS cost_usd,
           (array_agg(type ORDER BY seq DESC))[1] AS last_type,
           max(at) AS last_at
         FROM ${s}.audit_events WHERE run_id = ANY($1) GROUP BY run_id`,
        [[...runIds]],
      );
      return digestRows(rows);
    },
  };
}
