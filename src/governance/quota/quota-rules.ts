import type { QuotaDefinition, QuotaScope, QuotaThreshold, RateLimitDefinition } from '../policy/policy-schema';
import { toolMatches } from '../policy/policy-tools';

/**
 * A quota as a run carries it: the definition, with the id it is known by across the fleet
 * (`refund-agent/refunds-per-day` from an agent's policy, `fleet/model-spend` from the fleet file).
 */
export interface QuotaRule extends QuotaDefinition {
  /** `<agent>/<id>` or `fleet/<id>`: the name counters, audit events and metrics use. */
  name: string;
}

/** A rate limit as a run carries it, with its name (`<agent>/<tool>:10/s` or `fleet/<tool>:10/s`). */
export interface RateRule extends RateLimitDefinition {
  name: string;
}

/** The quotas and rate limits that govern one run: its agent's own and the fleet's that reach its agent. */
export interface QuotaSet {
  quotas: QuotaRule[];
  rateLimits: RateRule[];
}

/** A tenant's name as signed starts and worker settings give it: 1–128 printable characters, no space at either end. */
export const TENANT_NAME = /^[^\s\p{C}][^\p{C}]{0,126}[^\s\p{C}]$|^[^\s\p{C}]$/u;

/** Who a run works for, as quotas scope it. `tenant` is null when the run has none. */
export interface QuotaFacts {
  agent: string;
  tenant: string | null;
  requester: string;
  tool?: string;
}

/**
 * The quota set of a run of `agent`: the agent's policy's quotas and rate limits, and the fleet
 * file's that name the agent (or name no agents). Both lists keep their files' order.
 */
export function quotaSetFor(agent: string, own: { quotas?: QuotaDefinition[]; rateLimits?: RateLimitDefinition[] }, fleet?: { quotas: QuotaDefinition[]; rateLimits: RateLimitDefinition[] }): QuotaSet {
  const reaches = (q: QuotaDefinition) => !q.agents || q.agents.includes(agent);
  return {
    quotas: [...(own.quotas ?? []).map((q) => ({ ...q, name: `${agent}/${q.id}` })), ...(fleet?.quotas ?? []).filter(reaches).map((q) => ({ ...q, name: `fleet/${q.id}` }))],
    rateLimits: [...(own.rateLimits ?? []).map((r) => ({ ...r, name: `${agent}/${r.tool}:${r.rate}` })), ...(fleet?.rateLimits ?? []).map((r) => ({ ...r, name: `fleet/${r.tool}:${r.rate}` }))],
  };
}

/** Whether a quota set has anything in it: a run without quotas or rate limits does no quota work at all. */
export function hasQuotas(set: QuotaSet | undefined): set is QuotaSet {
  return set !== undefined && (set.quotas.length > 0 || set.rateLimits.length > 0);
}

/** Whether a quota counts calls of `tool` (a `calls` or `sum` quota whose `tools`, if any, name it). */
export function countsCall(quota: QuotaDefinition, tool: string): boolean {
  if (quota.count !== 'calls' && typeof quota.count !== 'object') return false;
  return !quota.tools || quota.tools.some((entry) => toolMatches(entry, tool));
}

/** The quotas that count a call of `tool`, and the rate limits that pace it. */
export function rulesForCall(set: QuotaSet | undefined, tool: string): QuotaSet {
  if (!set) return { quotas: [], rateLimits: [] };
  return { quotas: set.quotas.filter((q) => countsCall(q, tool)), rateLimits: set.rateLimits.filter((r) => toolMatches(r.tool, tool)) };
}

/** The quotas that count model spend (`costUsd`, `tokens`). */
export function modelQuotas(set: QuotaSet | undefined): QuotaRule[] {
  return set ? set.quotas.filter((q) => q.count === 'costUsd' || q.count === 'tokens') : [];
}

/** The quotas that count runs started. */
export function runQuotas(set: QuotaSet | undefined): QuotaRule[] {
  return set ? set.quotas.filter((q) => q.count === 'runs') : [];
}

/**
 * The counter a quota books into for these facts: its name and each scoped dimension's value
 * (`fleet/refunds|tenant=acme`). A run without a tenant counts under `tenant=-`, one counter for all such runs.
 */
export function counterKey(name: string, scope: readonly QuotaScope[], facts: QuotaFacts): string {
  const parts = scope.map((dim) => {
    const value = dim === 'tenant' ? facts.tenant : dim === 'tool' ? facts.tool : facts[dim];
    return `${dim}=${value === null || value === undefined || value === '' ? '-' : value}`;
  });
  return parts.length === 0 ? name : `${name}|${parts.join(',')}`;
}

/** How much a call adds to a quota: 1 for `calls`, the argument's value for `sum`. A sum over an argument that is not a finite number, ≥ 0, is an error (the call is refused). */
export function callAmount(quota: QuotaDefinition, args: Record<string, unknown>): { amount: number } | { error: string } {
  if (typeof quota.count !== 'object') return { amount: 1 };
  let value: unknown = { args };
  for (const key of quota.count.sum.split('.')) value = typeof value === 'object' && value !== null && Object.prototype.hasOwnProperty.call(value, key) ? (value as Record<string, unknown>)[key] : undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return { error: `quota ${quota.id} counts ${quota.count.sum}, which is not a number ≥ 0 in this call` };
  return { amount: value };
}

/** One threshold a total reached: which quota, where it stands, and what the model is told. */
export interface QuotaHit {
  quota: string;
  counter: string;
  window: string;
  action: QuotaThreshold['action'];
  above: number;
  reason: string;
  /** Booked before this call (committed, and held by calls still running). */
  used: number;
  amount: number;
  approval?: QuotaThreshold['approval'];
  notify?: QuotaThreshold['notify'];
}

export type QuotaVerdict = { kind: 'allow'; warnings: QuotaThreshold[] } | { kind: 'require_approval' | 'deny'; threshold: QuotaThreshold };

/**
 * What a quota's thresholds say about booking `amount` on top of `used`. A threshold is reached
 * when the total would be above it (with `amount` 0, a check before spending: when the total is
 * at or above it). The hard limit (`deny`) wins, then `require_approval` (unless the call is
 * approved already), and `warn` thresholds this booking crosses come back as warnings, each once
 * per window.
 */
export function judgeQuota(thresholds: readonly QuotaThreshold[], used: number, amount: number, approved = false): QuotaVerdict {
  const reached = (t: QuotaThreshold) => (amount > 0 ? used + amount > t.above : used >= t.above);
  const deny = thresholds.find((t) => t.action === 'deny' && reached(t));
  if (deny) return { kind: 'deny', threshold: deny };
  const ask = thresholds.find((t) => t.action === 'require_approval' && reached(t));
  if (ask && !approved) return { kind: 'require_approval', threshold: ask };
  return { kind: 'allow', warnings: amount > 0 ? thresholds.filter((t) => t.action === 'warn' && used <= t.above && used + amount > t.above) : [] };
}

/** The message the model reads when a quota stops a call: the quota's own reason, and where the total stands. */
export function quotaMessage(hit: Pick<QuotaHit, 'quota' | 'action' | 'above' | 'reason' | 'used' | 'amount'>): string {
  const total = `${round(hit.used)} used${hit.amount > 0 ? `, this call adds ${round(hit.amount)}` : ''}, limit ${round(hit.above)}`;
  return `${hit.action === 'deny' ? 'denied' : 'needs approval'} by quota ${hit.quota}: ${hit.reason} (${total})`;
}

function round(n: number): string {
  return String(Math.round(n * 1e6) / 1e6);
}
