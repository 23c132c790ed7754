import type { Command } from 'commander';
import type { WardenClient } from '../client';
import { ignoredApprovalsLines } from '../client/run-memo';
import type { PendingApproval } from '../workflows/run-types';
import { QUERY_MS, loginName, withClient, withClientAndStore } from './context';
import { describeError } from './cli-errors';
import { approvalsTable, out, outJson, printable } from './format';
import { reportDecision, sendDecision, type CliDecision } from './support/decisions';
import { resolveSigner } from './support/signers';

function parseGroups(value?: string): string[] {
  return (value ?? '')
    .split(',')
    .map((g) => g.trim())
    .filter(Boolean);
}

/**
 * Every approval waiting in an open run (awaiting_approval or paused), from one visibility
 * listing: each run's memo holds its pending approvals, so no run is queried (and replayed)
 * unless it predates that memo. Runs whose approvals are not their own are left out, and a note
 * on stderr counts them by reason.
 */
export async function allPendingApprovals(client: WardenClient): Promise<PendingApproval[]> {
  const listing = await client.listPendingApprovals({ queryTimeoutMs: QUERY_MS });
  // One run that cannot be read (its worker is down, it just finished) must not hide the others.
  for (const { runId, error } of listing.failures) process.stderr.write(`note: ${printable(runId)} did not list its approvals: ${printable(describeError(error))}\n`);
  // Counted, not named: a forged run's id is the forger's words.
  for (const line of ignoredApprovalsLines(listing.refused)) process.stderr.write(`note: ${line}\n`);
  return listing.approvals;
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
    .description(
      `${kind === 'approve' ? 'Approve' : 'Reject'} a pending call, signed with the CLI key; the workers count it only if their trusted-keys file lets that key assert --as`,
    )
    .argument('<runId>', 'the run the approval belongs to')
    .argument('<approvalId>', "the approval id, as 'warden approvals' lists it")
    .requiredOption('--as <id>', 'who decides: a person the signing key may assert (a person\'s own key asserts only that person)')
    .option('--groups <list>', 'optional: groups you are in, comma-separated; the worker takes them from the key\'s directory and refuses groups it does not grant')
    .option('--key <file>', 'signing key file (default: $WARDEN_SIGNING_KEY, else .warden/keys/cli.json)');
  if (kind === 'approve') cmd.option('--comment <text>', 'a comment recorded with the approval');
  else cmd.option('--reason <text>', 'why, told to the agent and recorded');
  cmd.action(async (runId: string, approvalId: string, opts: DecideOptions) => {
    const signer = resolveSigner(opts.key);
    const req: CliDecision = { runId, approvalId, kind, approver: opts.as, groups: parseGroups(opts.groups), note: kind === 'approve' ? opts.comment : opts.reason };
    await withClientAndStore(async (client, store) => out(reportDecision(req, await sendDecision(client, store, signer, req))));
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
        const you = loginName();
        out(`approve with: warden approve <run> <approval> --as <you>   (${you ? `you: ${you}` : 'this shell does not say who you are'}; your signing key must be allowed to assert you)`);
      });
    });
  registerDecision(program, 'approve');
  registerDecision(program, 'reject');
}
