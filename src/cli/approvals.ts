import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { decideApproval, type DecisionKind, type DecisionResult } from '../approvals/decide';
import { DecisionSigner, loadSigningKey } from '../approvals/keys';
import type { WardenClient } from '../client';
import { ignoredApprovalsLines } from '../client/run-memo';
import type { RunStore } from '../store';
import type { PendingApproval } from '../workflows/types';
import { QUERY_MS, currentUser, wardenHome, withClient, withClientAndStore } from './context';
import { CliError, describeError } from './errors';
import { approvalsTable, out, outJson, printable } from './format';

/** How long `approve`/`reject` watch the run's audit trail for its answer. */
const CONFIRM_MS = 5_000;

/**
 * A decision typed at the terminal: the person `--as` names, vouched for by the CLI's key. The
 * worker counts it only if that key may assert that person, and takes their groups from the key's
 * directory; `groups` is what the person says they are in, refused if the key does not grant it.
 */
export interface CliDecision {
  runId: string;
  approvalId: string;
  kind: DecisionKind;
  approver: string;
  groups?: string[];
  /** The approver's comment (approve) or reason (reject). */
  note?: string;
}

/**
 * Sends a decision from the CLI through `decideApproval`, the path every channel takes (channel
 * `cli`): it checks the approval is pending, signs, signals, and reads the run's verdict back.
 * Used by `warden approve`, `warden reject` and the demo.
 */
export function sendDecision(client: WardenClient, store: RunStore, signer: DecisionSigner, req: CliDecision): Promise<DecisionResult> {
  return decideApproval(
    { client, store, signer, confirmWithinMs: CONFIRM_MS },
    { runId: req.runId, approvalId: req.approvalId, decision: req.kind, identity: { id: req.approver, groups: req.groups ?? [] }, note: req.note, channel: 'cli' },
  );
}

const KEY_ENV = { cli: 'WARDEN_SIGNING_KEY', web: 'WARDEN_WEB_SIGNING_KEY', slack: 'WARDEN_SLACK_SIGNING_KEY' } as const;

/**
 * A channel's signing key: `--key`, else its environment variable (`WARDEN_SIGNING_KEY` for the
 * CLI, `WARDEN_WEB_SIGNING_KEY`, `WARDEN_SLACK_SIGNING_KEY`), else `<home>/keys/<channel>.json`
 * (made by `warden dev`). Workers count a decision only if they trust the key that signed it.
 */
export function resolveSigningKey(keyFile: string | undefined, channel: keyof typeof KEY_ENV): { signer: DecisionSigner; file: string } {
  const variable = KEY_ENV[channel];
  const file = keyFile ?? process.env[variable] ?? path.join(wardenHome(), 'keys', `${channel}.json`);
  if (!keyFile && !process.env[variable] && !existsSync(file)) {
    const which = channel === 'cli' ? 'signing key' : `${channel} signing key`;
    throw new CliError(`no ${which}: pass --key FILE, set ${variable}, or run 'warden dev' once to create ${file}`);
  }
  try {
    return { signer: new DecisionSigner(loadSigningKey(file)), file };
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err));
  }
}

/** The CLI's own signer (`resolveSigningKey` for channel `cli`). */
export function resolveSigner(keyFile?: string): DecisionSigner {
  return resolveSigningKey(keyFile, 'cli').signer;
}

/**
 * The CLI's signer where one is set up, else null: for commands that work without a key but
 * mean less (`warden run` starts an unverified run). A key that was asked for (a flag or
 * `WARDEN_SIGNING_KEY`) and cannot be read is still an error: silence would hide a typo.
 */
export function optionalSigner(keyFile?: string): DecisionSigner | null {
  if (!keyFile && !process.env[KEY_ENV.cli] && !existsSync(path.join(wardenHome(), 'keys', 'cli.json'))) return null;
  return resolveSigner(keyFile);
}

/** The line that tells what happened to a decision; throws (exit 1) when the run refused it, did not answer, or nothing was sent. */
export function reportDecision(req: Pick<CliDecision, 'runId' | 'approvalId' | 'kind' | 'approver'>, result: DecisionResult): string {
  // Reasons, states and names are read back from the run: printable, like all run data.
  const runId = printable(req.runId);
  const approvalId = printable(req.approvalId);
  const approver = printable(req.approver);
  switch (result.status) {
    case 'refused':
      throw new CliError(`${req.kind} refused by run ${runId}: ${printable(result.reason)}`);
    case 'unconfirmed':
      throw new CliError(`${req.kind} sent to ${runId}, but the run did not confirm it within ${CONFIRM_MS / 1000}s (is a worker running?); check 'warden audit ${runId}'`);
    case 'not_pending':
    case 'unavailable':
      throw new CliError(`${req.kind} not sent: ${printable(result.message)}`);
    case 'accepted': {
      const verb = req.kind === 'approve' ? 'approval' : 'rejection';
      if (!result.decided) return `${verb} of ${approvalId} accepted from ${approver}; more approvals are needed before the call runs`;
      const state = printable(result.state ?? (req.kind === 'approve' ? 'approved' : 'rejected'));
      return `${verb} of ${approvalId} accepted from ${approver}: the call is now ${state}${result.by ? ` (by ${printable(result.by)})` : ''}`;
    }
  }
}

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
        out(`approve with: warden approve <run> <approval> --as <you>   (you: ${currentUser()}; your signing key must be allowed to assert you)`);
      });
    });
  registerDecision(program, 'approve');
  registerDecision(program, 'reject');
}
