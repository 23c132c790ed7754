import type { WardenClient } from '../../client';
import type { AuditEvent } from '../../governance';
import type { RunStore } from '../../store/run-store';
import type { PendingApproval } from '../../workflows/run-types';
import { readVerifiedTrail } from '../run-reads';
import { html, type SafeHtml } from './html';

// Beside an approval a quota asked for, where that quota stands now (`/quotas` in quota-routes.ts
// shows every counter).

/** Where the quota that asked for an approval stands now, in the counter and window it asked in. */
export interface QuotaFigure {
  quota: string;
  counter: string;
  window: string;
  /** The threshold the call crossed (its soft limit), and what was booked when it asked. */
  above: number;
  usedWhenAsked: number;
  amount: number;
  /** Now: committed, and held by calls not settled yet. */
  used: number;
  reserved: number;
}

/** The quota an approval waits on, from its rule (`quota:<name>`): the workflow names quota approvals so. */
export function quotaOfApproval(approval: Pick<PendingApproval, 'ruleId'>): string | null {
  return approval.ruleId.startsWith('quota:') ? approval.ruleId.slice('quota:'.length) : null;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * The figures for the quota approvals among `approvals`: the counter, window and threshold from
 * the run's verified audit trail (its `quota_exceeded` event for the call), the totals from the
 * run store now. An approval whose trail cannot be verified, or read, gets none.
 */
export async function quotaFigures(client: WardenClient, store: RunStore | undefined, approvals: readonly PendingApproval[]): Promise<Map<string, QuotaFigure>> {
  const figures = new Map<string, QuotaFigure>();
  const asking = approvals.filter((a) => quotaOfApproval(a) !== null);
  if (!store || asking.length === 0) return figures;
  const trails = new Map<string, Promise<AuditEvent[]>>();
  const trailOf = (runId: string) => {
    let t = trails.get(runId);
    if (!t) {
      t = readVerifiedTrail(client, runId, store).then((v) => (v.verified ? v.events : []), () => []);
      trails.set(runId, t);
    }
    return t;
  };
  await Promise.all(
    asking.map(async (a) => {
      const quota = quotaOfApproval(a);
      const events = await trailOf(a.runId);
      const hit = events.filter((e) => e.type === 'quota_exceeded' && e.data.callId === a.callId && e.data.quota === quota && e.data.action === 'require_approval').at(-1);
      if (!hit || quota === null) return;
      const counter = str(hit.data.counter);
      const window = str(hit.data.window);
      const row = (await store.quotaUsage({ quota, counter })).find((r) => r.window === window);
      figures.set(a.approvalId, {
        quota,
        counter,
        window,
        above: num(hit.data.above),
        usedWhenAsked: num(hit.data.used),
        amount: num(hit.data.amount),
        used: row?.committed ?? 0,
        reserved: row?.held ?? 0,
      });
    }),
  );
  return figures;
}

/** A quota amount without float noise. */
export const fmtAmount = (n: number) => String(Math.round(n * 1e6) / 1e6);
const fmt = fmtAmount;

/** The approval card's quota line: used and reserved now against the threshold the call crossed. */
export function quotaRow(f: QuotaFigure): SafeHtml {
  const total = f.used + f.reserved;
  return html`<dt>Quota</dt><dd class="quota-usage" data-quota="${f.quota}"><a href="/quotas?quota=${encodeURIComponent(f.quota)}"><code>${f.quota}</code></a> (${f.counter.includes('|') ? f.counter.slice(f.counter.indexOf('|') + 1) : 'all runs'}, ${f.window}): <strong>${fmt(total)} of ${fmt(f.above)}</strong> — ${fmt(f.used)} used, ${fmt(f.reserved)} reserved now; this call adds ${fmt(f.amount)} (${fmt(f.usedWhenAsked)} when it asked)</dd>`;
}
