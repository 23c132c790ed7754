import type pg from 'pg';
import { rateSlot } from '../governance/quota/rate-limit';
import type { PostgresQuery } from './fleet-queries';
import { checkRateSlot, checkReserveRequest, checkSettlement, judgeBookings, listClauses, lockOrder, reservationId, reservationOf, totalsOf, USAGE_COLUMNS, usageClauses, usageOf, whereOf } from './quota-ledger';
import type { QuotaLedger, ReservationRow, UsageRow } from './quota-ledger';
import { StoreError } from './rows';

// The quota ledger in a PostgreSQL store: its tables (a migration) and its booking SQL (quota-ledger.ts holds the shared logic).

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
