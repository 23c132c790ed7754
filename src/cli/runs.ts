import path from 'node:path';
import type { Command } from 'commander';
import type { StartRunOptions, WardenClient } from '../client';
import type { ReportedStatus, RunStatusView } from '../workflows/run-types';
import { askRun, currentUser, wardenHome, withClient } from './context';
import { CliError } from './cli-errors';
import { out, outJson, outcomeLines, printable, statusLines, treeLine } from './format';
import { OUTCOME_EXIT_CODES } from './support/exit-codes';
import { readScript } from './support/run-scripts';
import type * as SignersModule from './support/signers';

interface RunOptions {
  goal: string;
  requester?: string;
  tenant?: string;
  key?: string;
  signingKey?: string;
  script?: string;
  wait?: boolean;
  json?: boolean;
}

export function registerRuns(program: Command): void {
  program
    .command('run')
    .description('Start a run of an agent; prints its id (--wait: waits and prints the outcome)')
    .addHelpText(
      'after',
      `\nExit codes with --wait: ${Object.entries(OUTCOME_EXIT_CODES)
        .map(([status, code]) => `${code} ${status}`)
        .join(', ')}; 1 an error, 2 a usage error.`,
    )
    .argument('<agent>', 'agent name, e.g. refund-agent')
    .requiredOption('--goal <text>', 'what the agent is asked to do')
    .option('--requester <id>', 'who asks (cannot approve the run\'s own calls); default $USER, else your account name')
    .option('--tenant <name>', 'the tenant the run works for (quotas, run.tenant); counts only signed with the CLI key, else the worker gives its default')
    .option('--key <key>', 'run key: the run id becomes warden/<agent>/<key> (never reused); default random')
    .option('--signing-key <file>', 'CLI signing key that vouches for --requester (default: $WARDEN_SIGNING_KEY, else .warden/keys/cli.json); without one the run is unverified')
    .option('--script <file>', 'JSON array of turns for the scripted model (offline runs)')
    .option('--wait', 'wait for the outcome and print it')
    .option('--json', 'print JSON')
    .action(async (agent: string, opts: RunOptions) => {
      const script = opts.script ? readScript(opts.script) : undefined;
      // Required here: signing (Ed25519) is for starts only, `warden status` and `cancel` need none of it.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const signer = (require('./support/signers') as typeof SignersModule).optionalSigner(opts.signingKey);
      // The CLI key vouches for the requester as channel `cli`; the worker checks the key may assert them.
      const signing: Pick<StartRunOptions, 'signer' | 'channel'> = signer ? { signer, channel: 'cli' } : {};
      await withClient(async (client) => {
        const runId = await client.startRun({ agent, goal: opts.goal, requester: opts.requester ?? currentUser(), key: opts.key, script, ...signing, ...(opts.tenant !== undefined ? { tenant: opts.tenant } : {}) });
        // After the start, so a start that fails is still one error line.
        if (!signer) process.stderr.write(`note: ${runId} started with an unverified requester (no CLI signing key: --signing-key, WARDEN_SIGNING_KEY or ${path.join(wardenHome(), 'keys', 'cli.json')})\n`);
        if (!opts.wait) return opts.json ? outJson({ runId }) : out(runId);
        if (!opts.json) out(runId);
        const outcome = await client.result(runId);
        if (opts.json) outJson({ runId, outcome });
        else outcomeLines(runId, outcome).forEach((l) => out(l));
        process.exitCode = OUTCOME_EXIT_CODES[outcome.status as ReportedStatus] ?? 1;
      });
    });

  program
    .command('status')
    .description("Show a run's phase, budgets, pending approvals and outcome")
    .argument('<runId>')
    .option('--json', 'print JSON')
    .action(async (runId: string, opts: { json?: boolean }) => {
      await withClient(async (client) => {
        const status = await askRun(client, runId, () => client.status(runId));
        if (opts.json) outJson(status);
        else statusLines(status).forEach((l) => out(l));
        if (!opts.json && status.delegations?.length) {
          out('delegations');
          (await delegationTree(client, status, '  ')).forEach((l) => out(l));
        }
        const shadow = status.shadow;
        if (!opts.json && shadow) {
          const line = shadow.version ? `${printable(shadow.version)} from ${printable(shadow.source)}: ${shadow.diffs} of ${shadow.calls} call(s) decided differently ('warden audit ${printable(runId)}' shows policy_shadow_diff)` : `not loaded: ${printable(shadow.error ?? '')}`;
          out(`${'shadow'.padEnd(13)} ${line}`);
        }
      });
    });

  program
    .command('cancel')
    .description('Cancel a run (Temporal cancellation; the run records outcome cancelled)')
    .argument('<runId>')
    .action(async (runId: string) => {
      await withClient(async (client) => {
        const desc = await client.handle(runId).describe();
        if (desc.status.name !== 'RUNNING') throw new CliError(`run ${runId} has already finished (${desc.status.name.toLowerCase()}); there is nothing to cancel`);
        await client.cancel(runId);
        out(`cancellation requested for ${runId}`);
      });
    });
}

/** How deep `warden status` follows delegations, and how many of one run it lists. */
const TREE_DEPTH = 6;
const TREE_WIDTH = 50;

/** The runs a run delegated to, and theirs, one line each, indented by depth. */
export async function delegationTree(client: WardenClient, status: RunStatusView, indent: string, depth = 1): Promise<string[]> {
  const lines: string[] = [];
  const delegations = status.delegations ?? [];
  for (const d of delegations.slice(0, TREE_WIDTH)) {
    let child: RunStatusView | null = null;
    if (d.status !== 'not_started') child = await client.status(d.runId).catch(() => null);
    const state =
      d.status === 'running' && child && !child.outcome
        ? `${child.paused ? 'paused' : child.phase}: ${child.currentDetails}`
        : `${child?.outcome?.status ?? d.status}${d.reason ? `: ${d.reason}` : ''}`;
    lines.push(treeLine(`${indent}└─ `, d.agent, d.runId, state));
    if (child?.delegations?.length) {
      if (depth >= TREE_DEPTH) lines.push(`${indent}   … (deeper delegations: warden status ${printable(d.runId)})`);
      else lines.push(...(await delegationTree(client, child, `${indent}   `, depth + 1)));
    }
  }
  if (delegations.length > TREE_WIDTH) lines.push(`${indent}… and ${delegations.length - TREE_WIDTH} more`);
  return lines;
}
