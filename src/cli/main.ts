import { Command, CommanderError } from 'commander';
import { registerApprovals } from './approvals';
import { registerAudit } from './audit';
import { registerDemo } from './demo';
import { registerDev } from './dev';
import { describeError, exitCodeOf } from './errors';
import { registerInbox } from './inbox';
import { registerKeys } from './keys';
import { registerOperations } from './operate';
import { registerPolicy } from './policy';
import { registerRuns } from './runs';
import { registerSlack } from './slack';

/** The `warden` command with every subcommand registered. */
export function createProgram(): Command {
  const program = new Command('warden')
    .description('Durable, governed AI agent runs on Temporal')
    .showHelpAfterError('(run with --help for usage)')
    // Usage errors reach main() as CommanderError instead of exiting inside commander, so the exit code is ours (2).
    .exitOverride();
  registerDev(program);
  registerDemo(program);
  registerRuns(program);
  registerApprovals(program);
  registerInbox(program);
  registerSlack(program);
  registerOperations(program);
  registerAudit(program);
  registerPolicy(program);
  registerKeys(program);
  return program;
}

/** Runs the CLI: one line on stderr and exit code 1 for an error, 2 for a usage error; stacks only with WARDEN_DEBUG=1. */
export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await createProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed its message already; help and version are not errors.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    process.stderr.write(`error: ${describeError(err)}\n`);
    if (process.env.WARDEN_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = exitCodeOf(err);
  }
}

void main();
