import type { AuditEvent } from '../governance';
import type { PendingApproval, RunOutcome, RunStatusView } from '../workflows/run-types';

/** Writes one line to stdout. Commands print through this so tests and pipes see whole lines. */
export function out(line = ''): void {
  process.stdout.write(line + '\n');
}

/**
 * C0 and C1 control characters (newline and tab included) and DEL: a terminal acts on them (ESC
 * starts a sequence that can retitle the window, clear the screen or rewrite what was printed,
 * and U+009B is ESC [ on terminals that read 8-bit controls). Also the invisible marks that
 * reorder or split the text around them (bidi overrides and isolates, line separators), so a
 * tool name cannot be made to read as another.
 */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// Outside C0: JSON.stringify leaves these in its output as they are.
const UNESCAPED_BY_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const escapeChar = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * Text from a run, a model or the run store made safe to print: every control character is
 * written as visible `\u001b`-style text, so it shows instead of acting on the terminal. Apply it
 * to each field of run data in human output (tool names, arguments, reasons, approvers, ids);
 * not to Warden's own text, and not to `--json` output (`outJson` escapes on its own).
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, escapeChar);
}

/** Writes a value as indented JSON (the `--json` output of every command). */
export function outJson(value: unknown): void {
  // JSON.stringify escapes C0 characters itself; the rest can only stand inside string literals
  // here, where `\uXXXX` is the same character to any JSON parser.
  process.stdout.write(JSON.stringify(value, null, 2).replace(UNESCAPED_BY_JSON, escapeChar) + '\n');
}

/**
 * A US dollar amount for people: cents from a dollar up (`$12.50`, `$1,234.00`); below a dollar,
 * three significant digits, at least cents and at most six decimals (`$0.0497`, `$0.00121`), so
 * the cost of one model call still shows and float noise (`0.0012079999999999999`) never does.
 */
export function usd(n: number): string {
  if (!Number.isFinite(n)) return `$${n}`;
  const abs = Math.abs(n);
  const decimals = abs === 0 || abs >= 1 ? 2 : Math.min(6, Math.max(2, 2 - Math.floor(Math.log10(abs))));
  return `${n < 0 ? '-' : ''}$${abs.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: decimals })}`;
}

/** A field that holds US dollars (`costUsd`, `maxCostUsd`): printed with `usd`. */
const USD_FIELD = /usd$/i;

/** Numbers in event data without the float noise of sums (0.1 + 0.2 shows as 0.3): for display only. */
function withoutFloatNoise(key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isInteger(value) && Number.isFinite(value) ? Number(value.toPrecision(12)) : value;
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

/** Compact JSON of a value, cut to `max` characters; safe to print (`printable`). */
export function compact(value: unknown, max = 60): string {
  return truncate(printable(JSON.stringify(value) ?? ''), max);
}

/** The rows `warden approvals` prints, shared with the demo. */
export function approvalsTable(approvals: PendingApproval[]): string[] {
  return table(
    ['RUN', 'APPROVAL', 'TOOL', 'ARGS', 'RULE', 'APPROVERS', 'LEFT'],
    approvals.map((a) => [
      printable(a.runId),
      printable(a.approvalId),
      printable(a.tool),
      compact(a.args, 70),
      printable(a.ruleId),
      `${printable(a.approvers.join(','))}${a.quorum > 1 ? ` (${a.approvals.length}/${a.quorum})` : ''}`,
      `${timeLeft(a.expiresAt)}${a.paused ? ' (run paused)' : ''}`,
    ]),
  );
}

/** `key=value` pairs of an event's data, scalars first, cut to fit one line. */
export function shortData(data: Record<string, unknown>, max = 110): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(data)) {
    if (value === null || value === undefined) continue;
    let text: string | undefined;
    if (typeof value === 'string') text = /\s/.test(value) ? JSON.stringify(value) : value;
    else if (typeof value === 'number' && USD_FIELD.test(key)) text = usd(value);
    else text = JSON.stringify(value, withoutFloatNoise);
    parts.push(`${printable(key)}=${truncate(printable(text ?? ''), 48)}`);
  }
  return truncate(parts.join(' '), max);
}

/** One line per audit event: seq, time, type, short data. */
export function auditLines(events: AuditEvent[]): string[] {
  const width = String(events[events.length - 1]?.seq ?? 0).length;
  // Every field comes from the run store, which a tampered row can fill with anything.
  return events.map((e) => `${String(e.seq).padStart(width)}  ${printable(String(e.at))}  ${printable(String(e.type)).padEnd(18)}  ${shortData(e.data)}`);
}

/** A run's outcome for people: status and reason, figures, the answer, budget and rollback details. */
export function outcomeLines(runId: string, o: RunOutcome): string[] {
  const lines = [
    `run ${printable(runId)}: ${printable(o.status)} (${printable(o.reason)})`,
    `  steps ${o.steps}, tool calls ${o.toolCalls}, tokens ${o.usage.inputTokens} in / ${o.usage.outputTokens} out, cost ${usd(o.usage.costUsd)}, policy ${printable(o.policyVersion)}`,
  ];
  if (o.budget) lines.push(`  budget: ${printable(o.budget.limit)} reached, used ${fmtLimit(o.budget.limit, o.budget.used)} of ${fmtLimit(o.budget.limit, o.budget.max)}`);
  if (o.rollback) lines.push(...rollbackLines(o.rollback));
  // The model's answer: the field most likely to carry whatever a prompt injection asked for.
  if (o.text) lines.push(`  answer: ${printable(o.text)}`);
  return lines;
}

export function rollbackLines(r: NonNullable<RunOutcome['rollback']>): string[] {
  const list = (items: { callId: string; tool: string; error?: string }[]) =>
    items.length === 0 ? '—' : items.map((i) => `${printable(i.tool)} (${printable(i.callId)})${i.error ? `: ${printable(i.error)}` : ''}`).join(', ');
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
    `cost ${usd(used.costUsd)}${limits.maxCostUsd !== undefined ? `/${usd(limits.maxCostUsd)}` : ''}`,
    `tokens ${used.inputTokens} in / ${used.outputTokens} out`,
  ].join(', ');
  const last = s.lastDecision ? `${printable(s.lastDecision.tool)} → ${printable(s.lastDecision.decision)} (rule ${printable(s.lastDecision.ruleId)})` : '—';
  const rows: [string, string][] = [
    ['run', printable(s.runId)],
    ['agent', `${printable(s.agent)} (requested by ${printable(s.requester)}${s.tenant !== undefined ? `, for tenant ${printable(s.tenant)}` : ''})`],
    ...(s.delegatedBy ? ([['delegated by', `${printable(s.delegatedBy.agent)} run ${printable(s.delegatedBy.runId)} (call ${printable(s.delegatedBy.callId)})`]] as [string, string][]) : []),
    ['phase', `${printable(s.phase)}${s.paused && s.phase !== 'paused' ? ' (paused)' : ''}`],
    ['step', `${s.step}: ${printable(s.currentDetails)}`],
    ['budget', budget],
    ['approvals', s.pendingApprovals > 0 ? `${s.pendingApprovals} pending (see 'warden approvals')` : 'none pending'],
    ['last decision', last],
    ['policy', printable(s.policyVersion)],
    ['outcome', s.outcome ? `${printable(s.outcome.status)}: ${printable(s.outcome.reason)}` : '— (still running)'],
  ];
  return rows.map(([k, v]) => `${k.padEnd(13)} ${v}`);
}

/** One line of a run tree: the run, its agent and where it stands. */
export function treeLine(prefix: string, agent: string, runId: string, state: string): string {
  return `${prefix}${printable(agent)} ${printable(runId)}  ${printable(state)}`;
}
