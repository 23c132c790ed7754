/* eslint-disable @typescript-eslint/no-require-imports -- command modules are required on demand: see COMMAND_MODULES */
import { Command } from 'commander';
import type * as DevModule from './dev';
import type * as DemoModule from './demo';
import type * as RunsModule from './runs';
import type * as ApprovalsModule from './approvals';
import type * as InboxModule from './inbox';
import type * as SlackModule from './slack';
import type * as OperateModule from './operate';
import type * as AuditModule from './audit';
import type * as PolicyModule from './policy';
import type * as KeysModule from './keys';

type Register = (program: Command) => void;

/**
 * Which module registers which top-level commands, in the order `warden --help` lists them. A
 * command line names one command, so only its module (and what that module needs) is loaded: the
 * Temporal worker, the AI SDK, Slack's bolt and the inbox stay unloaded for `warden status`. Only
 * `warden --help` (or no command) loads them all. test/package.test.ts checks this table against
 * what each module registers.
 */
export const COMMAND_MODULES: readonly { commands: readonly string[]; load: () => Register }[] = [
  { commands: ['dev', 'worker'], load: () => (require('./dev') as typeof DevModule).registerDev },
  { commands: ['demo'], load: () => (require('./demo') as typeof DemoModule).registerDemo },
  { commands: ['run', 'status', 'cancel'], load: () => (require('./runs') as typeof RunsModule).registerRuns },
  { commands: ['approve', 'reject', 'approvals'], load: () => (require('./approvals') as typeof ApprovalsModule).registerApprovals },
  { commands: ['inbox'], load: () => (require('./inbox') as typeof InboxModule).registerInbox },
  { commands: ['slack'], load: () => (require('./slack') as typeof SlackModule).registerSlack },
  { commands: ['pause', 'resume', 'rollback'], load: () => (require('./operate') as typeof OperateModule).registerOperations },
  { commands: ['audit'], load: () => (require('./audit') as typeof AuditModule).registerAudit },
  { commands: ['policy'], load: () => (require('./policy') as typeof PolicyModule).registerPolicy },
  { commands: ['keys'], load: () => (require('./keys') as typeof KeysModule).registerKeys },
];

/** The first argument that is not an option: the command a command line names, if any. */
function commandOf(args: readonly string[]): string | undefined {
  return args.find((a) => !a.startsWith('-'));
}

/**
 * The `warden` command. `args` (the arguments after the script) picks the commands to register:
 * the one they name, or every command when they name none or one this table does not know (so
 * commander's help and "unknown command" messages list them all).
 */
export function createProgram(args?: readonly string[]): Command {
  const program = new Command('warden')
    .description('Durable, governed AI agent runs on Temporal')
    .showHelpAfterError('(run with --help for usage)')
    // Usage errors reach main() as CommanderError instead of exiting inside commander, so the exit code is ours (2).
    .exitOverride();
  const named = args ? commandOf(args) : undefined;
  const one = named === undefined ? undefined : COMMAND_MODULES.find((m) => m.commands.includes(named));
  for (const module of one ? [one] : COMMAND_MODULES) module.load()(program);
  return program;
}
