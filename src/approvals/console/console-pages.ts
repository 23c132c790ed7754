import type { RunStatusView, CompensationStep } from '../../workflows/run-types';
import type { KillSwitchRecord } from '../../store/kill-switches';
import type { WhatIfReport } from '../../governance';
import { SafeHtml, html, page, type Chrome } from '../inbox/html';
import type { Viewer } from '../inbox/pages';
import type { ChartSpec } from './fleet-charts';
import { RUN_STATUSES, type RunListFilter, type RunListItem } from './run-listing';
import { compact, duration, type TimelineEntry } from './timeline';

/** What the console lets this person do; the server checks again on every POST. */
export interface Powers {
  operator: boolean;
  /** Who counts as an operator, for the refusal and the page's note (`group:operators`). */
  operators: readonly string[];
}

export const RUN_ACTIONS = ['pause', 'resume', 'cancel', 'rollback'] as const;
export type RunAction = (typeof RUN_ACTIONS)[number];

export function consoleRunPath(runId: string): string {
  return `/console/runs/${encodeURIComponent(runId)}`;
}

function chrome(viewer: Viewer): Chrome {
  const { identity } = viewer;
  const label = identity.name && identity.name !== identity.id ? `${identity.name} (${identity.id})` : identity.id;
  return { user: { label, csrf: viewer.session ? viewer.csrf : undefined } };
}

function when(iso: string | Date | null | undefined): string {
  if (!iso) return '—';
  const t = typeof iso === 'string' ? Date.parse(iso) : iso.getTime();
  return Number.isFinite(t) ? new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : String(iso);
}

const TABS = [
  ['runs', 'Runs', '/console/runs'],
  ['charts', 'Fleet charts', '/console/charts'],
  ['agents', 'Kill switches', '/console/agents'],
  ['policies', 'Apply a policy', '/console/policies'],
] as const;

/** A console page: the inbox's frame, the console's stylesheet and tabs, then the content. */
function consolePage(title: string, viewer: Viewer, tab: string, body: SafeHtml, extra: SafeHtml | string = ''): string {
  return page(
    title,
    chrome(viewer),
    html`<link rel="stylesheet" href="/console/assets/console.css">
<nav class="console">${TABS.map(([id, label, href]) => html`<a class="${tab === id ? 'on' : ''}" href="${href}">${label}</a>`)}</nav>
${body}${extra}`,
  );
}

function badgeTone(status: string): string {
  if (status === 'completed') return 'ok';
  if (['failed', 'budget_exhausted', 'terminated', 'cancelled'].includes(status)) return 'bad';
  if (['awaiting_approval', 'paused', 'rolled_back'].includes(status)) return 'warn';
  return '';
}

export function runsPage(viewer: Viewer, filter: RunListFilter, listing: { runs: RunListItem[]; next: string | null } | { error: string }, nextHref: (token: string) => string): string {
  const f = (name: keyof RunListFilter, label: string, placeholder = '') =>
    html`<label>${label}<input name="${name}" value="${filter[name] ?? ''}" placeholder="${placeholder}"></label>`;
  const form = html`<form class="filters" method="get" action="/console/runs">
${f('agent', 'Agent')}
<label>Status<select name="status"><option value="">any</option>${RUN_STATUSES.map((s) => html`<option value="${s}" ${filter.status === s ? html`selected` : ''}>${s}</option>`)}</select></label>
${f('tenant', 'Tenant')}${f('requester', 'Requester')}${f('from', 'Started from', 'YYYY-MM-DD')}${f('to', 'Started before', 'YYYY-MM-DD')}
<button type="submit">Filter</button></form>
<form class="filters" method="get" action="/console/runs"><label>Run id<input name="run" placeholder="warden/agent/key" size="40"></label><button type="submit">Open run</button></form>`;
  let table: SafeHtml;
  if ('error' in listing) table = html`<p class="note" data-list-error>Could not list runs: ${listing.error}</p>`;
  else if (listing.runs.length === 0) table = html`<p class="muted">No runs match.</p>`;
  else
    table = html`<table class="runs"><thead><tr><th>Run</th><th>Agent</th><th>Status</th><th>Requester</th><th>Tenant</th><th>Started</th><th>Steps</th><th>Tool calls</th><th>Tokens</th><th>Cost (USD)</th><th>Last event</th></tr></thead><tbody>${listing.runs.map(
      (r) =>
        html`<tr data-run-id="${r.runId}"><td><a href="${consoleRunPath(r.runId)}">${r.runId}</a></td><td>${r.agent}</td><td><span class="badge ${badgeTone(r.status)}">${r.status}</span></td><td>${r.requester}</td><td>${r.tenant}</td><td>${when(r.startTime)}</td>${
          r.digest
            ? html`<td class="steps">${r.digest.steps}</td><td class="tool-calls">${r.digest.toolCalls}</td><td>${r.digest.inputTokens + r.digest.outputTokens}</td><td class="cost">${r.digest.costUsd.toFixed(6)}</td><td><code>${r.digest.lastType}</code></td>`
            : html`<td colspan="5" class="muted">not in the run store</td>`
        }</tr>`,
    )}</tbody></table>
<div class="pager">${listing.next ? html`<a class="next" href="${nextHref(listing.next)}">Next page →</a>` : html`<span class="muted">Last page.</span>`}</div>`;
  return consolePage('Runs', viewer, 'runs', html`<h1>Runs</h1>${form}${table}`);
}

export interface TimelinePageData {
  runId: string;
  status: RunStatusView | null;
  statusError?: string;
  verification: { ok: true; events: number; head: string; unanchored?: number } | { ok: false; problem: string };
  entries: TimelineEntry[];
  parent?: { runId: string; agent: string };
  tree: DelegationNode[];
  temporalUi?: string;
  killSwitch: KillSwitchRecord | null;
}

export interface DelegationNode {
  runId: string;
  agent: string;
  status?: string;
  children: DelegationNode[];
}

function treeHtml(nodes: readonly DelegationNode[]): SafeHtml {
  if (nodes.length === 0) return html``;
  return html`<ul class="tree">${nodes.map(
    (n) => html`<li data-delegate-run="${n.runId}"><a href="${consoleRunPath(n.runId)}">${n.runId}</a> · agent ${n.agent}${n.status ? html` · <span class="badge ${badgeTone(n.status)}">${n.status}</span>` : ''}${treeHtml(n.children)}</li>`,
  )}</ul>`;
}

/** Which controls a run's state allows. */
export function allowedActions(status: RunStatusView | null): RunAction[] {
  if (!status || status.outcome || status.phase === 'finished') return [];
  const out: RunAction[] = [status.paused ? 'resume' : 'pause', 'cancel'];
  if (status.phase !== 'rolling_back') out.push('rollback');
  return out;
}

const ACTION_LABEL: Record<RunAction, string> = { pause: 'Pause', resume: 'Resume', cancel: 'Cancel', rollback: 'Roll back' };

function confirmHref(runId: string, action: RunAction): string {
  return `/console/confirm?${new URLSearchParams({ runId, action }).toString()}`;
}

export function timelinePage(viewer: Viewer, powers: Powers, data: TimelinePageData): string {
  const { status } = data;
  const v = data.verification;
  const verify = v.ok
    ? html`<div class="card verify ok" data-verified="true"><strong>Trail verified</strong>: ${v.events} events, every hash and link, head <code>${v.head.slice(0, 16)}</code> anchored in Temporal${
        v.unanchored ? ` (${v.unanchored} event(s) past the anchor, not vouched for yet)` : ''
      }. <a href="${consoleRunPath(data.runId)}?verify=1">Verify again</a></div>`
    : html`<div class="card verify bad" data-verified="false"><strong>Trail failed verification</strong>: ${v.problem}. The trail is not shown.</div>`;
  const actions = allowedActions(status);
  const controls = powers.operator
    ? actions.length > 0
      ? html`<div class="controls" data-controls>${actions.map((a) => html`<a class="${a === 'cancel' || a === 'rollback' ? 'danger' : ''}" data-action="${a}" href="${confirmHref(data.runId, a)}">${ACTION_LABEL[a]}</a>`)}</div>`
      : html`<p class="muted">The run has ended: no controls.</p>`
    : html`<p class="muted" data-no-controls>Pausing, resuming, cancelling and rolling back need the operator role (${powers.operators.join(', ')}).</p>`;
  const summary = status
    ? html`<dl>
<dt>Agent</dt><dd>${status.agent}</dd><dt>Requester</dt><dd>${status.requester}${status.requesterVerified ? ' (verified)' : ' (unverified)'}</dd>
<dt>Status</dt><dd><span class="badge ${badgeTone(status.outcome?.status ?? (status.paused ? 'paused' : ''))}" data-status>${status.outcome ? status.outcome.status : status.paused ? 'paused' : status.phase}</span> ${status.currentDetails}</dd>
<dt>Steps</dt><dd>${status.budget.used.steps} · ${status.budget.used.toolCalls} tool call(s) · $${status.budget.used.costUsd.toFixed(6)}</dd>
<dt>Policy version</dt><dd><code>${status.policyVersion}</code></dd>
</dl>`
    : html`<p class="note">The run does not answer: ${data.statusError ?? 'unknown'}</p>`;
  const kill = data.killSwitch?.engaged
    ? html`<p class="note">Agent ${data.killSwitch.agent} is stopped by its kill switch (${data.killSwitch.by}: ${data.killSwitch.reason}); new runs are refused.</p>`
    : '';
  const delegation =
    data.parent || data.tree.length > 0
      ? html`<h2>Delegation</h2><div class="card delegation">${
          data.parent ? html`<p class="delegated-by">Delegated by agent ${data.parent.agent} · <a href="${consoleRunPath(data.parent.runId)}">${data.parent.runId}</a></p>` : ''
        }${data.tree.length > 0 ? html`<p>Delegated to:</p>${treeHtml(data.tree)}` : ''}</div>`
      : '';
  const timeline =
    data.entries.length === 0
      ? html`<p class="muted">No events to show.</p>`
      : html`<ol class="timeline">${data.entries.map(
          (e) => html`<li class="${e.tone} ${e.kind}" data-type="${e.type}" data-seq="${e.seq}"><div class="head"><span class="kind">${e.kind}</span><strong>${e.title}</strong><span class="muted">#${e.seq} · ${when(e.at)}</span>${
            e.run ? html`<a href="${consoleRunPath(e.run.runId)}">${e.run.label}</a>` : ''
          }</div>${e.facts.length > 0 ? html`<dl>${e.facts.map(([k, val]) => html`<dt>${k}</dt><dd>${val}</dd>`)}</dl>` : ''}</li>`,
        )}</ol>`;
  return consolePage(
    `Run ${data.runId}`,
    viewer,
    'runs',
    html`<h1>Run <code>${data.runId}</code></h1>
<div class="card">${summary}${kill}
<p>${data.temporalUi ? html`<a class="temporal-ui" href="${data.temporalUi}">Open in the Temporal UI</a> · ` : ''}<a href="/runs/${encodeURIComponent(data.runId)}">Inbox page</a></p>
${controls}</div>
${verify}${delegation}
<h2>Timeline</h2>${timeline}`,
  );
}

export function confirmPage(viewer: Viewer, runId: string, action: RunAction, plan: { steps: CompensationStep[] } | { error: string } | null): string {
  const what: Record<RunAction, string> = {
    pause: 'The run stops before its next model or tool call and waits until an operator resumes it. The pause is signed with your name and recorded in its trail.',
    resume: 'The run goes on from where it was paused. The command is signed with your name; the run counts it only if its worker trusts this inbox to assert the operator role.',
    cancel:
      "Temporal cancels the run: it stops, records its end as cancelled, and runs nothing further. A cancellation cannot carry a signature: Temporal's own permission on the namespace is the authority, and the trail records the end, not who asked.",
    rollback: 'The run undoes the calls it executed, newest first, with their compensations (listed below), and ends as rolled back. Signed with your name and recorded in its trail.',
  };
  const planHtml =
    action !== 'rollback' || !plan
      ? ''
      : 'error' in plan
        ? html`<p class="note">The rollback plan could not be read: ${plan.error}</p>`
        : plan.steps.length === 0
          ? html`<p class="muted" data-plan="empty">Nothing to undo: no executed call has a compensation.</p>`
          : html`<table class="plan" data-plan="steps"><thead><tr><th>#</th><th>Tool</th><th>Call</th><th>Arguments</th><th>Ran at</th></tr></thead><tbody>${plan.steps.map(
              (s, i) => html`<tr><td>${i + 1}</td><td><code>${s.tool}</code>${s.agent ? ` (agent ${s.agent})` : ''}</td><td>${s.callId}</td><td class="data">${compact(s.shownArgs ?? s.args)}</td><td>${when(s.at)}</td></tr>`,
            )}</tbody></table>`;
  return consolePage(
    `${ACTION_LABEL[action]} run`,
    viewer,
    'runs',
    html`<div class="card"><h1>${ACTION_LABEL[action]} run <code>${runId}</code>?</h1><p>${what[action]}</p>${planHtml}
<form class="confirm" method="post" action="/console/act">
<input type="hidden" name="csrf" value="${viewer.csrf}"><input type="hidden" name="runId" value="${runId}"><input type="hidden" name="action" value="${action}">
${action === 'cancel' ? '' : html`<label>Reason (recorded in the trail)<textarea name="reason"></textarea></label>`}
<div class="actions"><button type="submit" class="primary" data-confirm="${action}">${ACTION_LABEL[action]}</button> <a href="${consoleRunPath(runId)}">Back</a></div></form></div>`,
  );
}

export function resultPage(viewer: Viewer, title: string, tone: 'ok' | 'bad' | 'warn', message: string, back: { href: string; label: string }, detail: SafeHtml | string = ''): string {
  return consolePage(title, viewer, '', html`<div class="card result ${tone}" data-result="${tone}"><h1>${title}</h1><p class="outcome">${message}</p>${detail}<p><a href="${back.href}">${back.label}</a></p></div>`);
}

export function agentsPage(viewer: Viewer, powers: Powers, switches: KillSwitchRecord[]): string {
  const rows =
    switches.length === 0
      ? html`<p class="muted">No kill switch has been engaged.</p>`
      : html`<table class="kill-switches"><thead><tr><th>Agent</th><th>State</th><th>By</th><th>Reason</th><th>Since</th><th></th></tr></thead><tbody>${switches.map(
          (k) =>
            html`<tr data-agent="${k.agent}"><td>${k.agent}</td><td><span class="badge ${k.engaged ? 'bad' : 'ok'}">${k.engaged ? 'engaged: new runs refused' : 'lifted'}</span></td><td>${k.by}</td><td>${k.reason}</td><td>${when(k.at)}</td><td>${
              powers.operator ? html`<a href="/console/agents/confirm?${new URLSearchParams({ agent: k.agent, action: k.engaged ? 'lift' : 'engage' }).toString()}">${k.engaged ? 'Lift' : 'Engage again'}</a>` : ''
            }</td></tr>`,
        )}</tbody></table>`;
  const form = powers.operator
    ? html`<h2>Stop an agent</h2><form class="filters" method="get" action="/console/agents/confirm"><input type="hidden" name="action" value="engage"><label>Agent<input name="agent" required></label><button type="submit">Engage kill switch…</button></form>`
    : html`<p class="muted" data-no-controls>Engaging and lifting a kill switch need the operator role (${powers.operators.join(', ')}).</p>`;
  return consolePage(
    'Kill switches',
    viewer,
    'agents',
    html`<h1>Kill switches</h1><p class="muted">An engaged kill switch pauses every running run of its agent and makes workers refuse new runs of it until it is lifted. Lifting it does not resume the paused runs: resume each one.</p>${rows}${form}`,
  );
}

export function confirmKillPage(viewer: Viewer, agent: string, engage: boolean, running: { runId: string; status: string }[] | { error: string }): string {
  const list =
    'error' in running
      ? html`<p class="note">The running runs could not be listed: ${running.error}</p>`
      : running.length === 0
        ? html`<p class="muted">No run of ${agent} is running now.</p>`
        : html`<p>These ${running.length} run(s) will be paused:</p><ul class="to-pause">${running.map((r) => html`<li><a href="${consoleRunPath(r.runId)}">${r.runId}</a> (${r.status})</li>`)}</ul>`;
  return consolePage(
    engage ? 'Engage kill switch' : 'Lift kill switch',
    viewer,
    'agents',
    html`<div class="card"><h1>${engage ? 'Stop' : 'Let go'} agent <code>${agent}</code>?</h1>
<p>${engage ? 'Workers refuse every new run of this agent until the switch is lifted, and every running run of it is paused (signed with your name).' : 'Workers accept new runs of this agent again. Paused runs stay paused until someone resumes them.'}</p>
${engage ? list : ''}
<form class="confirm" method="post" action="/console/agents/${engage ? 'engage' : 'lift'}">
<input type="hidden" name="csrf" value="${viewer.csrf}"><input type="hidden" name="agent" value="${agent}">
<label>Reason (recorded)<textarea name="reason" required></textarea></label>
<div class="actions"><button type="submit" class="primary" data-confirm="${engage ? 'engage' : 'lift'}">${engage ? 'Engage kill switch' : 'Lift kill switch'}</button> <a href="/console/agents">Back</a></div></form></div>`,
  );
}

export interface ChartsForm {
  agent: string;
  tenant: string;
  range: string;
  bucket: 'hour' | 'day';
  from: string;
  to: string;
}

export const CHART_RANGES = { '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 } as const;

export function chartsPage(viewer: Viewer, form: ChartsForm, charts: ChartSpec[] | { error: string }): string {
  const controls = html`<form class="filters" method="get" action="/console/charts">
<label>Agent<input name="agent" value="${form.agent}"></label><label>Tenant<input name="tenant" value="${form.tenant}"></label>
<label>Range<select name="range">${Object.keys(CHART_RANGES).map((r) => html`<option value="${r}" ${form.range === r ? html`selected` : ''}>last ${r}</option>`)}</select></label>
<label>Per<select name="bucket"><option value="hour" ${form.bucket === 'hour' ? html`selected` : ''}>hour</option><option value="day" ${form.bucket === 'day' ? html`selected` : ''}>day</option></select></label>
<button type="submit">Show</button></form>
<p class="muted">From ${when(form.from)} to ${when(form.to)}, UTC buckets, read from the run store's audit events.</p>`;
  if ('error' in charts) return consolePage('Fleet charts', viewer, 'charts', html`<h1>Fleet charts</h1>${controls}<p class="note">${charts.error}</p>`);
  const fmt = (c: ChartSpec, v: number) => (c.id === 'cost' ? `$${v.toFixed(6)}` : c.id === 'approval-wait' ? duration(v * 1000) : String(v));
  // The numbers travel as a JSON data block: the browser never runs it, the console's script reads it.
  const data = JSON.stringify(charts).replace(/</g, '\\u003c');
  return consolePage(
    'Fleet charts',
    viewer,
    'charts',
    html`<link rel="stylesheet" href="/console/assets/uPlot.min.css"><h1>Fleet charts</h1>${controls}
<div class="charts">${charts.map(
      (c) =>
        html`<section class="chart" data-chart="${c.id}"><h3>${c.title} <span class="muted">(${c.unit})</span></h3><p class="totals">${c.labels.map(
          (l, i) => html`<span data-series="${l}" data-total="${c.totals[i] ?? 0}">${l}: ${fmt(c, c.totals[i] ?? 0)}${i < c.labels.length - 1 ? ' · ' : ''}</span>`,
        )}</p><div class="plot" id="chart-${c.id}"></div></section>`,
    )}</div>`,
    html`<script type="application/json" id="fleet-data">${new SafeHtml(data)}</script><script src="/console/assets/uPlot.iife.min.js"></script><script src="/console/assets/charts.js"></script>`,
  );
}

export function policyFormPage(viewer: Viewer, policyAdmins: readonly string[], canApply: boolean, text = '', error?: string): string {
  const body = canApply
    ? html`<form class="confirm card" method="post" action="/console/policies/preview">
<input type="hidden" name="csrf" value="${viewer.csrf}">
<p>Paste the policy (YAML or JSON). The console first decides every call of the agent's recent runs again under it (what-if), and shows what would change; nothing is stored until you apply it.</p>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<textarea name="policy" rows="16" required>${text}</textarea>
<div class="actions"><button type="submit" class="primary">Show what would change…</button></div></form>`
    : html`<p class="muted" data-no-controls>Applying a policy needs the policy-admin role (${policyAdmins.join(', ')}).</p>`;
  return consolePage('Apply a policy', viewer, 'policies', html`<h1>Apply a policy</h1>${body}`);
}

export function whatIfPage(viewer: Viewer, text: string, version: string, report: WhatIfReport, running: number, days: number): string {
  const kinds = Object.entries(report.byKind).filter(([, n]) => n > 0);
  return consolePage(
    'What would change',
    viewer,
    'policies',
    html`<div class="card"><h1>Policy <code>${version}</code> for agent ${report.agent}</h1>
<p data-what-if>Over ${report.runs} run(s) of the last ${days} days (${report.calls} recorded call(s)): ${report.unchanged} decided the same, ${report.diffs.length} differently.</p>
${kinds.length > 0 ? html`<ul class="what-if-kinds">${kinds.map(([k, n]) => html`<li data-kind="${k}"><strong>${k}</strong>: ${n}</li>`)}</ul>` : ''}
${
  report.byRule.length > 0
    ? html`<table class="what-if"><thead><tr><th>Change</th><th>Rule before</th><th>Rule after</th><th>Calls</th></tr></thead><tbody>${report.byRule.map(
        (r) => html`<tr><td>${r.kind}</td><td><code>${r.from}</code></td><td><code>${r.to}</code></td><td>${r.count}</td></tr>`,
      )}</tbody></table>`
    : ''
}
${report.diffs.length > 0 ? html`<h2>Calls that would be decided differently</h2><table class="what-if-calls"><thead><tr><th>Run</th><th>Tool</th><th>Before</th><th>After</th></tr></thead><tbody>${report.diffs.slice(0, 50).map(
      (d) => html`<tr><td><a href="${consoleRunPath(d.runId)}">${d.runId}</a></td><td><code>${d.tool}</code></td><td>${d.before.decision} (${d.before.ruleId})</td><td>${d.after.decision} (${d.after.ruleId})</td></tr>`,
    )}</tbody></table>` : ''}
${report.missing.length > 0 ? html`<p class="muted">Facts the trails lack: ${report.missing.map((m) => `${m.fact} (${m.calls} call(s))`).join('; ')}.</p>` : ''}
<form class="confirm" method="post" action="/console/policies/apply">
<input type="hidden" name="csrf" value="${viewer.csrf}"><input type="hidden" name="version" value="${version}"><textarea name="policy" hidden>${text}</textarea>
<p>Applying stores it as agent ${report.agent}'s policy for new runs, and tells its ${running} running run(s) to take it up (signed with your name).</p>
<div class="actions"><button type="submit" class="primary" data-confirm="apply">Apply policy ${version}</button> <a href="/console/policies">Back</a></div></form></div>`,
  );
}
