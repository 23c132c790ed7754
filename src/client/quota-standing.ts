import { describeWindow, quotaWindowAt } from '../governance/quota/quota-window';
import type { QuotaDefinition, QuotaThreshold } from '../governance/policy/policy-schema';
import type { QuotaLedger, QuotaReservation } from '../store/quota-ledger';

// Where a quota stands now, read from the run store: what `warden quota list|show` print and the
// inbox shows beside an approval a quota asked for.

/** A quota as a worker knows it: its fleet-wide name (`refund-agent/refunds-per-day`, `fleet/model-spend`) and its definition. */
export interface NamedQuota {
  name: string;
  definition: QuotaDefinition;
  /** Where the definition was read (a policy file, an applied policy, the fleet file). */
  source?: string;
}

/** One counter of a quota in its current window: a scope's values (`tenant=acme`), or the whole quota. */
export interface CounterStanding {
  counter: string;
  /** The scope's values as written in the counter (`{ tenant: 'acme' }`); empty for an unscoped quota. */
  scope: Record<string, string>;
  /** Committed: calls that ran, spend already made. */
  used: number;
  /** Held by calls not settled yet (waiting, running). */
  reserved: number;
  reservations: number;
}

/** One run's share of a quota in its current window. */
export interface Consumer {
  runId: string;
  tenant: string | null;
  amount: number;
}

export interface QuotaStanding {
  name: string;
  description?: string;
  count: string;
  scope: string[];
  window: { label: string; key: string; since: string; until: string };
  /** The hard limit (the `deny` threshold), or null when the quota only warns or asks. */
  limit: number | null;
  thresholds: QuotaThreshold[];
  counters: CounterStanding[];
  /** The runs that booked the most in this window, most first (at most `top`). */
  top: Consumer[];
  source?: string;
}

/** `count` as people read it: `calls`, `sum of args.amount`. */
export function describeCount(count: QuotaDefinition['count']): string {
  return typeof count === 'object' ? `sum of ${count.sum}` : count;
}

/** A counter key's scope values: `fleet/refunds|tenant=acme,requester=bob` → `{ tenant: 'acme', requester: 'bob' }`. */
export function scopeOfCounter(counter: string): Record<string, string> {
  const bar = counter.indexOf('|');
  if (bar < 0) return {};
  const out: Record<string, string> = {};
  for (const part of counter.slice(bar + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/** The hard limit of a quota: its `deny` threshold. */
export function limitOf(definition: QuotaDefinition): number | null {
  return definition.thresholds.find((t) => t.action === 'deny')?.above ?? null;
}

/** Whether a counter is a tenant's (`--tenant`): its scope names that tenant. A run without a tenant counts under `-`. */
export function counterOfTenant(counter: string, tenant: string): boolean {
  return scopeOfCounter(counter).tenant === tenant;
}

const LIVE = ['held', 'committed'] as const;

/**
 * Where a quota stands at `nowMs`: each counter's used (committed) and reserved (held) amounts in
 * the current window, the limit, and the top consumers. With `tenant`, only that tenant's
 * counters (the quota must be scoped by tenant for any to match).
 */
export async function quotaStanding(store: QuotaLedger, quota: NamedQuota, nowMs: number, options: { tenant?: string; top?: number } = {}): Promise<QuotaStanding> {
  const d = quota.definition;
  const window = quotaWindowAt(d.window, nowMs);
  const inWindow = (w: string) => w === window.key;
  const wanted = (counter: string) => options.tenant === undefined || counterOfTenant(counter, options.tenant);
  const rows = (await store.quotaUsage({ quota: quota.name, sinceMs: window.sinceMs, nowMs })).filter((r) => inWindow(r.window) && wanted(r.counter));
  const counters = rows
    .map((r): CounterStanding => ({ counter: r.counter, scope: scopeOfCounter(r.counter), used: r.committed, reserved: r.held, reservations: r.reservations }))
    .sort((a, b) => b.used + b.reserved - (a.used + a.reserved) || a.counter.localeCompare(b.counter));
  const reservations = (await store.listQuotaReservations({ quota: quota.name, states: LIVE })).filter(
    (r: QuotaReservation) => inWindow(r.window) && r.atMs >= window.sinceMs && wanted(r.counter) && (r.state === 'committed' || r.expiresAtMs > nowMs),
  );
  const byRun = new Map<string, Consumer>();
  for (const r of reservations) {
    const c = byRun.get(r.runId) ?? { runId: r.runId, tenant: r.tenant, amount: 0 };
    c.amount += r.amount;
    byRun.set(r.runId, c);
  }
  const top = [...byRun.values()].sort((a, b) => b.amount - a.amount || a.runId.localeCompare(b.runId)).slice(0, options.top ?? 5);
  return {
    name: quota.name,
    ...(d.description ? { description: d.description } : {}),
    count: describeCount(d.count),
    scope: [...d.scope],
    window: { label: describeWindow(d.window), key: window.key, since: new Date(window.sinceMs).toISOString(), until: new Date(window.untilMs).toISOString() },
    limit: limitOf(d),
    thresholds: d.thresholds,
    counters,
    top,
    ...(quota.source ? { source: quota.source } : {}),
  };
}
