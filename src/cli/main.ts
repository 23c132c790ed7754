import { CommanderError } from 'commander';
import { describeError, exitCodeOf } from './errors';
import { createProgram } from './program';

/** Runs the CLI: one line on stderr and exit code 1 for an error, 2 for a usage error; stacks only with WARDEN_DEBUG=1. */
export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await createProgram(argv.slice(2)).parseAsync(argv);
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
