import type { Command } from 'commander';
import type { WardenClient } from '../client';
import type { DecisionSigner } from '../approvals/signing-keys';
import type { OperatorInput } from '../workflows/messages';
import { currentUser, withClient } from './context';
import { UsageError } from './cli-errors';
import { out } from './format';
import { optionalSigner } from './support/signers';

type Operation = 'pause' | 'resume' | 'rollback';

const DESCRIPTIONS: Record<Operation, string> = {
  pause: 'Pause a run before its next model or tool call (or every running run of an agent with --agent)',
  resume: 'Resume a paused run (or every running run of an agent with --agent), signed with the CLI key: workers count it only from a key with the operator role that may assert --by',
  rollback: 'Undo what a run did (its compensations, newest first) and end it as rolled_back, signed with the CLI key (operator role)',
};

const PAST: Record<Operation, string> = { pause: 'paused', resume: 'resumed', rollback: 'rollback requested for' };

/** Sends one command, signed with the CLI key when there is one: the workers count resume and rollback only from a key with the operator role. */
function send(client: WardenClient, op: Operation, runId: string, input: OperatorInput, signer: DecisionSigner | null): Promise<void> {
  const command = { ...input, ...(signer ? { signer, channel: 'cli' } : {}) };
  if (op === 'pause') return client.pause(runId, command);
  if (op === 'resume') return client.resume(runId, command);
  return client.rollback(runId, command);
}

interface OperateOptions {
  agent?: string;
  reason?: string;
  by?: string;
}

function register(program: Command, op: Operation): void {
  const cmd = program
    .command(op)
    .description(DESCRIPTIONS[op])
    .argument(op === 'rollback' ? '<runId>' : '[runId]', 'run id')
    .option('--reason <text>', 'why, recorded in the audit trail')
    .option('--by <id>', 'who, recorded in the audit trail (default $USER, else your account name)');
  if (op !== 'rollback') cmd.option('--agent <name>', 'every running run of this agent instead of one run');
  cmd.action(async (runId: string | undefined, opts: OperateOptions) => {
    if (runId && opts.agent) throw new UsageError(`${op}: give a run id or --agent, not both`);
    if (!runId && !opts.agent) throw new UsageError(`${op}: give a run id or --agent <name>`);
    const input: OperatorInput = { by: opts.by ?? currentUser(), ...(opts.reason ? { reason: opts.reason } : {}) };
    const signer = optionalSigner();
    await withClient(async (client) => {
      if (runId) {
        await send(client, op, runId, input, signer);
        return out(`${PAST[op]} ${runId}`);
      }
      const agent = opts.agent ?? '';
      const runs = await client.listRuns({ agent });
      // One run that finished meanwhile must not stop the others from being signalled.
      const results = await Promise.allSettled(runs.map((r) => send(client, op, r.runId, input, signer)));
      const signalled = runs.filter((_, i) => results[i]?.status === 'fulfilled');
      for (const r of signalled) out(`${PAST[op]} ${r.runId}`);
      out(`${op}: signalled ${signalled.length} running run(s) of ${agent}${signalled.length < runs.length ? ` (${runs.length - signalled.length} had finished)` : ''}`);
    });
  });
}

export function registerOperations(program: Command): void {
  register(program, 'pause');
  register(program, 'resume');
  register(program, 'rollback');
}
