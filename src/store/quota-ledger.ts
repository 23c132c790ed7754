import { judgeQuota, type QuotaHit } from '../governance/quota/quota-rules';
import type { QuotaThreshold } from '../governance/policy/policy-schema';
import { StoreError } from './rows';

// Quota reservations and rate-limit slots: the run store's part of fleet quotas (docs/quotas.md).
// One row per reservation (run, ref, quota): what a counter holds is the sum of its rows, so a
// rolling window needs no bucket arithmetic and an expired hold simply stops counting.
// The types and the logic both stores share live here; each store's SQL in quota-ledger-sqlite.ts
// and quota-ledger-postgres.ts.

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

export function totalsOf(req: QuotaReserveRequest, used: readonly number[]) {
  return req.bookings.map((b, i) => ({ quota: b.quota, counter: b.counter, window: b.window, used: used[i] ?? 0, amount: b.amount }));
}

/** Counter and window pairs in one order for every worker: locks taken in it cannot deadlock. */
export function lockOrder(bookings: readonly QuotaBooking[]): string[] {
  return [...new Set(bookings.map((b) => `${b.counter}\n${b.window}`))].sort();
}

export interface ReservationRow {
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

export const reservationOf = (r: ReservationRow): QuotaReservation => ({
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

export interface UsageRow {
  quota: string;
  counter: string;
  win: string;
  committed: number | string;
  held: number | string;
  reservations: number | string;
  last_at: number | string;
}

export const usageOf = (r: UsageRow): QuotaUsage => ({
  quota: r.quota,
  counter: r.counter,
  window: r.win,
  committed: Number(r.committed),
  held: Number(r.held),
  reservations: Number(r.reservations),
  lastAtMs: Number(r.last_at),
});

/** A filter as SQL: `?` placeholders (SQLite) or `$n` (PostgreSQL). */
export function whereOf(clauses: [string, unknown][], values: unknown[], numbered: boolean): string {
  const parts = ['1 = 1'];
  for (const [column, value] of clauses) {
    values.push(value);
    parts.push(`${column} = ${numbered ? `$${values.length}` : '?'}`);
  }
  return parts.join(' AND ');
}

export function listClauses(filter: { runId?: string; quota?: string; counter?: string }): [string, unknown][] {
  const c: [string, unknown][] = [];
  if (filter.runId !== undefined) c.push(['run_id', filter.runId]);
  if (filter.quota !== undefined) c.push(['quota', filter.quota]);
  if (filter.counter !== undefined) c.push(['counter', filter.counter]);
  return c;
}

export function usageClauses(filter: QuotaUsageFilter): [string, unknown][] {
  const c: [string, unknown][] = [];
  if (filter.quota !== undefined) c.push(['quota', filter.quota]);
  if (filter.counter !== undefined) c.push(['counter', filter.counter]);
  return c;
}

const SETTLE_MOVES = new Set(['held>committed', 'held>released', 'committed>refunded']);

export function checkSettlement(change: QuotaSettlement): void {
  if (!SETTLE_MOVES.has(`${change.from}>${change.to}`)) throw new StoreError(`a reservation does not move from ${change.from} to ${change.to} (held → committed or released, committed → refunded)`);
}

/** The usage columns of a counter and window; `held` is the placeholder of the instant held reservations expire against. */
export const USAGE_COLUMNS = (held: string) =>
  `quota, counter, win, SUM(CASE WHEN state = 'committed' THEN amount ELSE 0 END) AS committed,
   SUM(CASE WHEN state = 'held' AND expires_at_ms > ${held} THEN amount ELSE 0 END) AS held,
   SUM(CASE WHEN state = 'committed' OR expires_at_ms > ${held} THEN 1 ELSE 0 END) AS reservations, MAX(at_ms) AS last_at`;

export interface RateSlotRequest {
  /** The call's booking (`<run>|call:<seq>|<limit>`): a retry gets the slot booked before. */
  id: string;
  /** The rate limit's counter (its name and scope). */
  limit: string;
  nowMs: number;
  intervalMs: number;
  burst: number;
}

export function checkRateSlot(req: RateSlotRequest): void {
  if (!req.id || !req.limit) throw new StoreError('a rate-limit slot needs an id and a limit');
  if (!(req.intervalMs > 0) || !Number.isSafeInteger(req.burst) || req.burst < 1) throw new StoreError(`rate limit ${req.limit}: interval must be > 0 and burst a positive integer`);
}

