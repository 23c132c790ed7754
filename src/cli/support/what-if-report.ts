import { DURATION_PATTERN, durationMs } from '../../governance/policy/duration';
import { DIFF_KINDS, type DiffKind, type Verdict, type WhatIfReport } from '../../governance/change-safety/what-if';
import type { QuotaReplay } from '../../governance/change-safety/what-if-quotas';
import type { WardenClient } from '../../client';
import type { RunStore } from '../../store';
import { UsageError } from '../cli-errors';
import { printable, table } from '../format';

// What \`warden policy what-if\` and \`shadow-report\` read and print, apart from the commands themselves.

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function parseSince(text: string): Date {
  if (!DURATION_PATTERN.test(text)) throw new UsageError(`--since must be a duration such as 30m, 24h or 7d, not "${text}"`);
  return new Date(Date.now() - durationMs(text));
}

export function parseFailOn(text: string | undefined): DiffKind[] {
  if (text === undefined) return [];
  const kinds = text.split(',').map((k) => k.trim()).filter(Boolean);
  if (kinds.includes('any')) return [...DIFF_KINDS];
  const unknown = kinds.filter((k) => !(DIFF_KINDS as readonly string[]).includes(k));
  if (unknown.length > 0 || kinds.length === 0) throw new UsageError(`--fail-on takes a comma-separated list of ${DIFF_KINDS.join(', ')} (or any); unknown: ${unknown.join(', ') || '(empty)'}`);
  return kinds as DiffKind[];
}

export interface TrailOptions {
  since: string;
  runs?: string;
}

const OPEN_STATUSES = new Set(['running', 'awaiting_approval', 'paused']);

/**
 * The trails of the runs Temporal visibility lists (an agent's, started within `--since`, narrowed
 * by `--runs`), read from the run store; a run still going adds the tail it holds in memory.
 */
export async function readTrails(client: WardenClient, store: RunStore, agent: string | undefined, opts: TrailOptions) {
  const listed = await client.listRuns({ ...(agent ? { agent } : {}), open: false, startedAfter: parseSince(opts.since), ...(opts.runs ? { query: opts.runs } : {}) });
  const trails = [];
  for (const run of listed) {
    const events = OPEN_STATUSES.has(run.status) ? await client.auditTrail(run.runId, store) : await store.readAudit(run.runId);
    trails.push({ runId: run.runId, agent: run.agent, events });
  }
  return trails;
}

/** What each kind of difference means, beside its count in `policy what-if`. */
const KIND_MEANINGS: Record<DiffKind, string> = {
  'allow-to-deny': 'could run (at once or once approved), now denied',
  'deny-to-allow': 'was denied, now can run (at once or once approved)',
  'approval-added': 'ran at once, now waits for approval',
  'approval-removed': 'waited for approval, now runs at once',
  'rule-changed': 'same decision, by another rule or with other approvers',
};

const sameApprovers = (a: Verdict, b: Verdict) => (a.approvers ?? []).join(',') === (b.approvers ?? []).join(',');

/** How a call's verdict changed, in words: the decision, the rule, and the approvers where both sides know them and they differ. */
export function verdictChange(before: Verdict, after: Verdict): string {
  const decision = before.decision === after.decision ? after.decision : `${before.decision} → ${after.decision}`;
  const rule = before.ruleId === after.ruleId ? `rule ${after.ruleId}` : `rule ${before.ruleId} → ${after.ruleId}`;
  const parts = [decision, rule];
  if (before.approvers && after.approvers && !sameApprovers(before, after)) parts.push(`approvers ${before.approvers.join(',') || '(none)'} → ${after.approvers.join(',') || '(none)'}`);
  return parts.join('; ');
}

/** The human report of `policy what-if`: counts by kind, by rule, and each call with what changed for it. */
export function whatIfLines(file: string, r: WhatIfReport): string[] {
  const lines = [`what-if ${file} (${r.candidateVersion}) for ${r.agent}: ${plural(r.calls, 'recorded call')} in ${plural(r.runs, 'run')} decided again, ${r.diffs.length} decided differently`];
  if (r.diffs.length > 0) {
    lines.push('', ...DIFF_KINDS.filter((k) => r.byKind[k] > 0).map((k) => `  ${k.padEnd(17)} ${String(r.byKind[k]).padEnd(5)} ${KIND_MEANINGS[k]}`));
    // A rule that stays but asks other approvers would read as no change: say so.
    const approversOnly = (b: { kind: DiffKind; from: string; to: string }) => b.kind === 'rule-changed' && b.from === b.to;
    lines.push(
      '',
      'by rule:',
      ...table(['KIND', 'RULE NOW', 'RULE UNDER CANDIDATE', 'CALLS'], r.byRule.map((b) => [b.kind, b.from, approversOnly(b) ? `${b.to} (other approvers)` : b.to, String(b.count)].map(printable))).map((l) => `  ${l}`),
    );
    lines.push(
      '',
      'calls:',
      ...table(
        ['RUN', 'CALL', 'TOOL', 'KIND', 'CHANGE'],
        r.diffs.map((d) => [d.runId, d.callId, d.tool, d.kind, verdictChange(d.before, d.after)].map(printable)),
      ).map((l) => `  ${l}`),
    );
  }
  if (r.missing.length > 0) lines.push('', 'facts the trails do not hold (those calls were decided without them):', ...r.missing.map((m) => `  ${printable(m.fact)}: ${plural(m.calls, 'call')}`));
  if (r.quotas) lines.push('', ...quotaLines(r.quotas));
  return lines;
}

const num = (n: number) => String(Math.round(n * 1e6) / 1e6);

/** What the candidate's quotas would have done, or plainly that there was nothing to replay. */
export function quotaLines(q: QuotaReplay): string[] {
  const lines: string[] = [];
  if (q.evaluated.length === 0) {
    const defined = q.notEvaluated.some((n) => n.kind !== 'fleet');
    lines.push(defined ? "quotas: none of the candidate's quotas counts calls; none replayed" : 'quotas: the candidate defines none; none replayed');
  } else {
    lines.push('quotas (the calls the candidate lets run, replayed in the order they were made, across these runs):');
    lines.push(
      ...table(
        ['QUOTA', 'COUNTED', 'DENIED', 'APPROVALS ADDED', 'WARNINGS', 'PEAK'],
        q.effects.map((e) => [printable(e.quota), String(e.counted), String(e.denied), String(e.approvalsAdded), String(e.warnings), num(e.peak)]),
      ).map((l) => `  ${l}`),
    );
    if (q.hits.length > 0) {
      lines.push('', 'calls a quota would have stopped or sent for approval:');
      lines.push(
        ...table(
          ['RUN', 'CALL', 'TOOL', 'QUOTA', 'ACTION', 'TOTAL'],
          q.hits.map((h) => [h.runId, h.callId, h.tool, h.quota, h.action, `${num(h.used)} + ${num(h.amount)} > ${num(h.above)}`].map(printable)),
        ).map((l) => `  ${l}`),
      );
    }
    for (const u of q.unreadable) lines.push(`  ${printable(u.quota)}: ${plural(u.calls, 'call')} not counted, the amount it sums is not in the trail (redacted or missing)`);
    for (const a of q.assumptions) lines.push(`  note: ${a}`);
  }
  for (const n of q.notEvaluated) lines.push(`  not evaluated: ${printable(n.quota)}: ${n.why}`);
  return lines;
}

