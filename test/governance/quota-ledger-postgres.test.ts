/**
 * The quota ledger on PostgreSQL: two stores (two pools, as two workers hold) booking one counter
 * at once book exactly up to the limit; retries book nothing twice; rate slots are handed out in order.
 */
import type { QuotaBooking, RunStore } from '../../src/store';
import { createPostgresStore } from '../../src/store';
import { describeWithPostgres } from '../postgres';

const booking = (amount: number): QuotaBooking => ({
  quota: 'fleet/refunds',
  counter: 'fleet/refunds|tenant=acme',
  window: 'day:2026-12-06@UTC',
  sinceMs: 0,
  amount,
  thresholds: [{ above: 1000, action: 'deny', reason: 'refunds are capped at $1,000 a day' }],
});

describeWithPostgres('the PostgreSQL quota ledger', (server) => {
  const stores: RunStore[] = [];
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
  });

  test('two workers booking 100 refunds of $60 at once under $1,000: exactly 16 are booked', async () => {
    const url = await server().createDatabase('quota');
    const [a, b] = await Promise.all([createPostgresStore(url, { poolSize: 8 }), createPostgresStore(url, { poolSize: 8 })]);
    stores.push(a, b);
    const reserve = (store: RunStore, i: number) => store.reserveQuota({ runId: `run-${i}`, ref: 'call:1', tenant: 'acme', nowMs: 1000, expiresAtMs: 60_000, mode: 'reserve', bookings: [booking(60)] });
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => reserve(i % 2 === 0 ? a : b, i)));
    expect(results.filter((r) => r.ok)).toHaveLength(16);
    for (const r of results) if (!r.ok) expect(r.hit).toMatchObject({ action: 'deny', reason: 'refunds are capped at $1,000 a day', amount: 60 });
    // Retried bookings (the same run and ref) are answered as booked, and book nothing more.
    const booked = results.flatMap((r, i) => (r.ok ? [i] : []));
    const again = await Promise.all(booked.map((i) => reserve(i % 2 === 0 ? b : a, i)));
    expect(again.every((r) => r.ok)).toBe(true);
    expect(await a.quotaUsage({ nowMs: 1000 })).toEqual([{ quota: 'fleet/refunds', counter: 'fleet/refunds|tenant=acme', window: 'day:2026-12-06@UTC', committed: 0, held: 960, reservations: 16, lastAtMs: 1000 }]);
    const first = booked[0] ?? -1;
    expect(await b.settleQuota(`run-${first}`, { ref: 'call:1', from: 'held', to: 'committed' })).toBe(1);
    expect(await b.settleQuota(`run-${first}`, { ref: 'call:1', from: 'committed', to: 'refunded' })).toBe(1);
    expect(await a.settleQuota(`run-${booked[1] ?? -1}`, { from: 'held', to: 'released' })).toBe(1);
    expect((await b.quotaUsage({ nowMs: 1000 }))[0]).toMatchObject({ held: 840, committed: 0 });
    expect(await a.listQuotaReservations({ states: ['refunded', 'released'] })).toHaveLength(2);
    expect(await a.reserveQuota({ runId: 'x', ref: 'model:1', tenant: null, nowMs: 1000, expiresAtMs: 0, mode: 'check', bookings: [booking(0)] })).toMatchObject({ ok: true });
    expect(await a.resetQuota({ quota: 'fleet/refunds', counter: 'fleet/refunds|tenant=acme' })).toBe(14);
  });

  test('rate slots from two workers are evenly spaced and booked once per call', async () => {
    const url = await server().createDatabase('rate');
    const [a, b] = await Promise.all([createPostgresStore(url, { poolSize: 4 }), createPostgresStore(url, { poolSize: 4 })]);
    stores.push(a, b);
    const slots = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).takeRateSlot({ id: `c${i}`, limit: 'fleet/pay:10/s', nowMs: 1000, intervalMs: 100, burst: 1 })));
    expect(slots.map((s) => s.slotMs).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => 1000 + 100 * i));
    expect(await a.takeRateSlot({ id: 'c3', limit: 'fleet/pay:10/s', nowMs: 9999, intervalMs: 100, burst: 1 })).toEqual(slots[3]);
  });
});
