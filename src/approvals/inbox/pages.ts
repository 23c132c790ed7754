import type { RunSummary } from '../../client';
import { isEligible, sameIdentity, type AuditEvent } from '../../governance';
import type { PendingApproval, RunStatusView } from '../../workflows/run-types';
import type { VerifiedTrail } from '../run-reads';
import type { DecisionKind, DecisionResult } from '../decide';
import type { Identity } from '../identity';
import { html, page, type Chrome, type SafeHtml } from './html';
import { quotaRow, type QuotaFigure } from './quota-panel';

/** Who is looking at a page, and the token their forms carry. */
export interface Viewer {
  identity: Identity;
  csrf: string;
  /** Password sessions can sign out; bearer sign-in ends at the provider. */
  session: boolean;
}

export function runPath(runId: string): string {
  return `/runs/${encodeURIComponent(runId)}`;
}

export function chrome(viewer: Viewer): Chrome {
  const { identity } = viewer;
  const label = identity.name && identity.name !== identity.id ? `${identity.name} (${identity.id})` : identity.id;
  return { user: { label, csrf: viewer.session ? viewer.csrf : undefined } };
}

export function timeLeft(expiresAt: string, now: number): string {
  const ms = Date.parse(expiresAt) - now;
  if (!Number.isFinite(ms)) return 'unknown';
  if (ms <= 0) return 'expired';
  const s = Math.floor(ms / 1000);
  const [d, h, m] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60)];
  if (d > 0) return `${d}d ${h}h left`;
  if (h > 0) return `${h}h ${m}m left`;
  if (m > 0) return `${m}m ${s % 60}s left`;
  return `${s}s left`;
}

function when(iso: string): string {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : iso;
}

function compact(value: unknown, max = 400): string {
  const text = JSON.stringify(value) ?? '';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Why this viewer's decision would be refused, if the inbox can tell in advance. The run still decides. */
function eligibilityNote(approval: PendingApproval, identity: Identity): string | null {
  // The same rules the run applies (`judgeDecision`), from the same functions.
  if (sameIdentity(approval.requester, identity.id)) return `You requested this run, so someone else must decide (four-eyes).`;
  if (!isEligible(identity.id, identity.groups, approval.approvers)) return `You are not among the approvers (${approval.approvers.join(', ')}); the run will refuse your decision.`;
  if (approval.approvals.some((v) => sameIdentity(v.approver, identity.id))) return 'You have approved this call already.';
  return null;
}

/** One approval, with `quota` (where the quota that asked for it stands now) when a quota asked. */
export function approvalCard(approval: PendingApproval, agent: string, viewer: Viewer, now: number, quota?: QuotaFigure): SafeHtml {
  const note = eligibilityNote(approval, viewer.identity);
  const left = timeLeft(approval.expiresAt, now);
  return html`<article class="card approval" id="${approval.approvalId}" data-run-id="${approval.runId}" data-approval-id="${approval.approvalId}">
<h3><code>${approval.tool}</code><span class="muted">by agent ${agent}</span><span class="badge ${left === 'expired' ? 'expired' : 'warn'}">${left}</span>${approval.paused ? html`<span class="badge paused">run paused</span>` : ''}</h3>
<dl>
<dt>Run</dt><dd><a href="${runPath(approval.runId)}">${approval.runId}</a></dd>
${approval.delegatedBy ? html`<dt>Delegated by</dt><dd class="delegated-by">agent ${approval.delegatedBy.agent} · <a href="${runPath(approval.delegatedBy.runId)}">${approval.delegatedBy.runId}</a></dd>` : ''}
<dt>Requested by</dt><dd>${approval.requester}${approval.tenant !== undefined ? html` <span class="muted tenant">for tenant ${approval.tenant}</span>` : ''}</dd>
<dt>Rule</dt><dd><code>${approval.ruleId}</code> — ${approval.reason}</dd>
${quota ? quotaRow(quota) : ''}
<dt>Approvers</dt><dd>${approval.approvers.join(', ')}${approval.quorum > 1 ? ` · ${approval.approvals.length} of ${approval.quorum} approvals so far` : ''}${approval.escalated ? ' · escalated' : ''}</dd>
<dt>Asked</dt><dd>${when(approval.createdAt)} · deadline ${when(approval.expiresAt)}</dd>
</dl>
<pre class="args">${JSON.stringify(approval.args, null, 2)}</pre>
${note ? html`<p class="note">${note}</p>` : ''}
<form method="post" action="/decide">
<input type="hidden" name="csrf" value="${viewer.csrf}"><input type="hidden" name="runId" value="${approval.runId}"><input type="hidden" name="approvalId" value="${approval.approvalId}">
<textarea name="note" aria-label="Comment" placeholder="Comment (optional). With a rejection, the agent reads it as the reason."></textarea>
<div class="actions"><button class="approve" type="submit" name="decision" value="approve">Approve</button><button class="reject" type="submit" name="decision" value="reject">Reject</button></div>
</form>
</article>`;
}

export interface InboxItem {
  run: RunSummary;
  approvals: PendingApproval[];
}

export function inboxPage(viewer: Viewer, items: InboxItem[], failures: { runId: string; message: string }[], now: number, quotas: ReadonlyMap<string, QuotaFigure> = new Map()): string {
  const cards = items.flatMap((item) => item.approvals.map((a) => approvalCard(a, item.run.agent, viewer, now, quotas.get(a.approvalId))));
  return page(
    'Pending approvals',
    chrome(viewer),
    html`<h1>Pending approvals <span class="badge">${cards.length}</span></h1>
${cards.length === 0 ? html`<p class="muted">Nothing is waiting for a decision.</p>` : cards}
${failures.map((f) => (f.runId ? html`<p class="note">Run <a href="${runPath(f.runId)}">${f.runId}</a>: ${f.message}</p>` : html`<p class="note">${f.message}</p>`))}`,
  );
}

const BUDGET_ROWS: [label: string, used: keyof RunStatusView['budget']['used'] | null, limit: string, left: string][] = [
  ['Steps', 'steps', 'maxSteps', 'steps'],
  ['Tool calls', 'toolCalls', 'maxToolCalls', 'toolCalls'],
  ['Input tokens', 'inputTokens', 'maxInputTokens', 'inputTokens'],
  ['Output tokens', 'outputTokens', 'maxOutputTokens', 'outputTokens'],
  ['Cost (USD)', 'costUsd', 'maxCostUsd', 'costUsd'],
  ['Wall time', null, 'maxWallTime', 'wallTimeMs'],
];

function figure(value: unknown): string {
  if (value === undefined || value === null) return '—';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(4);
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function budgetTable(status: RunStatusView): SafeHtml {
  const limits = status.budget.limits as Record<string, unknown>;
  const rows = BUDGET_ROWS.map(([label, used, limit, left]) => {
    const leftValue = status.budget.left[left];
    return html`<tr><td>${label}</td><td>${used ? figure(status.budget.used[used]) : '—'}</td><td>${figure(limits[limit])}</td><td>${
      left === 'wallTimeMs' && leftValue !== undefined ? `${Math.max(0, Math.round(leftValue / 1000))}s` : figure(leftValue)
    }</td></tr>`;
  });
  return html`<table class="budgets"><thead><tr><th>Budget</th><th>Used</th><th>Limit</th><th>Left</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** The runs this one handed tasks to; each links to its own page, which lists its own. */
function delegationTable(status: RunStatusView): SafeHtml {
  return html`<table class="delegations"><thead><tr><th>Call</th><th>Agent</th><th>Run</th><th>Status</th></tr></thead><tbody>${(status.delegations ?? []).map(
    (d) =>
      html`<tr data-delegate-run="${d.runId}"><td><code>${d.callId}</code></td><td>${d.agent}</td><td>${d.status === 'not_started' ? d.runId : html`<a href="${runPath(d.runId)}">${d.runId}</a>`}</td><td><span class="badge ${d.status === 'completed' ? 'ok' : d.status === 'running' ? 'warn' : 'bad'}">${d.status}</span> ${d.reason ?? ''}</td></tr>`,
  )}</tbody></table>`;
}

export function auditTable(trail: readonly AuditEvent[]): SafeHtml {
  if (trail.length === 0) return html`<p class="muted">No audit events found.</p>`;
  return html`<table class="audit"><thead><tr><th>#</th><th>Time</th><th>Event</th><th>Details</th></tr></thead><tbody>${trail.map(
    (e) => html`<tr><td>${e.seq}</td><td>${when(e.at)}</td><td><code>${e.type}</code></td><td class="data">${compact(e.data)}</td></tr>`,
  )}</tbody></table>`;
}

export interface RunPageData {
  runId: string;
  status: RunStatusView | null;
  statusError?: string;
  pending: PendingApproval[];
  trail: VerifiedTrail;
  /** Where the quotas that asked for pending approvals stand, by approval id. */
  quotas?: ReadonlyMap<string, QuotaFigure>;
}

export function runPage(viewer: Viewer, data: RunPageData, now: number): string {
  const { status } = data;
  const outcome = status?.outcome;
  const summary = status
    ? html`<div class="card"><dl>
<dt>Agent</dt><dd>${status.agent}</dd>
${status.delegatedBy ? html`<dt>Delegated by</dt><dd class="delegated-by">agent ${status.delegatedBy.agent} · <a href="${runPath(status.delegatedBy.runId)}">${status.delegatedBy.runId}</a> (call <code>${status.delegatedBy.callId}</code>)</dd>` : ''}
<dt>Requested by</dt><dd>${status.requester}${status.tenant !== undefined ? html` <span class="muted tenant">for tenant ${status.tenant}</span>` : ''}</dd>
<dt>Phase</dt><dd>${status.phase}${status.paused ? ' (paused)' : ''}</dd>
<dt>Step</dt><dd>${status.step}</dd>
<dt>Now</dt><dd>${status.currentDetails}</dd>
<dt>Policy</dt><dd><code>${status.policyVersion}</code></dd>
${status.shadow ? html`<dt>Shadow policy</dt><dd data-shadow-diffs="${String(status.shadow.diffs)}">${status.shadow.version ? html`<code>${status.shadow.version}</code>: ${String(status.shadow.diffs)} of ${String(status.shadow.calls)} call(s) decided differently` : html`not loaded: ${status.shadow.error ?? ''}`}</dd>` : ''}
${outcome ? html`<dt>Outcome</dt><dd><span class="badge ${outcome.status === 'completed' ? 'ok' : 'bad'}">${outcome.status}</span> ${outcome.reason}</dd>` : ''}
</dl></div>
<h2>Budgets</h2>${budgetTable(status)}
${status.delegations?.length ? html`<h2>Delegations</h2>${delegationTable(status)}` : ''}`
    : html`<p class="note">Status unavailable: ${data.statusError ?? 'unknown'}</p>`;
  return page(
    data.runId,
    chrome(viewer),
    html`<h1>Run <code>${data.runId}</code></h1>
${summary}
<h2>Pending approvals</h2>
${data.pending.length === 0 ? html`<p class="muted">None.</p>` : data.pending.map((a) => approvalCard(a, status?.agent ?? '', viewer, now, data.quotas?.get(a.approvalId)))}
<h2>Audit trail</h2>
${data.trail.verified ? html`<p class="muted">Verified: every hash and link, and the head Temporal holds.</p>${auditTable(data.trail.events)}` : html`<p class="note bad" data-trail="unverified">This trail failed verification and is not shown: ${data.trail.problem}</p>`}`,
  );
}

export const HISTORY_OUTCOMES = ['approved', 'rejected', 'expired', 'refused'] as const;
export type HistoryOutcome = (typeof HISTORY_OUTCOMES)[number];

export interface HistoryRow {
  at: string;
  runId: string;
  approvalId: string;
  tool: string;
  outcome: HistoryOutcome;
  by: string;
  channel: string;
  note: string;
}

/** Decisions of one run's trail: decided, refused and expired approvals, with tool, channel and note. */
export function historyRows(runId: string, trail: readonly AuditEvent[]): HistoryRow[] {
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const tools = new Map<string, string>();
  const accepted = new Map<string, AuditEvent[]>();
  for (const e of trail) {
    const id = str(e.data.approvalId);
    if (e.type === 'approval_requested') tools.set(id, str(e.data.tool));
    if (e.type === 'approval_accepted' || e.type === 'rejection_accepted') accepted.set(id, [...(accepted.get(id) ?? []), e]);
  }
  const rows: HistoryRow[] = [];
  for (const e of trail) {
    const approvalId = str(e.data.approvalId);
    const base = { at: e.at, runId, approvalId, tool: tools.get(approvalId) ?? '' };
    if (e.type === 'approval_decided') {
      const votes = accepted.get(approvalId) ?? [];
      rows.push({
        ...base,
        outcome: e.data.decision === 'rejected' ? 'rejected' : 'approved',
        by: str(e.data.by),
        channel: [...new Set(votes.map((v) => str(v.data.channel)))].join(', '),
        note: votes.map((v) => str(v.data.note)).filter(Boolean).join(' · '),
      });
    } else if (e.type === 'approval_refused') {
      rows.push({ ...base, outcome: 'refused', by: str(e.data.approver), channel: str(e.data.channel), note: str(e.data.reason) });
    } else if (e.type === 'approval_expired') {
      rows.push({ ...base, outcome: 'expired', by: '', channel: '', note: 'no decision before the deadline' });
    }
  }
  return rows;
}

export function historyPage(viewer: Viewer, rows: HistoryRow[], outcome: HistoryOutcome | null, failures: number): string {
  const filter = (label: string, value: HistoryOutcome | null) =>
    html`<a class="${outcome === value ? 'on' : ''}" href="${value ? `/history?outcome=${value}` : '/history'}">${label}</a>`;
  const table =
    rows.length === 0
      ? html`<p class="muted">No decisions${outcome ? ` with outcome ${outcome}` : ''} in recent runs.</p>`
      : html`<table class="history"><thead><tr><th>Time</th><th>Outcome</th><th>Tool</th><th>By</th><th>Channel</th><th>Note</th><th>Run</th></tr></thead><tbody>${rows.map(
          (r) => html`<tr data-approval-id="${r.approvalId}"><td>${when(r.at)}</td><td><span class="badge ${r.outcome}">${r.outcome}</span></td><td><code>${r.tool}</code></td><td>${r.by}</td><td>${r.channel}</td><td>${r.note}</td><td><a href="${runPath(r.runId)}">${r.runId}</a></td></tr>`,
        )}</tbody></table>`;
  return page(
    'Decisions',
    chrome(viewer),
    html`<h1>Decisions</h1>
<nav class="filters">${filter('All', null)}${HISTORY_OUTCOMES.map((o) => filter(o[0]?.toUpperCase() + o.slice(1), o))}</nav>
${table}
${failures > 0 ? html`<p class="note">${failures} run(s) could not be read and are left out.</p>` : ''}`,
  );
}

export function decisionPage(viewer: Viewer, kind: DecisionKind, runId: string, approvalId: string, result: DecisionResult): string {
  const tone = result.status === 'accepted' ? (kind === 'approve' ? 'ok' : 'bad') : result.status === 'refused' ? 'bad' : 'warn';
  const title =
    result.status === 'accepted'
      ? kind === 'approve'
        ? 'Approved'
        : 'Rejected'
      : result.status === 'refused'
        ? 'Refused'
        : result.status === 'not_pending'
          ? 'No longer pending'
          : result.status === 'unavailable'
            ? 'Run unavailable'
            : 'Sent, not confirmed yet';
  return page(
    title,
    chrome(viewer),
    html`<div class="card result ${tone}" data-status="${result.status}"><h1>${title}</h1><p class="outcome">${result.message}</p>
<p class="muted">Approval <code>${approvalId}</code> · run <a href="${runPath(runId)}">${runId}</a></p></div>
<p><a href="/">Back to the inbox</a></p>`,
  );
}

export function loginPage(options: { next: string; error?: string; bearer: boolean }): string {
  if (options.bearer) {
    return page(
      'Sign in',
      {},
      html`<div class="card"><h1>Sign in</h1><p>This inbox signs people in through the organisation's identity provider: requests must carry a valid bearer token.</p>${
        options.error ? html`<p class="error">${options.error}</p>` : ''
      }</div>`,
    );
  }
  return page(
    'Sign in',
    {},
    html`<form class="login card" method="post" action="/login"><h1>Sign in</h1>
${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ''}
<input type="hidden" name="next" value="${options.next}">
<label for="username">User</label><input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button class="primary" type="submit">Sign in</button></form>`,
  );
}

export function messagePage(title: string, message: string, viewer?: Viewer): string {
  return page(title, viewer ? chrome(viewer) : {}, html`<div class="card result warn"><h1>${title}</h1><p>${message}</p><p><a href="/">Back to the inbox</a></p></div>`);
}
