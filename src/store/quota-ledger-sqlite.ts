import type Database from 'better-sqlite3';
import { rateSlot } from '../governance/quota/rate-limit';
import { checkRateSlot, checkReserveRequest, checkSettlement, judgeBookings, listClauses, reservationId, reservationOf, totalsOf, USAGE_COLUMNS, usageClauses, usageOf, whereOf } from './quota-ledger';
import type { QuotaLedger, QuotaReserveRequest, QuotaReserveResult, RateSlotRequest, ReservationRow, UsageRow } from './quota-ledger';

// The quota ledger in the SQLite store's file: its tables and its booking SQL (quota-ledger.ts holds the shared logic).

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
