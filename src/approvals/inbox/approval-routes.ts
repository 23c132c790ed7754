import { Hono } from 'hono';
import type { Logger } from 'pino';
import type { PendingApprovalsListing, WardenClient } from '../../client';
import { ignoredApprovalsLines } from '../../client/run-memo';
import type { RunStore } from '../../store/run-store';
import { decideApproval } from '../decide';
import { HttpError } from '../http-error';
import type { DecisionSigner } from '../signing-keys';
import { QUERY_TIMEOUT_MS, describeFailure, readVerifiedTrail, within } from '../run-reads';
import type { InboxEnv, InboxGuards } from './inbox-guards';
import { HISTORY_OUTCOMES, decisionPage, historyPage, historyRows, inboxPage, messagePage, runPage, type HistoryOutcome, type InboxItem } from './pages';
import { sendPage } from './page-headers';
import { quotaFigures } from './quota-panel';

/** Listing runs through visibility can take longer than one query on a busy server. */
const LIST_TIMEOUT_MS = 10_000;

export interface ApprovalRouteOptions {
  client: WardenClient;
  store?: RunStore;
  signer: DecisionSigner;
  guards: InboxGuards;
  logger: Logger;
  /** How many recent runs `/history` reads. */
  historyRuns: number;
  confirmWithinMs?: number;
}

/**
 * The pages people decide from: `/` (approvals waiting, across runs), `/runs/<id>` (a run, its
 * budgets and its verified audit trail), `/history` (decisions read from verified trails), and
 * `POST /decide`, which sends a signed decision and reads back what the run made of it.
 */
export function approvalRoutes(options: ApprovalRouteOptions): Hono<InboxEnv> {
  const { client, store, signer, guards, logger } = options;
  const routes = new Hono<InboxEnv>();

  routes.get('/', guards.page, async (c) => {
    const viewer = c.get('viewer');
    // One visibility listing: each waiting run's memo holds its pending approvals (paused runs'
    // too: they still wait, and still count). Only runs from before that memo are queried.
    let listing: PendingApprovalsListing;
    try {
      listing = await within(client, LIST_TIMEOUT_MS, () => client.listPendingApprovals({ queryTimeoutMs: QUERY_TIMEOUT_MS }));
    } catch (err) {
      return sendPage(c, 200, inboxPage(viewer, [], [{ runId: '', message: `Could not list the runs waiting for approval: ${describeFailure(err)}` }], Date.now()));
    }
    // The most urgent first, as the listing orders them.
    const items: InboxItem[] = listing.runs.map(({ run, approvals }) => ({ run, approvals }));
    const failures = listing.failures.map(({ runId, error }) => ({ runId, message: describeFailure(error) }));
    // Counted, not linked: a forged run's id is the forger's words.
    for (const message of ignoredApprovalsLines(listing.refused)) failures.push({ runId: '', message: `${message}.` });
    const quotas = await quotaFigures(client, store, items.flatMap((i) => i.approvals));
    return sendPage(c, 200, inboxPage(viewer, items, failures, Date.now(), quotas));
  });

  routes.get('/runs/:id{.*}', guards.page, async (c) => {
    const viewer = c.get('viewer');
    let runId: string;
    try {
      // Run ids contain slashes: links encode them (`/runs/warden%2Fagent%2Fkey`), typed paths may not.
      // Decoded here from the path as sent, so a malformed escape is an error, not a different id.
      runId = decodeURIComponent(new URL(c.req.url).pathname.slice('/runs/'.length));
    } catch {
      throw new HttpError(400, 'Malformed run id in the address.');
    }
    if (!runId) throw new HttpError(404, 'Not found.');
    const [status, pending] = await Promise.allSettled([
      within(client, QUERY_TIMEOUT_MS, () => client.status(runId)),
      within(client, QUERY_TIMEOUT_MS, () => client.pendingApprovals(runId)),
    ]);
    const current = status.status === 'fulfilled' ? status.value : null;
    const trail = await readVerifiedTrail(client, runId, store).catch((err: unknown) => ({ verified: false as const, problem: describeFailure(err) }));
    if (!current && !trail.verified) {
      return sendPage(c, 404, messagePage('No such run', `Run ${runId} was not found, or it does not answer (${describeFailure(status.status === 'rejected' ? status.reason : '')}).`, viewer));
    }
    const statusError = status.status === 'rejected' ? describeFailure(status.reason) : undefined;
    const waiting = pending.status === 'fulfilled' ? pending.value : [];
    const quotas = await quotaFigures(client, store, waiting);
    return sendPage(c, 200, runPage(viewer, { runId, status: current, statusError, pending: waiting, trail, quotas }, Date.now()));
  });

  routes.get('/history', guards.page, async (c) => {
    const outcomeParam = c.req.query('outcome');
    let outcome: HistoryOutcome | null = null;
    if (outcomeParam) {
      if (!(HISTORY_OUTCOMES as readonly string[]).includes(outcomeParam)) throw new HttpError(400, `Unknown outcome "${outcomeParam}": use ${HISTORY_OUTCOMES.join(', ')}.`);
      outcome = outcomeParam as HistoryOutcome;
    }
    const runs = (await within(client, QUERY_TIMEOUT_MS, () => client.listRuns({ open: false })))
      .sort((a, b) => b.startTime.getTime() - a.startTime.getTime())
      .slice(0, options.historyRuns);
    const trails = await Promise.allSettled(runs.map((run) => readVerifiedTrail(client, run.runId, store)));
    // Only verified trails count: a decision read from a trail that fails verification is not a record.
    const rows = trails
      .flatMap((t, i) => (t.status === 'fulfilled' && t.value.verified && runs[i] ? historyRows(runs[i].runId, t.value.events) : []))
      .filter((r) => !outcome || r.outcome === outcome)
      .sort((a, b) => b.at.localeCompare(a.at));
    return sendPage(c, 200, historyPage(c.get('viewer'), rows, outcome, trails.filter((t) => t.status === 'rejected' || !t.value.verified).length));
  });

  routes.post('/decide', guards.post, async (c) => {
    const viewer = c.get('viewer');
    const form = c.get('form');
    const runId = form.get('runId') ?? '';
    const approvalId = form.get('approvalId') ?? '';
    const decision = form.get('decision');
    if (!runId || !approvalId || (decision !== 'approve' && decision !== 'reject')) throw new HttpError(400, 'A decision needs a run, an approval and approve or reject.');
    const result = await decideApproval(
      { client, store, signer, confirmWithinMs: options.confirmWithinMs },
      { runId, approvalId, decision, identity: viewer.identity, note: form.get('note') ?? undefined, channel: 'web' },
    );
    logger.info({ runId, approvalId, decision, approver: viewer.identity.id, status: result.status }, 'web decision');
    const code = result.status === 'not_pending' ? 409 : result.status === 'unavailable' ? 503 : 200;
    return sendPage(c, code, decisionPage(viewer, decision, runId, approvalId, result));
  });

  return routes;
}
