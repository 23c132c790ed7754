import type { AuditEvent } from '../governance';
import type { PendingApproval, RunOutcome, RunStatusView } from '../workflows/types';

/** Writes one line to stdout. Commands print through this so tests and pipes see whole lines. */
export function out(line = ''): void {
  process.stdout.write(line + '\n');
}

/** Writes a value as indented JSON (the `--json` output of every command). */
export function outJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function usd(n: number, digits = 4): string {
  return `$${n.toFixed(digits)}`;
}

export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A fixed-width table with a header row; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)];
}

/** `3h12m`, `45s`, or `expired`: how long until an ISO time. */
export function timeLeft(iso: string, now = Date.now()): string {
  const ms = Date.parse(iso) - now;
  if (Number.isNaN(ms)) return '?';
  if (ms <= 0) return 'expired';
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d${h}h`;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** Compact JSON of a value, cut to `max` characters. */
export function compact(value: unknown, max = 60): string {
  return truncate(JSON.stringify(value) ?? '', max);
}

/** The rows `warden approvals` prints, shared with the demo. */
export function approvalsTable(approvals: PendingApproval[]): string[] {
  return table(
    ['RUN', 'APPROVAL', 'TOOL', 'ARGS', 'RULE', 'APPROVERS', 'LEFT'],
    approvals.map((a) => [
      a.runId,
      a.approvalId,
      a.tool,
      compact(a.args, 70),
      a.ruleId,
      `${a.approvers.join(',')}${a.quorum > 1 ? ` (${a.approvals.length}/${a.quorum})` : ''}`,
      timeLeft(a.expiresAt),
    ]),
  );
}

/** `key=value` pairs of an event's data, scalars first, cut to fit one line. */
export function shortData(data: Record<string, unknown>, max = 110): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(data)) {
    if (value === null || value === undefined) continue;
    const text = typeof value === 'string' ? (/\s/.test(value) ? JSON.stringify(value) : value) : JSON.stringify(value);
    parts.push(`${key}=${truncate(text ?? '', 48)}`);
  }
  return truncate(parts.join(' '), max);
}

/** One line per audit event: seq, time, type, short data. */
export function auditLines(events: AuditEvent[]): string[] {
  const width = String(events[events.length - 1]?.seq ?? 0).length;
  return events.map((e) => `${String(e.seq).padStart(width)}  ${e.at}  ${e.type.padEnd(18)}  ${shortData(e.data)}`);
}

/** A run's outcome for people: status and reason, figures, the answer, budget and rollback details. */
export function outcomeLines(runId: string, o: RunOutcome): string[] {
  const lines = [
    `run ${runId}: ${o.status} (${o.reason})`,
    `  steps ${o.steps}, tool calls ${o.toolCalls}, tokens ${o.usage.inputTokens} in / ${o.usage.outputTokens} out, cost ${usd(o.usage.costUsd)}, policy ${o.policyVersion}`,
  ];
  if (o.budget) lines.push(`  budget: ${o.budget.limit} reached, used ${fmtLimit(o.budget.limit, o.budget.used)} of ${fmtLimit(o.budget.limit, o.budget.max)}`);
  if (o.rollback) lines.push(...rollbackLines(o.rollback));
  if (o.text) lines.push(`  answer: ${o.text}`);
  return lines;
}

export function rollbackLines(r: NonNullable<RunOutcome['rollback']>): string[] {
  const list = (items: { callId: string; tool: string; error?: string }[]) =>
    items.length === 0 ? '—' : items.map((i) => `${i.tool} (${i.callId})${i.error ? `: ${i.error}` : ''}`).join(', ');
  return [`  rollback: undone ${list(r.undone)}`, `            failed ${list(r.failed)}`, `            not undoable ${list(r.notUndoable)}`];
}

function fmtLimit(limit: string, n: number): string {
  if (limit === 'maxCostUsd') return usd(n);
  if (limit === 'maxWallTime') return `${Math.round(n / 1000)}s`;
  return String(n);
}

/** The `warden status` view for people. */
export function statusLines(s: RunStatusView): string[] {
  const used = s.budget.used;
  const limits = s.budget.limits;
  const budget = [
    `steps ${used.steps}${limits.maxSteps !== undefined ? `/${limits.maxSteps}` : ''}`,
    `tool calls ${used.toolCalls}${limits.maxToolCalls !== undefined ? `/${limits.maxToolCalls}` : ''}`,
    `cost ${usd(used.costUsd)}${limits.maxCostUsd !== undefined ? `/${usd(limits.maxCostUsd, 2)}` : ''}`,
    `tokens ${used.inputTokens} in / ${used.outputTokens} out`,
  ].join(', ');
  const last = s.lastDecision ? `${s.lastDecision.tool} → ${s.lastDecision.decision} (rule ${s.lastDecision.ruleId})` : '—';
  const rows: [string, string][] = [
    ['run', s.runId],
    ['agent', `${s.agent} (requested by ${s.requester})`],
    ['phase', `${s.phase}${s.paused ? ' (paused)' : ''}`],
    ['step', `${s.step}: ${s.currentDetails}`],
    ['budget', budget],
    ['approvals', s.pendingApprovals > 0 ? `${s.pendingApprovals} pending (see 'warden approvals')` : 'none pending'],
    ['last decision', last],
    ['policy', s.policyVersion],
    ['outcome', s.outcome ? `${s.outcome.status}: ${s.outcome.reason}` : '— (still running)'],
  ];
  return rows.map(([k, v]) => `${k.padEnd(13)} ${v}`);
}
