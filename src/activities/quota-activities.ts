import type { Logger } from 'pino';
import { TENANT_NAME, callAmount, costOf, counterKey, hasQuotas, modelQuotas, quotaMessage, quotaSetFor, quotaWindowAt, rateInterval, runQuotas, type FleetPolicy, type QuotaFacts, type QuotaHit, type QuotaRule } from '../governance';
import type { QuotaBooking } from '../store/quota-ledger';
import type { RunStore } from '../store/run-store';
import type { WardenMetrics } from '../telemetry/metrics';
import type { PreparedRun, Requester } from '../workflows/run-types';
import type { CallModelInput, CallModelResult, PrepareRunInput, RatePace, ReserveQuotaInput, ReserveQuotaResult, SettleQuotaInput, ToolActivityInput, ToolBooking } from './activity-types';
import { activityRefused } from './execution-guard';
import { withHeartbeats } from './heartbeats';

/** How long a held reservation counts when nothing settles it (a run terminated mid-call): then it expires. */
export const DEFAULT_RESERVATION_TTL_MS = 60 * 60 * 1000;


export interface QuotaDeps {
  store: RunStore;
  logger: Logger;
  /** The fleet file's quotas and rate limits (`policies/fleet.yaml`), across every agent this worker serves. */
  fleet?: FleetPolicy;
  /** The tenant of runs whose start does not sign one. */
  defaultTenant?: string;
  /** How long a held reservation counts when nothing settles it (default one hour). */
  reservationTtlMs?: number;
  metrics?: Pick<WardenMetrics, 'quotaBooked' | 'quotaReached'>;
  /** Posts a plain message to a Slack channel; absent when the worker has no Slack configuration. */
  notifySlack?: (channel: string, text: string) => Promise<void>;
}

const round2 = (n: number): string => String(Math.round(n * 100) / 100);

const countName = (q: QuotaRule): string => (typeof q.count === 'string' ? q.count : 'sum');

/**
 * The quota side of a worker's activities: a run's tenant and quota set as it is prepared, each
 * counted call booked before its tool runs, model spend checked before a model call and charged
 * after it. Every booking goes through the run store (`QuotaLedger`), so all workers of one store
 * count together.
 */
export function createQuotaActivities(deps: QuotaDeps) {
  const { store, logger } = deps;
  const ttl = deps.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
  if (deps.defaultTenant !== undefined && !TENANT_NAME.test(deps.defaultTenant)) throw new RangeError(`default tenant "${deps.defaultTenant}" must be 1–128 printable characters`);
  /** Thresholds reached: a metric each, and a Slack message where the threshold asks for one (never failing the booking). */
  const reached = async (hits: readonly QuotaHit[], who: string) => {
    for (const h of hits) {
      deps.metrics?.quotaReached(h.quota, h.action);
      const channel = h.notify?.slack?.channel;
      if (!channel || !deps.notifySlack) continue;
      const text = `Quota ${h.quota} (${h.counter}, ${h.window}) ${h.action === 'warn' ? 'passed' : h.action === 'deny' ? 'refused a booking at' : 'asked for approval past'} ${h.above}: ${h.reason} (${round2(h.used + h.amount)} with ${who})`;
      await deps.notifySlack(channel, text).catch((err: unknown) => logger.warn({ err, quota: h.quota, channel }, 'quota notice to Slack failed'));
    }
  };

  function booking(q: QuotaRule, facts: QuotaFacts, nowMs: number, amount: number): QuotaBooking {
    const window = quotaWindowAt(q.window, nowMs);
    return { quota: q.name, counter: counterKey(q.name, q.scope, facts), window: window.key, sinceMs: window.sinceMs, amount, thresholds: q.thresholds };
  }

  /**
   * The run's tenant: the one its signed start names, else the worker's default, else none. A
   * tenant an unsigned start names is never taken (anyone can start a workflow): it is reported.
   */
  function tenantOf(input: PrepareRunInput, requester: Requester): { tenant?: string; tenantRefused?: string } {
    let signed: unknown;
    if (requester.verified && typeof input.requesterProof === 'object' && input.requesterProof !== null) {
      // The proof was verified for this run (requesterOf): its payload is what the channel signed.
      const payload = (input.requesterProof as { payload?: unknown }).payload;
      signed = typeof payload === 'string' ? (JSON.parse(payload) as { tenant?: unknown }).tenant : undefined;
    }
    // A delegate works for its delegating run's tenant: its start input is sealed by that run (checked before this).
    if (signed === undefined && input.delegation !== undefined && typeof input.tenant === 'string') signed = input.tenant;
    if (typeof signed === 'string' && TENANT_NAME.test(signed)) return { tenant: signed };
    const fallback = deps.defaultTenant !== undefined ? { tenant: deps.defaultTenant } : {};
    if (input.tenant === undefined || input.tenant === fallback.tenant) return fallback;
    const named = typeof input.tenant === 'string' ? `"${input.tenant.slice(0, 128)}"` : 'a tenant';
    return { ...fallback, tenantRefused: `the start names ${named}, but a tenant counts only when a trusted channel signs the start` };
  }

  /** The slowest of the call's rate-limit slots: how long it waits, and for which limit. */
  async function pace(input: ReserveQuotaInput, facts: QuotaFacts): Promise<{ waitMs: number; rateLimit?: string; pace?: RatePace[] }> {
    let waitMs = 0;
    let rateLimit: string | undefined;
    const paces: RatePace[] = [];
    for (const r of input.rateLimits) {
      const limit = counterKey(r.name, r.scope, facts);
      const intervalMs = rateInterval(r.rate);
      paces.push({ limit, intervalMs, burst: r.burst });
      const { slotMs } = await store.takeRateSlot({ id: `${input.runId}|${input.ref}|${r.name}`, limit, nowMs: Date.now(), intervalMs, burst: r.burst });
      const wait = slotMs - Date.now();
      if (wait > waitMs) {
        waitMs = wait;
        rateLimit = `${r.tool}:${r.rate}`;
      }
    }
    const paced = paces.length > 0 ? { pace: paces } : {};
    return rateLimit ? { waitMs: Math.ceil(waitMs), rateLimit, ...paced } : { waitMs: 0, ...paced };
  }

  /**
   * As a paced tool starts: its slot by the clock of its start, so calls under one limit start at
   * least an interval apart however late their tasks were picked up. The workflow's durable timer
   * did the long wait; what is left here is scheduling jitter. A retried attempt keeps its slot.
   */
  async function waitForPace(paces: readonly RatePace[], attemptKey: string): Promise<void> {
    let until = 0;
    for (const p of paces) {
      const { slotMs } = await store.takeRateSlot({ id: `start|${attemptKey}|${p.limit}`, limit: `start|${p.limit}`, nowMs: Date.now(), intervalMs: p.intervalMs, burst: p.burst });
      until = Math.max(until, slotMs);
    }
    const wait = until - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }

  /**
   * Books a call (all its quotas or none) and takes its rate-limit slots. `report`: thresholds
   * reached and amounts booked go to metrics and Slack (not when a tool confirms its run's booking,
   * which the reserving activity reported).
   */
  async function reserve(input: ReserveQuotaInput, report: boolean): Promise<ReserveQuotaResult> {
      const nowMs = Date.now();
      const facts: QuotaFacts = { agent: input.agent, tenant: input.tenant, requester: input.requester, tool: input.tool };
      const bookings: QuotaBooking[] = [];
      for (const q of input.quotas) {
        const amount = callAmount(q, input.args);
        if ('error' in amount) {
          const hit: QuotaHit = { quota: q.name, counter: counterKey(q.name, q.scope, facts), window: quotaWindowAt(q.window, nowMs).key, action: 'deny', above: 0, reason: amount.error, used: 0, amount: 0 };
          return { kind: 'deny', hit, message: `denied by quota ${q.name}: ${amount.error}` };
        }
        bookings.push(booking(q, facts, nowMs, amount.amount));
      }
      if (bookings.length > 0) {
        const result = await store.reserveQuota({ runId: input.runId, ref: input.ref, tenant: input.tenant, nowMs, expiresAtMs: nowMs + ttl, mode: 'reserve', approved: input.approved, bookings });
        if (!result.ok) {
          if (report) await reached([result.hit], `${input.tool} in run ${input.runId}`);
          return { kind: result.hit.action === 'require_approval' ? 'require_approval' : 'deny', hit: result.hit, message: quotaMessage(result.hit) };
        }
        if (report) {
          await reached(result.warnings, `${input.tool} in run ${input.runId}`);
          for (const [i, q] of input.quotas.entries()) deps.metrics?.quotaBooked(q.name, countName(q), bookings[i]?.amount ?? 0);
        }
        if (input.rateLimits.length === 0) return { kind: 'booked', warnings: result.warnings, waitMs: 0 };
        return { kind: 'booked', warnings: result.warnings, ...(await pace(input, facts)) };
      }
      return { kind: 'booked', warnings: [], ...(await pace(input, facts)) };
  }

  return {
    /** Adds the run's tenant and quota set to a prepared run, and books the run against quotas on runs started. */
    async prepare(input: PrepareRunInput, prepared: PreparedRun): Promise<PreparedRun> {
      const out: PreparedRun = { ...prepared, ...tenantOf(input, prepared.requester) };
      const set = quotaSetFor(input.agent, prepared.policy, deps.fleet);
      if (!hasQuotas(set)) return out;
      out.quotas = set;
      const runs = runQuotas(set);
      if (runs.length === 0) return out;
      const nowMs = Date.now();
      const facts: QuotaFacts = { agent: input.agent, tenant: out.tenant ?? null, requester: prepared.requester.id };
      const result = await store.reserveQuota({ runId: input.runId, ref: 'start', tenant: facts.tenant, nowMs, expiresAtMs: nowMs + ttl, mode: 'reserve', bookings: runs.map((q) => booking(q, facts, nowMs, 1)) });
      if (!result.ok) {
        await reached([result.hit], `run ${input.runId}`);
        return { ...out, quotaStop: quotaMessage(result.hit) };
      }
      await store.settleQuota(input.runId, { ref: 'start', from: 'held', to: 'committed' });
      await reached(result.warnings, `run ${input.runId}`);
      for (const q of runs) deps.metrics?.quotaBooked(q.name, 'runs', 1);
      return out;
    },

    /** Before a model call: whether a quota on model spend is spent already (then no call is made). */
    async checkModel(input: CallModelInput): Promise<CallModelResult | null> {
      const quota = input.quota;
      if (!quota) return null;
      const nowMs = Date.now();
      const facts: QuotaFacts = { agent: input.agent, tenant: quota.tenant, requester: quota.requester };
      const result = await store.reserveQuota({ runId: input.runId, ref: `model:${input.step}`, tenant: quota.tenant, nowMs, expiresAtMs: nowMs, mode: 'check', bookings: quota.quotas.map((q) => booking(q, facts, nowMs, 0)) });
      if (result.ok) return null;
      await reached([result.hit], `run ${input.runId}`);
      return { calls: [], text: '', usage: { inputTokens: 0, outputTokens: 0 }, quota: { stop: { ...result.hit, message: quotaMessage(result.hit) } } };
    },

    /** After a model call: its spend, booked (once per step, whatever the limits: it is spent). */
    async chargeModel(input: CallModelInput, usage: { inputTokens: number; outputTokens: number }): Promise<QuotaHit[]> {
      const quota = input.quota;
      if (!quota) return [];
      const nowMs = Date.now();
      const facts: QuotaFacts = { agent: input.agent, tenant: quota.tenant, requester: quota.requester };
      const amountOf = (q: QuotaRule) => (q.count === 'tokens' ? usage.inputTokens + usage.outputTokens : quota.price ? costOf(quota.price, usage.inputTokens, usage.outputTokens) : 0);
      // A call that cost nothing (no price, no tokens) books nothing.
      const quotas = modelQuotas({ quotas: quota.quotas, rateLimits: [] }).filter((q) => amountOf(q) > 0);
      if (quotas.length === 0) return [];
      const result = await store.reserveQuota({ runId: input.runId, ref: `model:${input.step}`, tenant: quota.tenant, nowMs, expiresAtMs: nowMs, mode: 'charge', bookings: quotas.map((q) => booking(q, facts, nowMs, amountOf(q))) });
      if (!result.ok) return [];
      for (const q of quotas) deps.metrics?.quotaBooked(q.name, countName(q), amountOf(q));
      await reached(result.warnings, `run ${input.runId}`);
      return result.warnings;
    },


    /** Books a call before its tool activity (after policy and any approval allowed it). */
    reserveQuota: (input: ReserveQuotaInput): Promise<ReserveQuotaResult> => reserve(input, true),

    /**
     * As a counted or paced tool starts: its booking made again, a no-op for the booking the ledger
     * holds (a reservation's id is its run, ref and quota; a rate slot's, its run, ref and limit).
     * Anyone with a Temporal client can complete the booking activity with a verdict of their own
     * ("booked", no wait): here the ledger's own verdict decides, so a call the ledger refuses or
     * would ask approval for is not run, and a call whose slot lies ahead waits for it.
     */
    async confirmBooking(tool: string, input: ToolActivityInput, booking: ToolBooking): Promise<void> {
      const verdict = await reserve({ runId: input.runId, agent: input.agent, requester: input.requester, tool, args: input.args, ...booking }, false);
      if (verdict.kind !== 'booked') {
        logger.warn({ runId: input.runId, callId: input.callId, tool, quota: verdict.hit.quota }, 'tool refused: its booking verdict was not the quota ledger\'s');
        throw activityRefused(`refused: ${tool} not run: ${verdict.message} (the run was told the call was booked, but the quota ledger holds no such booking)`);
      }
      if (verdict.waitMs > 0) await withHeartbeats(() => new Promise((resolve) => setTimeout(resolve, verdict.waitMs)));
      if (verdict.pace) await waitForPace(verdict.pace, `${input.runId}|${input.resultSeq}`);
    },

    waitForPace,

    async settleQuota(input: SettleQuotaInput): Promise<number> {
      const moved = await store.settleQuota(input.runId, { from: input.from, to: input.to, ...(input.ref !== undefined ? { ref: input.ref } : {}) });
      if (moved > 0) logger.debug({ runId: input.runId, ref: input.ref, from: input.from, to: input.to, moved }, 'quota reservations settled');
      return moved;
    },
  };
}
