import { Hono, type Context } from 'hono';
import type { Logger } from 'pino';
import type { WardenClient } from '../../client';
import { CompiledPolicy, isEligible, parsePolicyText, recordedRun, whatIf, type AuditEvent, type Policy } from '../../governance';
import type { RunStore } from '../../store/run-store';
import type { RunStatusView } from '../../workflows/run-types';
import { HttpError } from '../http-error';
import type { Identity } from '../identity';
import { html } from '../inbox/html';
import type { InboxEnv, InboxGuards } from '../inbox/inbox-guards';
import { seeOther, sendPage } from '../inbox/page-headers';
import { QUERY_TIMEOUT_MS, describeFailure, within } from '../run-reads';
import type { DecisionSigner } from '../signing-keys';
import { consoleHeaders, sendAsset } from './console-assets';
import {
  CHART_RANGES,
  RUN_ACTIONS,
  agentsPage,
  allowedActions,
  chartsPage,
  confirmKillPage,
  confirmPage,
  consoleRunPath,
  resultPage,
  runsPage,
  timelinePage,
  type ChartsForm,
  type DelegationNode,
  type Powers,
  type RunAction,
  policyFormPage,
  whatIfPage,
} from './console-pages';
import { fleetCharts } from './fleet-charts';
import { listRunPage, type RunListFilter } from './run-listing';
import { delegationLinks, timelineOf } from './timeline';

/** How the console is set up in the inbox server. */
export interface ConsoleOptions {
  /**
   * Who may use the operator controls (pause, resume, cancel, roll back, kill switches), named as
   * policies name approvers: `group:operators`, `user:alice`. Default `['group:operators']`.
   * Workers count the signed commands only if they trust the inbox's key with the `operator` role.
   */
  operators?: readonly string[];
  /** Who may apply a policy (what-if first), named the same way. Default `['group:policy-admins']`; workers need the inbox's key trusted with the `policy-admin` role. */
  policyAdmins?: readonly string[];
  /** How far back the what-if before applying a policy reads runs. Default 7 days, at most 200 runs. */
  whatIfDays?: number;
  /** The Temporal UI's address (`http://localhost:8233`): each run page links to the run there. */
  temporalUiUrl?: string;
  /** Runs per page of the list. Default 50. */
  pageSize?: number;
  /** How long a control waits to see the run take it up. Default 3 s. */
  confirmWithinMs?: number;
}

export interface ConsoleRouteOptions extends ConsoleOptions {
  client: WardenClient;
  store?: RunStore;
  signer: DecisionSigner;
  guards: InboxGuards;
  logger: Logger;
}

const LIST_TIMEOUT_MS = 10_000;
const DELEGATION_DEPTH = 4;

/** The run id in `/console/runs/<id>`, decoded from the path as sent (ids hold slashes). */
function runIdOf(c: Context, prefix: string): string {
  let runId: string;
  try {
    runId = decodeURIComponent(new URL(c.req.url).pathname.slice(prefix.length));
  } catch {
    throw new HttpError(400, 'Malformed run id in the address.');
  }
  if (!runId) throw new HttpError(404, 'Not found.');
  return runId;
}

const isAction = (v: string | null | undefined): v is RunAction => (RUN_ACTIONS as readonly string[]).includes(v ?? '');

/**
 * The operations console, under `/console`: runs across the fleet (Temporal visibility, figures
 * from the run store), a run's verified trail as a timeline, fleet charts, and the operator
 * controls (pause, resume, cancel, roll back, an agent's kill switch). Same sign-in, sessions,
 * CSRF and origin rules as the inbox; controls only for operators, checked on every POST.
 */
export function consoleRoutes(options: ConsoleRouteOptions): Hono<InboxEnv> {
  const { client, store, signer, guards, logger } = options;
  const operators = options.operators ?? ['group:operators'];
  const pageSize = options.pageSize ?? 50;
  const confirmWithinMs = options.confirmWithinMs ?? 3000;
  const routes = new Hono<InboxEnv>();
  routes.use('/console', consoleHeaders);
  routes.use('/console/*', consoleHeaders);

  const policyAdmins = options.policyAdmins ?? ['group:policy-admins'];
  const whatIfDays = options.whatIfDays ?? 7;
  const isOperator = (identity: Identity) => isEligible(identity.id, identity.groups, operators);
  const isPolicyAdmin = (identity: Identity) => isEligible(identity.id, identity.groups, policyAdmins);
  const requirePolicyAdmin = (identity: Identity) => {
    if (!isPolicyAdmin(identity)) throw new HttpError(403, `Applying a policy needs the policy-admin role (${policyAdmins.join(', ')}), which ${identity.id} does not have. Nothing was done.`);
  };
  const powersOf = (identity: Identity): Powers => ({ operator: isOperator(identity), operators });
  /** The server's own check: a control is refused (403, naming the role) to anyone who is not an operator, whatever the page showed. */
  const requireOperator = (identity: Identity, doing: string) => {
    if (!isOperator(identity)) throw new HttpError(403, `${doing} needs the operator role (${operators.join(', ')}), which ${identity.id} does not have. Nothing was done.`);
  };
  const needStore = (what: string): RunStore => {
    if (!store) throw new HttpError(503, `${what} needs the run store, and this inbox was started without one.`);
    return store;
  };

  routes.get('/console', guards.page, (c) => seeOther(c, '/console/runs'));

  routes.get('/console/assets/:name', (c) => sendAsset(c, c.req.param('name')) ?? sendPage(c, 404, 'Not found.'));

  routes.get('/console/runs', guards.page, async (c) => {
    const viewer = c.get('viewer');
    const search = c.req.query('run')?.trim();
    if (search) return seeOther(c, consoleRunPath(search));
    const filter: RunListFilter = {};
    for (const key of ['agent', 'status', 'tenant', 'requester', 'from', 'to'] as const) {
      const value = c.req.query(key)?.trim();
      if (value) filter[key] = value;
    }
    const token = c.req.query('page') || undefined;
    let listing;
    try {
      listing = await within(client, LIST_TIMEOUT_MS, () => listRunPage(client, store, filter, token, pageSize));
    } catch (err) {
      if (HttpError.isInstance(err)) throw err;
      listing = { error: describeFailure(err) };
    }
    const nextHref = (next: string) => `/console/runs?${new URLSearchParams({ ...filter, page: next }).toString()}`;
    return sendPage(c, 200, runsPage(viewer, filter, listing, nextHref));
  });

  /** The runs a run delegated to, and theirs, from the store (their ids and agents only). */
  async function delegationTree(trail: readonly AuditEvent[], depth: number): Promise<DelegationNode[]> {
    const { children } = delegationLinks(trail);
    return Promise.all(
      children.map(async (child) => {
        const childTrail = depth < DELEGATION_DEPTH && store ? await store.readAudit(child.runId).catch(() => []) : [];
        return { ...child, children: childTrail.length > 0 ? await delegationTree(childTrail, depth + 1) : [] };
      }),
    );
  }

  routes.get('/console/runs/:id{.+}', guards.page, async (c) => {
    const viewer = c.get('viewer');
    const runId = runIdOf(c, '/console/runs/');
    const [status, check] = await Promise.allSettled([
      within(client, QUERY_TIMEOUT_MS, () => client.status(runId)),
      within(client, QUERY_TIMEOUT_MS + 5000, () => client.verifyAuditTrail(runId, store)),
    ]);
    const current = status.status === 'fulfilled' ? status.value : null;
    const verified = check.status === 'fulfilled' && check.value.ok ? check.value : null;
    if (!current && !verified && (check.status === 'rejected' || check.value.events.length === 0)) {
      return sendPage(c, 404, resultPage(viewer, 'No such run', 'warn', `Run ${runId} was not found, or it does not answer (${describeFailure(status.status === 'rejected' ? status.reason : '')}).`, { href: '/console/runs', label: 'Back to the runs' }));
    }
    const verification = verified
      ? { ok: true as const, events: verified.events.length, head: verified.head?.hash ?? '', unanchored: verified.unanchored }
      : { ok: false as const, problem: check.status === 'rejected' ? describeFailure(check.reason) : `event ${check.value.problemSeq ?? '?'}: ${check.value.problem ?? 'verification failed'}` };
    // Only a verified trail is drawn: a trail that fails is reported, never shown as the record.
    const events = verified?.events ?? [];
    const agent = current?.agent ?? (events.find((e) => e.type === 'run_started')?.data.agent as string | undefined) ?? '';
    const data = {
      runId,
      status: current,
      statusError: status.status === 'rejected' ? describeFailure(status.reason) : undefined,
      verification,
      entries: timelineOf(events),
      ...(delegationLinks(events).parent ? { parent: delegationLinks(events).parent } : {}),
      tree: await delegationTree(events, 1),
      temporalUi: options.temporalUiUrl ? `${options.temporalUiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(client.client.options.namespace)}/workflows/${encodeURIComponent(runId)}` : undefined,
      killSwitch: agent && store ? await store.killSwitch(agent) : null,
    };
    return sendPage(c, 200, timelinePage(viewer, powersOf(viewer.identity), data));
  });

  routes.get('/console/confirm', guards.page, async (c) => {
    const viewer = c.get('viewer');
    const runId = c.req.query('runId') ?? '';
    const action = c.req.query('action');
    if (!runId || !isAction(action)) throw new HttpError(400, `A control needs a run and an action: ${RUN_ACTIONS.join(', ')}.`);
    requireOperator(viewer.identity, `To ${action} a run`);
    const plan = action === 'rollback' ? await within(client, QUERY_TIMEOUT_MS, () => client.rollbackPlan(runId)).then((steps) => ({ steps }), (err: unknown) => ({ error: describeFailure(err) })) : null;
    return sendPage(c, 200, confirmPage(viewer, runId, action, plan));
  });

  /** Whether the run shows it took up `action`, or why it refused it, within the wait. */
  async function confirmTaken(runId: string, action: RunAction, sentAt: string): Promise<{ taken: true } | { refused: string } | { unconfirmed: true }> {
    const deadline = Date.now() + confirmWithinMs;
    const took = (s: RunStatusView) =>
      action === 'pause' ? s.paused : action === 'resume' ? !s.paused : action === 'cancel' ? s.outcome?.status === 'cancelled' : s.phase === 'rolling_back' || s.outcome?.status === 'rolled_back';
    for (;;) {
      const s = await within(client, QUERY_TIMEOUT_MS, () => client.status(runId)).catch(() => null);
      if (s && took(s)) return { taken: true };
      if (action !== 'cancel') {
        const trail = await within(client, QUERY_TIMEOUT_MS, () => client.auditTrail(runId, store)).catch(() => [] as AuditEvent[]);
        const refused = trail.find((e) => (e.type === 'operator_refused' || e.type === 'resume_refused') && e.at >= sentAt);
        if (refused) return { refused: typeof refused.data.reason === 'string' ? refused.data.reason : 'refused' };
      }
      if (Date.now() >= deadline) return { unconfirmed: true };
      await new Promise((r) => setTimeout(r, 150));
    }
  }

  routes.post('/console/act', guards.post, async (c) => {
    const viewer = c.get('viewer');
    const form = c.get('form');
    const runId = form.get('runId') ?? '';
    const action = form.get('action');
    if (!runId || !isAction(action)) throw new HttpError(400, `A control needs a run and an action: ${RUN_ACTIONS.join(', ')}.`);
    requireOperator(viewer.identity, `To ${action} a run`);
    const reason = form.get('reason')?.trim() || undefined;
    const by = viewer.identity.id;
    const back = { href: consoleRunPath(runId), label: 'Back to the run' };
    const current = await within(client, QUERY_TIMEOUT_MS, () => client.status(runId)).catch(() => null);
    if (current && !allowedActions(current).includes(action)) {
      return sendPage(c, 409, resultPage(viewer, 'Not sent', 'warn', `Run ${runId} cannot be ${action === 'rollback' ? 'rolled back' : `${action}d`} now (${current.outcome ? `it ended: ${current.outcome.status}` : current.paused ? 'it is paused' : `it is ${current.phase}`}). Nothing was sent.`, back));
    }
    if (action === 'resume' && current && store) {
      const kill = await store.killSwitch(current.agent);
      if (kill?.engaged) return sendPage(c, 409, resultPage(viewer, 'Not sent', 'warn', `Agent ${current.agent} is stopped by its kill switch (${kill.reason}); lift it before resuming its runs. Nothing was sent.`, back));
    }
    const sentAt = new Date().toISOString();
    const command = { by, reason, signer, channel: 'web' };
    try {
      await within(client, QUERY_TIMEOUT_MS, () =>
        action === 'pause' ? client.pause(runId, command) : action === 'resume' ? client.resume(runId, command) : action === 'rollback' ? client.rollback(runId, command) : client.cancel(runId),
      );
    } catch (err) {
      return sendPage(c, 503, resultPage(viewer, 'Not sent', 'bad', `Could not send ${action} to run ${runId}: ${describeFailure(err)}.`, back));
    }
    logger.info({ runId, action, by, reason }, 'console operator command');
    const seen = await confirmTaken(runId, action, sentAt);
    if ('refused' in seen) return sendPage(c, 200, resultPage(viewer, 'Refused by the run', 'bad', `The run refused the ${action}: ${seen.refused}`, back));
    if ('unconfirmed' in seen) return sendPage(c, 200, resultPage(viewer, 'Sent, not confirmed yet', 'warn', `The ${action} was sent; the run has not shown it yet. Check the run page in a moment.`, back));
    const done: Record<RunAction, string> = { pause: 'Paused', resume: 'Resumed', cancel: 'Cancelled', rollback: 'Rolling back' };
    return sendPage(c, 200, resultPage(viewer, done[action], 'ok', `Run ${runId}: ${done[action].toLowerCase()}${action === 'cancel' ? '' : `, signed as ${by}, recorded in its trail`}.`, back));
  });

  routes.get('/console/agents', guards.page, async (c) => {
    const viewer = c.get('viewer');
    const switches = await needStore('The kill switches').listKillSwitches();
    return sendPage(c, 200, agentsPage(viewer, powersOf(viewer.identity), switches));
  });

  const agentOf = (value: string | null | undefined): string => {
    const agent = (value ?? '').trim();
    if (!agent || !/^[A-Za-z0-9._-]{1,100}$/.test(agent)) throw new HttpError(400, 'Name the agent: letters, digits, dot, dash and underscore, 100 characters at most.');
    return agent;
  };
  const runningOf = async (agent: string) =>
    (await within(client, LIST_TIMEOUT_MS, () => client.listRuns({ agent, open: true }))).map((r) => ({ runId: r.runId, status: r.status }));

  routes.get('/console/agents/confirm', guards.page, async (c) => {
    const viewer = c.get('viewer');
    const agent = agentOf(c.req.query('agent'));
    const action = c.req.query('action');
    if (action !== 'engage' && action !== 'lift') throw new HttpError(400, 'A kill switch is engaged or lifted.');
    requireOperator(viewer.identity, `To ${action} a kill switch`);
    const running = action === 'engage' ? await runningOf(agent).catch((err: unknown) => ({ error: describeFailure(err) })) : [];
    return sendPage(c, 200, confirmKillPage(viewer, agent, action === 'engage', running));
  });

  routes.post('/console/agents/:change{engage|lift}', guards.post, async (c) => {
    const viewer = c.get('viewer');
    const engage = c.req.param('change') === 'engage';
    const form = c.get('form');
    const agent = agentOf(form.get('agent'));
    requireOperator(viewer.identity, `To ${engage ? 'engage' : 'lift'} a kill switch`);
    const reason = form.get('reason')?.trim() ?? '';
    if (!reason) throw new HttpError(400, `Say why the kill switch is ${engage ? 'engaged' : 'lifted'}: the reason is recorded with it.`);
    const by = viewer.identity.id;
    const back = { href: '/console/agents', label: 'Back to the kill switches' };
    // The switch first: a run that starts while the others are being paused is refused already.
    await needStore('A kill switch').setKillSwitch(agent, { engaged: engage, by, reason });
    logger.warn({ agent, by, reason, engaged: engage }, engage ? 'kill switch engaged' : 'kill switch lifted');
    if (!engage) return sendPage(c, 200, resultPage(viewer, 'Kill switch lifted', 'ok', `Workers accept new runs of ${agent} again. Paused runs stay paused until resumed.`, back));
    let running: { runId: string; status: string }[];
    try {
      running = await runningOf(agent);
    } catch (err) {
      return sendPage(c, 200, resultPage(viewer, 'Kill switch engaged', 'warn', `New runs of ${agent} are refused, but its running runs could not be listed (${describeFailure(err)}): pause them from their pages.`, back));
    }
    const results = await Promise.allSettled(
      running.filter((r) => r.status !== 'paused').map((r) => within(client, QUERY_TIMEOUT_MS, () => client.pause(r.runId, { by, reason: `kill switch: ${reason}`, signer, channel: 'web' })).then(() => r.runId)),
    );
    const paused = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = results.length - paused.length;
    const detail = paused.length > 0 ? html`<ul class="paused-runs">${paused.map((id) => html`<li data-run-id="${id}"><a href="${consoleRunPath(id)}">${id}</a></li>`)}</ul>` : '';
    return sendPage(
      c,
      200,
      resultPage(viewer, 'Kill switch engaged', failed > 0 ? 'warn' : 'ok', `New runs of ${agent} are refused. Pause sent to ${paused.length} running run(s)${failed > 0 ? `; ${failed} could not be reached, pause them from their pages` : ''}.`, back, detail),
    );
  });

  routes.get('/console/policies', guards.page, (c) => {
    const viewer = c.get('viewer');
    return sendPage(c, 200, policyFormPage(viewer, policyAdmins, isPolicyAdmin(viewer.identity)));
  });

  /** The policy in the form, validated as the worker validates an applied one; a bad one is shown back with the reason. */
  const policyOf = (text: string): { policy: Policy; version: string } | { error: string } => {
    if (!text.trim()) return { error: 'Paste a policy first.' };
    try {
      const policy = parsePolicyText(text, 'the pasted policy');
      return { policy, version: new CompiledPolicy(policy).version };
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err) };
    }
  };

  routes.post('/console/policies/preview', guards.post, async (c) => {
    const viewer = c.get('viewer');
    requirePolicyAdmin(viewer.identity);
    const text = c.get('form').get('policy') ?? '';
    const parsed = policyOf(text);
    if ('error' in parsed) return sendPage(c, 400, policyFormPage(viewer, policyAdmins, true, text, parsed.error));
    const s = needStore('The what-if');
    const agent = parsed.policy.agent;
    const since = new Date(Date.now() - whatIfDays * 86_400_000);
    const runs = (await within(client, LIST_TIMEOUT_MS, () => client.listRuns({ agent, open: false, startedAfter: since }))).slice(0, 200);
    const trails = await Promise.all(runs.map(async (r) => recordedRun(r.runId, await s.readAudit(r.runId))));
    const report = whatIf(trails, new CompiledPolicy(parsed.policy));
    const running = runs.filter((r) => !['completed', 'failed', 'budget_exhausted', 'cancelled', 'rolled_back', 'terminated'].includes(r.status)).length;
    return sendPage(c, 200, whatIfPage(viewer, text, parsed.version, report, running, whatIfDays));
  });

  routes.post('/console/policies/apply', guards.post, async (c) => {
    const viewer = c.get('viewer');
    requirePolicyAdmin(viewer.identity);
    const form = c.get('form');
    const text = form.get('policy') ?? '';
    const parsed = policyOf(text);
    if ('error' in parsed) return sendPage(c, 400, policyFormPage(viewer, policyAdmins, true, text, parsed.error));
    // What is applied is what the what-if was shown for.
    if (form.get('version') !== parsed.version) throw new HttpError(409, `The policy is not the one the what-if was shown for (${form.get('version') ?? 'none'}, now ${parsed.version}). Nothing was applied: preview it again.`);
    const by = viewer.identity.id;
    const agent = parsed.policy.agent;
    await needStore('Applying a policy').setAppliedPolicy(agent, { policy: parsed.policy, version: parsed.version, source: `console (applied by ${by})` });
    logger.warn({ agent, version: parsed.version, by }, 'policy applied from the console');
    const open = await within(client, LIST_TIMEOUT_MS, () => client.listRuns({ agent, open: true })).catch(() => []);
    const sent = await Promise.allSettled(open.map((r) => within(client, QUERY_TIMEOUT_MS, () => client.applyPolicy(r.runId, { by, signer, channel: 'web' }))));
    const ok = sent.filter((r) => r.status === 'fulfilled').length;
    return sendPage(
      c,
      200,
      resultPage(viewer, 'Policy applied', ok < open.length ? 'warn' : 'ok', `Policy ${parsed.version} is agent ${agent}'s policy for new runs; ${ok} of ${open.length} running run(s) told to take it up (signed as ${by}).`, { href: '/console/policies', label: 'Back' }),
    );
  });

  routes.get('/console/charts', guards.page, async (c) => {
    const viewer = c.get('viewer');
    const rangeName = c.req.query('range') ?? '24h';
    if (!(rangeName in CHART_RANGES)) throw new HttpError(400, `Unknown range "${rangeName}": use ${Object.keys(CHART_RANGES).join(', ')}.`);
    const bucket = c.req.query('bucket') ?? (rangeName === '24h' ? 'hour' : 'day');
    if (bucket !== 'hour' && bucket !== 'day') throw new HttpError(400, `Unknown bucket "${bucket}": use hour or day.`);
    // `to` (an ISO time) pins the range's end, so a page can be linked and reloaded with the same numbers.
    const toParam = c.req.query('to');
    const toMs = toParam ? Date.parse(toParam) : Date.now();
    if (!Number.isFinite(toMs)) throw new HttpError(400, `The end time "${toParam ?? ''}" is not a date.`);
    const form: ChartsForm = {
      agent: c.req.query('agent')?.trim() ?? '',
      tenant: c.req.query('tenant')?.trim() ?? '',
      range: rangeName,
      bucket,
      from: new Date(toMs - CHART_RANGES[rangeName as keyof typeof CHART_RANGES]).toISOString(),
      to: new Date(toMs).toISOString(),
    };
    const range = { from: form.from, to: form.to, bucket, ...(form.agent ? { agent: form.agent } : {}), ...(form.tenant ? { tenant: form.tenant } : {}) } as const;
    const s = needStore('The fleet charts');
    const [activity, waits] = await Promise.all([s.fleetActivity(range), s.approvalWaits(range)]);
    return sendPage(c, 200, chartsPage(viewer, form, fleetCharts(range, activity, waits)));
  });

  return routes;
}
