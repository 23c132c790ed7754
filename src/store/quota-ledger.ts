import type Database from 'better-sqlite3';
import type pg from 'pg';
import { judgeQuota, type QuotaHit } from '../governance/quota/quota-rules';
import { rateSlot } from '../governance/quota/rate-limit';
import type { QuotaThreshold } from '../governance/policy/policy-schema';
import type { PostgresQuery } from './fleet-queries';
import { StoreError } from './rows';

// Quota reservations and rate-limit slots: the run store's part of fleet quotas (docs/quotas.md).
// One row per reservation (run, ref, quota): what a counter holds is the sum of its rows, so a
// rolling window needs no bucket arithmetic and an expired hold simply stops counting.

/** Quota reservations and rate limits, shared by every worker of one run store. */
export interface QuotaLedger {
  /**
   * Books amounts against quotas, atomically across every worker of the store (SQLite: one
   * immediate transaction; PostgreSQL: a transaction holding an advisory lock per counter and
   * window, taken in order). `reserve` judges each booking by its thresholds and books all or
   * nothing (held, until `settleQuota` commits or releases it); `charge` books spend already made
   * (committed, never refused, warnings only); `check` books nothing and says whether the totals
   * as they stand reach a threshold. Idempotent per run, `ref` and quota: a retried activity gets
   * `ok` for what it booked before, and books nothing twice.
   */
  reserveQuota(request: QuotaReserveRequest): Promise<QuotaReserveResult>;
  /**
   * Moves a run's reservations on: held → committed (the call ran), held → released (it did not),
   * committed → refunded (its compensation gave it back). Without `ref`, every reservation of the
   * run in state `from` (run end: release all still held). Resolves how many moved.
   */
  settleQuota(runId: string, change: QuotaSettlement): Promise<number>;
  /** Totals by quota counter and window: committed, and held by reservations not yet expired at `nowMs`. */
  quotaUsage(filter?: QuotaUsageFilter): Promise<QuotaUsage[]>;
  /** Reservations, oldest first, for `warden quota show`, audits and tests. */
  listQuotaReservations(filter?: { runId?: string; quota?: string; counter?: string; states?: readonly QuotaReservationState[] }): Promise<QuotaReservation[]>;
  /** Sets a quota's counters back to zero (its held and committed reservations become `reset`); resolves how many changed. */
  resetQuota(filter: { quota: string; counter?: string; window?: string }): Promise<number>;
  /**
   * Books a rate limit's next slot for one call (GCRA, see `rateSlot`): idempotent by `id`, so a
   * retried activity gets the slot it booked. The call waits until `slotMs`.
   */
  takeRateSlot(request: RateSlotRequest): Promise<{ slotMs: number }>;
}

/** One quota counter a booking counts against, as the worker computed it from the run's quota set. */
export interface QuotaBooking {
  /** The quota's name (`refund-agent/refunds-per-day`, `fleet/model-spend`). */
  quota: string;
  /** `counterKey(...)`: the quota and its scope's values. */
  counter: string;
  /** `quotaWindowAt(...).key` */
  window: string;
  /** Bookings at or after this instant count (the window's start). */
  sinceMs: number;
  amount: number;
  thresholds: QuotaThreshold[];
}

export interface QuotaReserveRequest {
  runId: string;
  /** What books, within the run: `call:<seq>`, `start`, `model:<step>`. With the run and the quota, the reservation's id. */
  ref: string;
  tenant: string | null;
  nowMs: number;
  /** A held reservation not settled by then stops counting (the orphan of a run that ended without settling). */
  expiresAtMs: number;
  mode: 'reserve' | 'charge' | 'check';
  /** The call was approved past a `require_approval` threshold. */
  approved?: boolean;
  bookings: readonly QuotaBooking[];
}

export type QuotaReserveResult = { ok: true; warnings: QuotaHit[]; totals: { quota: string; counter: string; window: string; used: number; amount: number }[] } | { ok: false; hit: QuotaHit };

export type QuotaReservationState = 'held' | 'committed' | 'released' | 'refunded' | 'reset';

export interface QuotaSettlement {
  ref?: string;
  from: 'held' | 'committed';
  to: 'committed' | 'released' | 'refunded';
}

export interface QuotaUsageFilter {
  quota?: string;
  counter?: string;
  /** Only bookings at or after this instant (a rolling window's start). */
  sinceMs?: number;
  /** When held reservations expire is judged at this instant (default now). */
  nowMs?: number;
}

export interface QuotaUsage {
  quota: string;
  counter: string;
  window: string;
  committed: number;
  held: number;
  reservations: number;
  lastAtMs: number;
}

export interface QuotaReservation {
  id: string;
  runId: string;
  ref: string;
  quota: string;
  counter: string;
  window: string;
  tenant: string | null;
  amount: number;
  state: QuotaReservationState;
  atMs: number;
  expiresAtMs: number;
}

/** A reservation's id: one per run, booking ref and quota. */
export function reservationId(runId: string, ref: string, quota: string): string {
  return `${runId}|${ref}|${quota}`;
}

/** A booking request the stores accept: a run, a ref, finite amounts ≥ 0. */
export function checkReserveRequest(req: QuotaReserveRequest): void {
  if (!req.runId || !req.ref) throw new StoreError('a quota booking needs a run id and a ref');
  for (const b of req.bookings) {
    if (!Number.isFinite(b.amount) || b.amount < 0) throw new StoreError(`quota ${b.quota}: amount must be a finite number ≥ 0, got ${String(b.amount)}`);
  }
}

/**
 * What the bookings' thresholds say, given each booking's total so far (`used[i]` for
 * `bookings[i]`, read under the store's lock): the first booking refused refuses all of them;
 * otherwise the warnings of every threshold this booking crosses.
 */
export function judgeBookings(req: QuotaReserveRequest, used: readonly number[]): QuotaReserveResult {
  const warnings: QuotaHit[] = [];
  const hitOf = (b: QuotaBooking, u: number, t: QuotaThreshold): QuotaHit => ({
    quota: b.quota,
    counter: b.counter,
    window: b.window,
    action: t.action,
    above: t.above,
    reason: t.reason,
    used: u,
    amount: req.mode === 'check' ? 0 : b.amount,
    ...(t.approval ? { approval: t.approval } : {}),
    ...(t.notify ? { notify: t.notify } : {}),
  });
  for (const [i, b] of req.bookings.entries()) {
    const u = used[i] ?? 0;
    if (req.mode === 'charge') {
      // Spend already made is booked whatever the limits say; each threshold it crosses is reported.
      for (const t of b.thresholds) if (u <= t.above && u + b.amount > t.above) warnings.push(hitOf(b, u, t));
      continue;
    }
    const verdict = judgeQuota(b.thresholds, u, req.mode === 'check' ? 0 : b.amount, req.approved ?? false);
    if (verdict.kind !== 'allow') return { ok: false, hit: hitOf(b, u, verdict.threshold) };
    for (const t of verdict.warnings) warnings.push(hitOf(b, u, t));
  }
  return { ok: true, warnings, totals: totalsOf(req, used) };
}

function totalsOf(req: QuotaReserveRequest, used: readonly number[]) {
  return req.bookings.map((b, i) => ({ quota: b.quota, counter: b.counter, window: b.window, used: used[i] ?? 0, amount: b.amount }));
}

/** Counter and window pairs in one order for every worker: locks taken in it cannot deadlock. */
function lockOrder(bookings: readonly QuotaBooking[]): string[] {
  return [...new Set(bookings.map((b) => `${b.counter}\n${b.window}`))].sort();
}

interface ReservationRow {
  id: string;
  run_id: string;
  ref: string;
  quota: string;
  counter: string;
  win: string;
  tenant: string | null;
  amount: number | string;
  state: QuotaReservationState;
  at_ms: number | string;
  expires_at_ms: number | string;
}

const reservationOf = (r: ReservationRow): QuotaReservation => ({
  id: r.id,
  runId: r.run_id,
  ref: r.ref,
  quota: r.quota,
  counter: r.counter,
  window: r.win,
  tenant: r.tenant,
  amount: Number(r.amount),
  state: r.state,
  atMs: Number(r.at_ms),
  expiresAtMs: Number(r.expires_at_ms),
});

interface UsageRow {
  quota: string;
  counter: string;
  win: string;
  committed: number | string;
  held: number | string;
  reservations: number | string;
  last_at: number | string;
}

const usageOf = (r: UsageRow): QuotaUsage => ({
  quota: r.quota,
  counter: r.counter,
  window: r.win,
  committed: Number(r.committed),
  held: Number(r.held),
  reservations: Number(r.reservations),
  lastAtMs: Number(r.last_at),
});

/** A filter as SQL: `?` placeholders (SQLite) or `$n` (PostgreSQL). */
function whereOf(clauses: [string, unknown][], values: unknown[], numbered: boolean): string {
  const parts = ['1 = 1'];
  for (const [column, value] of clauses) {
    values.push(value);
    parts.push(`${column} = ${numbered ? `$${values.length}` : '?'}`);
  }
  return parts.join(' AND ');
}

function listClauses(filter: { runId?: string; quota?: string; counter?: string }): [string, unknown][] {
  const c: [string, unknown][] = [];
  if (filter.runId !== undefined) c.push(['run_id', filter.runId]);
  if (filter.quota !== undefined) c.push(['quota', filter.quota]);
  if (filter.counter !== undefined) c.push(['counter', filter.counter]);
  return c;
}

function usageClauses(filter: QuotaUsageFilter): [string, unknown][] {
  const c: [string, unknown][] = [];
  if (filter.quota !== undefined) c.push(['quota', filter.quota]);
  if (filter.counter !== undefined) c.push(['counter', filter.counter]);
  return c;
}

const SETTLE_MOVES = new Set(['held>committed', 'held>released', 'committed>refunded']);

function checkSettlement(change: QuotaSettlement): void {
  if (!SETTLE_MOVES.has(`${change.from}>${change.to}`)) throw new StoreError(`a reservation does not move from ${change.from} to ${change.to} (held → committed or released, committed → refunded)`);
}

const SQLITE_TABLES = `
CREATE TABLE IF NOT EXISTS quota_reservations (
  id TEXT PRIMARY KEY NOT NULL,
  run_id TEXT NOT NULL,
  ref TEXT NOT NULL,
  quota TEXT NOT NULL,
  counter TEXT NOT NULL,
  win TEXT NOT NULL,
  tenant TEXT,
  amount REAL NOT NULL,
  state TEXT NOT NULL,
  at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS quota_reservations_counter ON quota_reservations (counter, win, at_ms);
CREATE INDEX IF NOT EXISTS quota_reservations_run ON quota_reservations (run_id, ref);
CREATE TABLE IF NOT EXISTS rate_limits (
  name TEXT PRIMARY KEY NOT NULL,
  tat_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_slots (
  id TEXT PRIMARY KEY NOT NULL,
  slot_ms INTEGER NOT NULL
);
`;

// What a counter holds in a window: committed bookings, and holds not yet expired.
const USED = "COALESCE(SUM(amount), 0) AS used FROM quota_reservations WHERE counter = ? AND win = ? AND at_ms >= ? AND (state = 'committed' OR (state = 'held' AND expires_at_ms > ?))";
const USAGE_COLUMNS = (held: string) =>
  `quota, counter, win, SUM(CASE WHEN state = 'committed' THEN amount ELSE 0 END) AS committed,
   SUM(CASE WHEN state = 'held' AND expires_at_ms > ${held} THEN amount ELSE 0 END) AS held,
   SUM(CASE WHEN state = 'committed' OR expires_at_ms > ${held} THEN 1 ELSE 0 END) AS reservations, MAX(at_ms) AS last_at`;

/** The ledger in the SQLite store's file (`createSqliteStore`): its tables are made here, on open. */
export function sqliteQuotaLedger(db: Database.Database): QuotaLedger {
  db.exec(SQLITE_TABLES);
  const selectReservation = db.prepare<[string], { id: string }>('SELECT id FROM quota_reservations WHERE id = ?');
  const sumUsed = db.prepare<[string, string, number, number], { used: number }>(`SELECT ${USED}`);
  const insertReservation = db.prepare<[string, string, string, string, string, string, string | null, number, string, number, number]>(
    'INSERT INTO quota_reservations (id, run_id, ref, quota, counter, win, tenant, amount, state, at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const reserveTx = db.transaction((req: QuotaReserveRequest): QuotaReserveResult => {
    const ids = req.bookings.map((b) => reservationId(req.runId, req.ref, b.quota));
    const used = req.bookings.map((b) => sumUsed.get(b.counter, b.window, b.sinceMs, req.nowMs)?.used ?? 0);
    if (req.mode !== 'check' && ids.length > 0 && ids.every((id) => selectReservation.get(id))) return { ok: true, warnings: [], totals: totalsOf(req, used) };
    const result = judgeBookings(req, used);
    if (!result.ok || req.mode === 'check') return result;
    const state = req.mode === 'charge' ? 'committed' : 'held';
    req.bookings.forEach((b, i) => {
      const id = ids[i] ?? '';
      if (!selectReservation.get(id)) insertReservation.run(id, req.runId, req.ref, b.quota, b.counter, b.window, req.tenant, b.amount, state, req.nowMs, req.expiresAtMs);
    });
    return result;
  });
  const selectTat = db.prepare<[string], { tat_ms: number }>('SELECT tat_ms FROM rate_limits WHERE name = ?');
  const upsertTat = db.prepare<[string, number]>('INSERT INTO rate_limits (name, tat_ms) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET tat_ms = excluded.tat_ms');
  const selectSlot = db.prepare<[string], { slot_ms: number }>('SELECT slot_ms FROM rate_slots WHERE id = ?');
  const insertSlot = db.prepare<[string, number]>('INSERT INTO rate_slots (id, slot_ms) VALUES (?, ?)');
  const rateTx = db.transaction((req: RateSlotRequest): { slotMs: number } => {
    const booked = selectSlot.get(req.id);
    if (booked) return { slotMs: booked.slot_ms };
    const { slotMs, nextTatMs } = rateSlot(selectTat.get(req.limit)?.tat_ms ?? null, req.nowMs, req.intervalMs, req.burst);
    upsertTat.run(req.limit, nextTatMs);
    insertSlot.run(req.id, slotMs);
    return { slotMs };
  });
  return {
    // BEGIN IMMEDIATE: the write lock is taken before the totals are read, so two processes on one file book one after the other.
    async reserveQuota(request) {
      checkReserveRequest(request);
      return reserveTx.immediate(request);
    },
    async settleQuota(runId, change) {
      checkSettlement(change);
      const values: unknown[] = [change.to];
      const where = whereOf([['run_id', runId], ['state', change.from], ...(change.ref !== undefined ? ([['ref', change.ref]] as [string, unknown][]) : [])], values, false);
      return db.prepare(`UPDATE quota_reservations SET state = ? WHERE ${where}`).run(...values).changes;
    },
    async quotaUsage(filter = {}) {
      const nowMs = filter.nowMs ?? Date.now();
      const values: unknown[] = [nowMs, nowMs];
      let where = whereOf(usageClauses(filter), values, false) + " AND state IN ('held', 'committed')";
      if (filter.sinceMs !== undefined) {
        values.push(filter.sinceMs);
        where += ' AND at_ms >= ?';
      }
      const rows = db.prepare(`SELECT ${USAGE_COLUMNS('?')} FROM quota_reservations WHERE ${where} GROUP BY quota, counter, win ORDER BY quota, counter, win`).all(...values) as UsageRow[];
      return rows.map(usageOf);
    },
    async listQuotaReservations(filter = {}) {
      const values: unknown[] = [];
      let where = whereOf(listClauses(filter), values, false);
      if (filter.states) {
        values.push(...filter.states);
        where += ` AND state IN (${filter.states.map(() => '?').join(', ') || "''"})`;
      }
      return (db.prepare(`SELECT * FROM quota_reservations WHERE ${where} ORDER BY at_ms, id`).all(...values) as ReservationRow[]).map(reservationOf);
    },
    async resetQuota(filter) {
      const values: unknown[] = [];
      const where = whereOf([['quota', filter.quota], ...(filter.counter !== undefined ? ([['counter', filter.counter]] as [string, unknown][]) : []), ...(filter.window !== undefined ? ([['win', filter.window]] as [string, unknown][]) : [])], values, false);
      return db.prepare(`UPDATE quota_reservations SET state = 'reset' WHERE ${where} AND state IN ('held', 'committed')`).run(...values).changes;
    },
    async takeRateSlot(request) {
      checkRateSlot(request);
      return rateTx.immediate(request);
    },
  };
}

export interface RateSlotRequest {
  /** The call's booking (`<run>|call:<seq>|<limit>`): a retry gets the slot booked before. */
  id: string;
  /** The rate limit's counter (its name and scope). */
  limit: string;
  nowMs: number;
  intervalMs: number;
  burst: number;
}

function checkRateSlot(req: RateSlotRequest): void {
  if (!req.id || !req.limit) throw new StoreError('a rate-limit slot needs an id and a limit');
  if (!(req.intervalMs > 0) || !Number.isSafeInteger(req.burst) || req.burst < 1) throw new StoreError(`rate limit ${req.limit}: interval must be > 0 and burst a positive integer`);
}

/** The PostgreSQL store's quota tables (a migration; `s` is the quoted schema). */
export function postgresQuotaSql(s: string): string {
  return `
    CREATE TABLE ${s}.quota_reservations (
      id text PRIMARY KEY,
      run_id text NOT NULL,
      ref text NOT NULL,
      quota text NOT NULL,
      counter text NOT NULL,
      win text NOT NULL,
      tenant text,
      amount double precision NOT NULL,
      state text NOT NULL,
      at_ms bigint NOT NULL,
      expires_at_ms bigint NOT NULL
    );
    CREATE INDEX quota_reservations_counter ON ${s}.quota_reservations (counter, win, at_ms);
    CREATE INDEX quota_reservations_run ON ${s}.quota_reservations (run_id, ref);
    CREATE TABLE ${s}.rate_limits (
      name text PRIMARY KEY,
      tat_ms double precision NOT NULL
    );
    CREATE TABLE ${s}.rate_slots (
      id text PRIMARY KEY,
      slot_ms double precision NOT NULL
    );`;
}

/**
 * The ledger in a PostgreSQL store (`createPostgresStore`; `s` is the quoted schema). A booking is
 * one transaction that first takes a transaction-scoped advisory lock per counter and window (in
 * one order), then reads the totals and inserts: two workers booking one counter go one after the other.
 */
export function postgresQuotaLedger(query: PostgresQuery, connect: () => Promise<pg.PoolClient>, s: string): QuotaLedger {
  async function transaction<T>(doing: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await connect();
    } catch (err) {
      throw new StoreError(`run store: ${doing}: ${(err as Error).message}`, { cause: err });
    }
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw StoreError.isInstance(err) ? err : new StoreError(`run store: ${doing}: ${(err as Error).message}`, { cause: err });
    } finally {
      client.release();
    }
  }
  return {
    async reserveQuota(req) {
      checkReserveRequest(req);
      return transaction(`book quota for run ${req.runId}`, async (client) => {
        for (const key of lockOrder(req.bookings)) await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 7001))', [key]);
        const ids = req.bookings.map((b) => reservationId(req.runId, req.ref, b.quota));
        const used: number[] = [];
        for (const b of req.bookings) {
          const r = await client.query<{ used: string }>(
            `SELECT COALESCE(SUM(amount), 0) AS used FROM ${s}.quota_reservations WHERE counter = $1 AND win = $2 AND at_ms >= $3 AND (state = 'committed' OR (state = 'held' AND expires_at_ms > $4))`,
            [b.counter, b.window, b.sinceMs, req.nowMs],
          );
          used.push(Number(r.rows[0]?.used ?? 0));
        }
        if (req.mode !== 'check' && ids.length > 0) {
          const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${s}.quota_reservations WHERE id = ANY($1::text[])`, [ids]);
          if (Number(rows[0]?.n ?? 0) === ids.length) return { ok: true, warnings: [], totals: totalsOf(req, used) };
        }
        const result = judgeBookings(req, used);
        if (!result.ok || req.mode === 'check') return result;
        const state = req.mode === 'charge' ? 'committed' : 'held';
        await client.query(
          `INSERT INTO ${s}.quota_reservations (id, run_id, ref, quota, counter, win, tenant, amount, state, at_ms, expires_at_ms)
           SELECT t.id, $1, $2, t.quota, t.counter, t.win, $3, t.amount, $4, $5, $6
           FROM unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::float8[]) AS t(id, quota, counter, win, amount)
           ON CONFLICT (id) DO NOTHING`,
          [req.runId, req.ref, req.tenant, state, req.nowMs, req.expiresAtMs, ids, req.bookings.map((b) => b.quota), req.bookings.map((b) => b.counter), req.bookings.map((b) => b.window), req.bookings.map((b) => b.amount)],
        );
        return result;
      });
    },
    async settleQuota(runId, change) {
      checkSettlement(change);
      const values: unknown[] = [change.to];
      const where = whereOf([['run_id', runId], ['state', change.from], ...(change.ref !== undefined ? ([['ref', change.ref]] as [string, unknown][]) : [])], values, true);
      return (await query(`settle quota reservations of run ${runId}`, `UPDATE ${s}.quota_reservations SET state = $1 WHERE ${where}`, values)).rowCount ?? 0;
    },
    async quotaUsage(filter = {}) {
      const values: unknown[] = [filter.nowMs ?? Date.now()];
      let where = whereOf(usageClauses(filter), values, true) + " AND state IN ('held', 'committed')";
      if (filter.sinceMs !== undefined) {
        values.push(filter.sinceMs);
        where += ` AND at_ms >= $${values.length}`;
      }
      const { rows } = await query<UsageRow>('read quota usage', `SELECT ${USAGE_COLUMNS('$1')} FROM ${s}.quota_reservations WHERE ${where} GROUP BY quota, counter, win ORDER BY quota COLLATE "C", counter COLLATE "C", win COLLATE "C"`, values);
      return rows.map(usageOf);
    },
    async listQuotaReservations(filter = {}) {
      const values: unknown[] = [];
      let where = whereOf(listClauses(filter), values, true);
      if (filter.states) {
        values.push([...filter.states]);
        where += ` AND state = ANY($${values.length}::text[])`;
      }
      const { rows } = await query<ReservationRow>('list quota reservations', `SELECT * FROM ${s}.quota_reservations WHERE ${where} ORDER BY at_ms, id COLLATE "C"`, values);
      return rows.map(reservationOf);
    },
    async resetQuota(filter) {
      const values: unknown[] = [];
      const where = whereOf([['quota', filter.quota], ...(filter.counter !== undefined ? ([['counter', filter.counter]] as [string, unknown][]) : []), ...(filter.window !== undefined ? ([['win', filter.window]] as [string, unknown][]) : [])], values, true);
      return (await query(`reset quota ${filter.quota}`, `UPDATE ${s}.quota_reservations SET state = 'reset' WHERE ${where} AND state IN ('held', 'committed')`, values)).rowCount ?? 0;
    },
    async takeRateSlot(req) {
      checkRateSlot(req);
      return transaction(`book a slot of rate limit ${req.limit}`, async (client) => {
        const booked = await client.query<{ slot_ms: number }>(`SELECT slot_ms FROM ${s}.rate_slots WHERE id = $1`, [req.id]);
        if (booked.rows[0]) return { slotMs: Number(booked.rows[0].slot_ms) };
        await client.query(`INSERT INTO ${s}.rate_limits (name, tat_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, [req.limit, req.nowMs]);
        // The row lock orders bookings of one limit across workers.
        const { rows } = await client.query<{ tat_ms: number }>(`SELECT tat_ms FROM ${s}.rate_limits WHERE name = $1 FOR UPDATE`, [req.limit]);
        const again = await client.query<{ slot_ms: number }>(`SELECT slot_ms FROM ${s}.rate_slots WHERE id = $1`, [req.id]);
        if (again.rows[0]) return { slotMs: Number(again.rows[0].slot_ms) };
        const { slotMs, nextTatMs } = rateSlot(rows[0] ? Number(rows[0].tat_ms) : null, req.nowMs, req.intervalMs, req.burst);
        await client.query(`UPDATE ${s}.rate_limits SET tat_ms = $2 WHERE name = $1`, [req.limit, nextTatMs]);
        await client.query(`INSERT INTO ${s}.rate_slots (id, slot_ms) VALUES ($1, $2)`, [req.id, slotMs]);
        return { slotMs };
      });
    },
  };
}
