import { callAmount, counterKey, judgeQuota, quotaWindowAt, rulesForCall, type QuotaRule, type QuotaSet } from '../quota';
import type { DecisionKind } from '../policy/policy-compiled';

// What a candidate's quotas would have done to recorded calls: the calls replayed in the order
// they were made, across runs, against counters that start empty, with the store's own judgement
// (`judgeQuota`). Pure: the caller hands over the calls and the candidate's verdict on each.

/** One recorded call, with what the candidate's rules said of it and the facts quotas are scoped by. */
export interface QuotaReplayCall {
  runId: string;
  callId: string;
  agent: string;
  tool: string;
  args: Record<string, unknown>;
  at: string;
  seq: number;
  tenant: string | null;
  requester: string;
  /** The candidate's verdict from its rules and budgets: a denied call books nothing. */
  decision: DecisionKind;
}

/** A call a quota would have stopped or sent for approval. */
export interface QuotaReplayHit {
  runId: string;
  callId: string;
  tool: string;
  at: string;
  quota: string;
  counter: string;
  action: 'deny' | 'require_approval';
  /** Booked in the window before this call, and what it would add. */
  used: number;
  amount: number;
  above: number;
}

export interface QuotaEffect {
  quota: string;
  /** Calls the quota counted (booked). */
  counted: number;
  denied: number;
  approvalsAdded: number;
  /** Warn thresholds crossed (each once per counter and window). */
  warnings: number;
  /** The highest total any counter reached. */
  peak: number;
}

export interface QuotaReplay {
  /** The quotas replayed: those counting calls (`calls`, `{ sum }`). */
  evaluated: string[];
  /** The quotas and rate limits the replay does not evaluate (and the fleet file, when it was not given), each with why. */
  notEvaluated: { quota: string; kind: 'quota' | 'rate-limit' | 'fleet'; why: string }[];
  effects: QuotaEffect[];
  hits: QuotaReplayHit[];
  /** Calls whose amount could not be read (a redacted or missing argument): not counted. */
  unreadable: { quota: string; calls: number }[];
  /** What the figures rest on, said plainly. */
  assumptions: string[];
}

const NOT_EVALUATED: Record<string, string> = {
  runs: 'counts runs started, which a replay of calls does not start',
  costUsd: 'counts model spend, which is charged after it is made and never refuses a call',
  tokens: 'counts model tokens, which are charged after they are used and never refuse a call',
};

/**
 * Replays `calls` (from every run, in the order they were proposed) against the candidate's quota
 * set. A call its rules deny books nothing. A call a quota denies books nothing and is a hit; one
 * a quota sends for approval is a hit and is booked as if approved (it ran, if someone approved
 * it). Counters start at zero: what was booked before the first call replayed is not known.
 */
export function replayQuotas(calls: readonly QuotaReplayCall[], set: QuotaSet): QuotaReplay {
  const callQuotas = set.quotas.filter((q) => q.count === 'calls' || typeof q.count === 'object');
  const notEvaluated = [
    ...set.quotas.filter((q) => !callQuotas.includes(q)).map((q) => ({ quota: q.name, kind: 'quota' as const, why: (typeof q.count === 'string' ? NOT_EVALUATED[q.count] : undefined) ?? 'not a quota on calls' })),
    ...set.rateLimits.map((r) => ({ quota: r.name, kind: 'rate-limit' as const, why: 'a rate limit delays calls and never refuses one: nothing to count' })),
  ];
  const effects = new Map<string, QuotaEffect>(callQuotas.map((q) => [q.name, { quota: q.name, counted: 0, denied: 0, approvalsAdded: 0, warnings: 0, peak: 0 }]));
  const booked = new Map<string, { atMs: number; amount: number }[]>();
  const hits: QuotaReplayHit[] = [];
  const unreadable = new Map<string, number>();
  const ordered = [...calls].sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || a.runId.localeCompare(b.runId) || a.seq - b.seq);

  for (const call of ordered) {
    if (call.decision === 'deny') continue;
    const atMs = Date.parse(call.at);
    const facts = { agent: call.agent, tenant: call.tenant, requester: call.requester, tool: call.tool };
    const quotas = rulesForCall({ quotas: callQuotas, rateLimits: [] }, call.tool).quotas;
    // All of a call's bookings go together or not at all, as the store books them.
    const pending: { key: string; amount: number; q: QuotaRule; used: number }[] = [];
    let refused = false;
    for (const q of quotas) {
      const amount = callAmount(q, call.args);
      if ('error' in amount) {
        unreadable.set(q.name, (unreadable.get(q.name) ?? 0) + 1);
        continue;
      }
      const counter = counterKey(q.name, q.scope, facts);
      const window = quotaWindowAt(q.window, atMs);
      const key = `${counter}\u0000${window.key}`;
      const used = (booked.get(key) ?? []).filter((b) => b.atMs >= window.sinceMs).reduce((sum, b) => sum + b.amount, 0);
      const verdict = judgeQuota(q.thresholds, used, amount.amount);
      const effect = effects.get(q.name);
      if (verdict.kind !== 'allow') {
        hits.push({ runId: call.runId, callId: call.callId, tool: call.tool, at: call.at, quota: q.name, counter, action: verdict.kind, used, amount: amount.amount, above: verdict.threshold.above });
        if (effect && verdict.kind === 'deny') effect.denied += 1;
        if (effect && verdict.kind === 'require_approval') effect.approvalsAdded += 1;
        if (verdict.kind === 'deny') refused = true;
      } else if (effect) effect.warnings += verdict.warnings.length;
      pending.push({ key, amount: amount.amount, q, used });
    }
    if (refused) continue;
    for (const p of pending) {
      booked.set(p.key, [...(booked.get(p.key) ?? []), { atMs, amount: p.amount }]);
      const effect = effects.get(p.q.name);
      if (effect) {
        effect.counted += 1;
        effect.peak = Math.max(effect.peak, p.used + p.amount);
      }
    }
  }
  return {
    evaluated: callQuotas.map((q) => q.name),
    notEvaluated,
    effects: [...effects.values()],
    hits,
    unreadable: [...unreadable].map(([quota, n]) => ({ quota, calls: n })),
    assumptions:
      callQuotas.length === 0
        ? []
        : [
            'counters start at zero: what was booked before the first replayed call (runs outside --since, other agents sharing a fleet quota) is not known, so the figures are a lower bound',
            'a call a quota sends for approval is counted as approved',
          ],
  };
}
