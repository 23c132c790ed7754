import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { DecisionSigner, loadSigningKey } from '../approvals/keys';
import type { WardenClient } from '../client';
import type { AuditEvent } from '../governance';
import type { RunStore } from '../store';
import type { PendingApproval } from '../workflows/types';
import { QUERY_MS, currentUser, wardenHome, withClient, withClientAndStore } from './context';
import { CliError, describeError } from './errors';
import { approvalsTable, out, outJson } from './format';

/** How long `approve`/`reject` watch the run's audit trail for its answer. */
const CONFIRM_MS = 5_000;
const POLL_MS = 150;

export interface DecisionRequest {
  runId: string;
  approvalId: string;
  kind: 'approve' | 'reject';
  approver: string;
  groups: string[];
  /** The approver's comment (approve) or reason (reject). */
  note?: string;
  signer: DecisionSigner;
  /** How long to wait for the run to say whether it counted the decision. */
  confirmMs?: number;
}

/** What the run did with a decision, read back from its audit trail. */
export type DecisionResult =
  | { status: 'accepted'; approver: string; decided: string | null; by: string | null }
  | { status: 'refused'; reason: string }
  | { status: 'unconfirmed' };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function lastSeq(events: AuditEvent[]): number {
  return events[events.length - 1]?.seq ?? 0;
}

/**
 * Signs a decision with the CLI's key, sends it to the run, and reads the run's audit trail until
 * it shows the decision accepted or refused. A signal never answers its sender; the run's audit
 * events about this approval id, recorded after the signal, are the answer.
 * Used by `warden approve`, `warden reject` and the demo.
 */
export async function sendDecision(client: WardenClient, store: RunStore, req: DecisionRequest): Promise<DecisionResult> {
  // Every read is bounded: a run whose worker is down answers no query, and auditTrail then gives the stored events.
  const read = (until: number) => client.client.connection.withDeadline(Math.max(until, Date.now() + 500), () => client.auditTrail(req.runId, store));
  const before = lastSeq(await read(Date.now() + QUERY_MS));
  const signature = req.signer.sign({ approvalId: req.approvalId, runId: req.runId, decision: req.kind, approver: req.approver, groups: req.groups, channel: 'cli' });
  const common = { approvalId: req.approvalId, approver: req.approver, groups: req.groups, channel: 'cli', signature };
  if (req.kind === 'approve') await client.approve(req.runId, { ...common, ...(req.note ? { comment: req.note } : {}) });
  else await client.reject(req.runId, { ...common, ...(req.note ? { reason: req.note } : {}) });

  const deadline = Date.now() + (req.confirmMs ?? CONFIRM_MS);
  for (;;) {
    const events = (await read(deadline)).filter((e) => e.seq > before && e.data.approvalId === req.approvalId);
    const refused = events.find((e) => e.type === 'approval_refused');
    if (refused) return { status: 'refused', reason: typeof refused.data.reason === 'string' ? refused.data.reason : 'refused' };
    const accepted = events.find((e) => e.type === 'approval_accepted');
    if (accepted) {
      const decided = events.find((e) => e.type === 'approval_decided');
      return {
        status: 'accepted',
        approver: typeof accepted.data.approver === 'string' ? accepted.data.approver : req.approver,
        decided: typeof decided?.data.decision === 'string' ? decided.data.decision : null,
        by: typeof decided?.data.by === 'string' ? decided.data.by : null,
      };
    }
    if (Date.now() >= deadline) return { status: 'unconfirmed' };
    await sleep(POLL_MS);
  }
}

/** The CLI's signing key: `--key`, else `$WARDEN_SIGNING_KEY`, else `<home>/keys/cli.json` (made by `warden dev`). */
export function resolveSigner(keyFile?: string): DecisionSigner {
  const file = keyFile ?? process.env.WARDEN_SIGNING_KEY ?? path.join(wardenHome(), 'keys', 'cli.json');
  if (!keyFile && !process.env.WARDEN_SIGNING_KEY && !existsSync(file)) {
    throw new CliError(`no signing key: pass --key FILE, set WARDEN_SIGNING_KEY, or run 'warden dev' once to create ${file}`);
  }
  try {
    return new DecisionSigner(loadSigningKey(file));
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err));
  }
}

/** The line that tells what happened to a decision; throws (exit 1) when the run refused it or did not answer. */
export function reportDecision(req: Pick<DecisionRequest, 'runId' | 'approvalId' | 'kind'>, result: DecisionResult): string {
  if (result.status === 'refused') throw new CliError(`${req.kind} refused by run ${req.runId}: ${result.reason}`);
  if (result.status === 'unconfirmed') {
    throw new CliError(`${req.kind} sent to ${req.runId}, but the run did not confirm it within ${CONFIRM_MS / 1000}s (is a worker running?); check 'warden audit ${req.runId}'`);
  }
  const verb = req.kind === 'approve' ? 'approval' : 'rejection';
  if (result.decided) return `${verb} of ${req.approvalId} accepted from ${result.approver}: the call is now ${result.decided}${result.by ? ` (by ${result.by})` : ''}`;
  return `${verb} of ${req.approvalId} accepted from ${result.approver}; more approvals are needed before the call runs`;
}

function parseGroups(value?: string): string[] {
  return (value ?? '')
    .split(',')
    .map((g) => g.trim())
    .filter(Boolean);
}

/** Every approval waiting in an open run, found through visibility (runs whose status is awaiting_approval). */
export async function allPendingApprovals(client: WardenClient): Promise<PendingApproval[]> {
  const runs = await client.listRuns({ status: 'awaiting_approval' });
  const lists = await Promise.all(
    runs.map((r) =>
      client.client.connection
        .withDeadline(Date.now() + QUERY_MS, () => client.pendingApprovals(r.runId))
        .catch((err: unknown) => {
          // One run that does not answer (its worker is down, it just finished) must not hide the others.
          process.stderr.write(`note: ${r.runId} did not list its approvals: ${describeError(err)}\n`);
          return [] as PendingApproval[];
        }),
    ),
  );
  return lists.flat().sort((a, b) => a.expiresAt.localeCompare(b.expiresAt));
}

interface DecideOptions {
  as: string;
  groups?: string;
  key?: string;
  comment?: string;
  reason?: string;
}

function registerDecision(program: Command, kind: 'approve' | 'reject'): void {
  const cmd = program
    .command(kind)
    .description(kind === 'approve' ? 'Approve a pending call (signed with the CLI key)' : 'Reject a pending call (signed with the CLI key)')
    .argument('<runId>', 'the run the approval belongs to')
    .argument('<approvalId>', "the approval id, as 'warden approvals' lists it")
    .requiredOption('--as <id>', 'who decides (the approver the policy names as user:<id>, or a member of its groups)')
    .option('--groups <list>', 'groups the approver belongs to, comma-separated (e.g. finance)')
    .option('--key <file>', 'signing key file (default: $WARDEN_SIGNING_KEY, else .warden/keys/cli.json)');
  if (kind === 'approve') cmd.option('--comment <text>', 'a comment recorded with the approval');
  else cmd.option('--reason <text>', 'why, told to the agent and recorded');
  cmd.action(async (runId: string, approvalId: string, opts: DecideOptions) => {
    const signer = resolveSigner(opts.key);
    const req: DecisionRequest = { runId, approvalId, kind, approver: opts.as, groups: parseGroups(opts.groups), note: kind === 'approve' ? opts.comment : opts.reason, signer };
    await withClientAndStore(async (client, store) => out(reportDecision(req, await sendDecision(client, store, req))));
  });
}

export function registerApprovals(program: Command): void {
  program
    .command('approvals')
    .description('List the approvals waiting in every open run')
    .option('--json', 'print them as JSON')
    .action(async (opts: { json?: boolean }) => {
      await withClient(async (client) => {
        const approvals = await allPendingApprovals(client);
        if (opts.json) return outJson(approvals);
        if (approvals.length === 0) return out('no approvals waiting');
        approvalsTable(approvals).forEach((l) => out(l));
        out();
        out(`approve with: warden approve <run> <approval> --as <you> [--groups g1,g2]   (you: ${currentUser()})`);
      });
    });
  registerDecision(program, 'approve');
  registerDecision(program, 'reject');
}
