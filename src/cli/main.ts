import { CommanderError } from 'commander';
import { describeError, exitCodeOf } from './cli-errors';
import { argsToParse, createProgram } from './program';

/** The exit status of a process a closed pipe stopped (128 + SIGPIPE), as shells report `yes | head -1`. */
const CLOSED_PIPE_EXIT = 141;

/**
 * A reader that stopped reading (`warden approvals | head -1`) stops the command there, quietly
 * (no stack trace), with the status a closed pipe gives any Unix tool: a shell ignores it unless
 * `pipefail` is set, and a supervisor does not mistake a worker that lost its log pipe for one
 * that finished. Any other failure to write stdout is thrown as before.
 */
function stopWhenStdoutCloses(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(CLOSED_PIPE_EXIT);
  });
}

/** Runs the CLI: one line on stderr and exit code 1 for an error, 2 for a usage error; stacks only with WARDEN_DEBUG=1. */
export async function main(argv: string[] = process.argv): Promise<void> {
  stopWhenStdoutCloses();
  try {
    const args = argv.slice(2);
    const program = createProgram(args);
    await program.parseAsync(argsToParse(program, args), { from: 'user' });
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
