import { Hono } from 'hono';
import type { RunStore } from '../../store/run-store';
import { html, page } from './html';
import type { InboxEnv, InboxGuards } from './inbox-guards';
import { sendPage } from './page-headers';
import { chrome } from './pages';
import { fmtAmount as fmt } from './quota-panel';

/**
 * `/quotas` (optionally `?quota=<name>`): every quota counter the run store holds, in its latest
 * window, with what is used and reserved. Limits live in the policies: `warden quota show` prints
 * them; an approval a quota asked for shows its own.
 */
export function quotaRoutes(options: { store?: RunStore; guards: InboxGuards }): Hono<InboxEnv> {
  const routes = new Hono<InboxEnv>();
  routes.get('/quotas', options.guards.page, async (c) => {
    const viewer = c.get('viewer');
    const only = c.req.query('quota');
    const rows = options.store ? await options.store.quotaUsage(only ? { quota: only } : {}) : [];
    // The latest window of each counter: earlier windows are history.
    const latest = new Map<string, (typeof rows)[number]>();
    for (const r of rows) {
      const key = `${r.quota}\u0000${r.counter}`;
      const seen = latest.get(key);
      if (!seen || r.lastAtMs > seen.lastAtMs) latest.set(key, r);
    }
    const shown = [...latest.values()].sort((a, b) => a.quota.localeCompare(b.quota) || b.committed + b.held - (a.committed + a.held));
    const body = html`<h1>Quota usage${only ? html` · <code>${only}</code>` : ''}</h1>
<p class="muted">What each quota counter holds in its latest window: used (calls that ran, spend made) and reserved (calls not settled yet). Limits are in the policies (<code>warden quota show &lt;quota&gt;</code>).</p>
${
  !options.store
    ? html`<p class="note">This inbox has no run store, so it cannot show quota usage.</p>`
    : shown.length === 0
      ? html`<p class="muted">No quota has counted anything${only ? ' under this name' : ''}.</p>`
      : html`<table class="quotas"><thead><tr><th>Quota</th><th>Counter</th><th>Window</th><th>Used</th><th>Reserved</th><th>Last booking</th></tr></thead><tbody>${shown.map(
          (r) =>
            html`<tr data-quota="${r.quota}" data-counter="${r.counter}"><td><code>${r.quota}</code></td><td>${r.counter.includes('|') ? r.counter.slice(r.counter.indexOf('|') + 1) : 'all runs'}</td><td>${r.window}</td><td>${fmt(r.committed)}</td><td>${fmt(r.held)}</td><td>${new Date(r.lastAtMs).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</td></tr>`,
        )}</tbody></table>`
}`;
    return sendPage(c, 200, page('Quota usage', chrome(viewer), body));
  });
  return routes;
}
