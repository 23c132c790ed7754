import type { Command } from 'commander';
import { withClientAndStore } from './context';
import { CliError } from './cli-errors';
import { auditLines, out, outJson, printable } from './format';
import { checkAudit, verifiedLine } from './support/audit-check';

export function registerAudit(program: Command): void {
  program
    .command('audit')
    .description("Print a run's audit trail (run store plus the run's live tail); --verify recomputes its hash chain")
    .argument('<runId>', 'run id, e.g. warden/refund-agent/1234')
    .option('--json', 'print the events as JSON')
    .option('--verify', 'recompute the hash chain; exit 1 naming the first broken event')
    .action(async (runId: string, opts: { json?: boolean; verify?: boolean }) => {
      await withClientAndStore(async (client, store) => {
        const check = await checkAudit(client, store, runId);
        if (opts.json) outJson({ runId, events: check.events, ...(opts.verify ? { verification: check.result } : {}) });
        else auditLines(check.events).forEach((l) => out(l));
        if (!opts.verify) return;
        if (!check.result.ok) throw new CliError(`audit chain of ${printable(runId)} is BROKEN at seq ${check.result.seq}: ${printable(check.result.reason)}`);
        if (!opts.json) out(verifiedLine(check));
      });
    });
}
