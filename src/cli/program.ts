/* eslint-disable @typescript-eslint/no-require-imports -- command modules are required on demand: see COMMAND_MODULES */
import { Command, Help } from 'commander';
import { CliError } from './cli-errors';
import type * as DevModule from './dev';
import type * as DemoModule from './demo';
import type * as RunsModule from './runs';
import type * as ApprovalsModule from './approvals';
import type * as InboxModule from './inbox';
import type * as SlackModule from './slack';
import type * as OperateModule from './operate';
import type * as AuditModule from './audit';
import type * as PolicyModule from './policy';
import type * as QuotaModule from './quota';
import type * as KeysModule from './keys';
import type * as EvalModule from './eval';
import type * as ReplayModule from './replay';
import type * as ModelsModule from './models';

type Register = (program: Command) => void;

/** One line of `warden --help`: the command's term (name, `[options]`, arguments) and its description. */
export type CommandSummary = readonly [term: string, description: string];

/** A module that registers top-level commands, and what `warden --help` says of them. */
export interface CommandModule {
  commands: readonly string[];
  /**
   * The lines `warden --help` shows for `commands`, in the order the module registers them, so the
   * overview needs no module loaded. test/package.test.ts checks them against what the module
   * registers. A module without them is loaded for `warden --help`.
   */
  summaries?: readonly CommandSummary[];
  load: () => Register;
}

/**
 * Which module registers which top-level commands, in the order `warden --help` lists them. A
 * command line names one command, so only its module (and what that module needs) is loaded: the
 * Temporal worker, the AI SDK, Slack's bolt and the inbox stay unloaded for `warden status`, and
 * `warden --help` (or no command) loads none, printing the summaries instead. test/package.test.ts
 * checks this table against what each module registers.
 */
export const COMMAND_MODULES: readonly CommandModule[] = [
  {
    commands: ['dev', 'worker'],
    summaries: [
      ['dev [options]', 'Start a local Temporal dev server (with UI), dev signing keys and a worker, in one process; Ctrl-C stops all'],
      ['worker [options]', 'Run a worker against TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE (trusted keys and what each may assert from WARDEN_TRUSTED_KEYS, re-read when it changes)'],
    ],
    load: () => (require('./dev') as typeof DevModule).registerDev,
  },
  {
    commands: ['demo'],
    summaries: [['demo [options]', 'Start what `warden dev` starts, then walk through the example agents: policy, budgets, approvals, pause, rollback, audit']],
    load: () => (require('./demo') as typeof DemoModule).registerDemo,
  },
  {
    commands: ['run', 'status', 'cancel'],
    summaries: [
      ['run [options] <agent>', 'Start a run of an agent; prints its id (--wait: waits and prints the outcome)'],
      ['status [options] <runId>', "Show a run's phase, budgets, pending approvals and outcome"],
      ['cancel <runId>', 'Cancel a run (Temporal cancellation; the run records outcome cancelled)'],
    ],
    load: () => (require('./runs') as typeof RunsModule).registerRuns,
  },
  {
    commands: ['approve', 'reject', 'approvals'],
    summaries: [
      ['approvals [options]', 'List the approvals waiting in every open run'],
      ['approve [options] <runId> <approvalId>', 'Approve a pending call, signed with the CLI key; the workers count it only if their trusted-keys file lets that key assert --as'],
      ['reject [options] <runId> <approvalId>', 'Reject a pending call, signed with the CLI key; the workers count it only if their trusted-keys file lets that key assert --as'],
    ],
    load: () => (require('./approvals') as typeof ApprovalsModule).registerApprovals,
  },
  {
    commands: ['inbox'],
    summaries: [['inbox [options]', 'Serve the web inbox: people sign in, see pending approvals, and approve or reject them (signed with the web key)']],
    load: () => (require('./inbox') as typeof InboxModule).registerInbox,
  },
  {
    commands: ['slack'],
    summaries: [['slack [options]', 'Run the Slack app: Approve/Reject buttons on approval messages become signed decisions (env SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN)']],
    load: () => (require('./slack') as typeof SlackModule).registerSlack,
  },
  {
    commands: ['pause', 'resume', 'rollback'],
    summaries: [
      ['pause [options] [runId]', 'Pause a run before its next model or tool call (or every running run of an agent with --agent)'],
      ['resume [options] [runId]', 'Resume a paused run (or every running run of an agent with --agent), signed with the CLI key: workers count it only from a key with the operator role that may assert --by'],
      ['rollback [options] <runId>', 'Undo what a run did (its compensations, newest first) and end it as rolled_back, signed with the CLI key (operator role)'],
    ],
    load: () => (require('./operate') as typeof OperateModule).registerOperations,
  },
  {
    commands: ['audit'],
    summaries: [['audit [options] <runId>', "Print a run's audit trail (run store plus the run's live tail); --verify recomputes its hash chain"]],
    load: () => (require('./audit') as typeof AuditModule).registerAudit,
  },
  {
    commands: ['policy'],
    summaries: [['policy', 'Validate policies, try decisions, apply a policy to an agent and see which policy is in force']],
    load: () => (require('./policy') as typeof PolicyModule).registerPolicy,
  },
  {
    commands: ['quota'],
    summaries: [['quota', "Fleet quotas: where each stands in its window (used, reserved, limit, top consumers), and an operator's reset"]],
    load: () => (require('./quota') as typeof QuotaModule).registerQuota,
  },
  {
    commands: ['keys'],
    summaries: [['keys', 'Signing keys for approval decisions and run starts, and the trusted-keys file workers read']],
    load: () => (require('./keys') as typeof KeysModule).registerKeys,
  },
  {
    commands: ['eval'],
    summaries: [['eval', "Golden runs: record a finished run as a case, replay the cases under today's agents and policies"]],
    load: () => (require('./eval') as typeof EvalModule).registerEval,
  },
  {
    commands: ['replay'],
    summaries: [
      [
        'replay [options] <runId>',
        "Run a finished run again from its recorded model answers, under today's agents and policy, as a new run linked to it (WardenReplayOf); tools answer with their recorded results",
      ],
    ],
    load: () => (require('./replay') as typeof ReplayModule).registerReplay,
  },
  {
    commands: ['models'],
    summaries: [['models', "Local models that run on the worker's CPU (local:<name> in an agent): list them, fetch one"]],
    load: () => (require('./models') as typeof ModelsModule).registerModels,
  },
];

/**
 * The command a command line names, if any: the first argument that is not an option, or for
 * `warden help <command>` the one after `help` (commander answers it with that command's help).
 */
function commandOf(args: readonly string[]): string | undefined {
  const [first, second] = args.filter((a) => !a.startsWith('-'));
  return first === 'help' && second !== undefined ? second : first;
}

/**
 * Stands in for the commands of `module` in the overview (`warden --help`, an unknown command):
 * the name and description commander lists, the term the module's own registration would show.
 * A command line that names one of them loads the module instead, so a stand-in never runs.
 */
function registerSummaries(program: Command, summaries: readonly CommandSummary[], terms: Map<Command, string>): void {
  for (const [term, description] of summaries) {
    const name = term.split(' ')[0] ?? term;
    const stub = program.command(name).description(description);
    stub.action(() => {
      throw new CliError(`internal: the stand-in for '${name}' ran; createProgram loads a command's module when the command line names it`);
    });
    terms.set(stub, term);
  }
}

/**
 * The `warden` command. `args` (the arguments after the script) picks what to register: the
 * module of the command they name, else (no command, or one this table does not know) a stand-in
 * for every command, so commander's help and "unknown command" messages list them all without
 * loading any module. Without `args`, every module is loaded (the whole program, for tests).
 */
export function createProgram(args?: readonly string[]): Command {
  const program = new Command('warden')
    .description('Durable, governed AI agent runs on Temporal')
    // Usage errors reach main() as CommanderError instead of exiting inside commander, so the exit code is ours (2).
    .exitOverride();
  const named = args ? commandOf(args) : undefined;
  const one = named === undefined ? undefined : COMMAND_MODULES.find((m) => m.commands.includes(named));
  if (one) {
    one.load()(program);
  } else {
    const terms = new Map<Command, string>();
    const standard = new Help();
    program.configureHelp({ subcommandTerm: (cmd) => terms.get(cmd) ?? standard.subcommandTerm(cmd) });
    for (const module of COMMAND_MODULES) {
      if (args && module.summaries) registerSummaries(program, module.summaries, terms);
      else module.load()(program);
    }
  }
  hintAfterErrors(program);
  return program;
}

/** After a usage error, each command names the help that lists what it takes: `(run 'warden policy --help' for usage)`. */
function hintAfterErrors(command: Command, path = command.name()): void {
  command.showHelpAfterError(`(run '${path} --help' for ${command.commands.length > 0 ? 'the commands' : 'usage'})`);
  for (const sub of command.commands) hintAfterErrors(sub, `${path} ${sub.name()}`);
}

const HELP_FLAGS = new Set(['-h', '--help']);

/**
 * The arguments commander should parse: `args` as given, except after a command name that the
 * command before it does not have (`warden nosuchcommand --help`, `warden help nosuchcommand`,
 * `warden policy nosuch -h`). There the help flags (and a `help` word) are dropped, so commander
 * reports the unknown command, with a similar name when there is one, and exits 2, instead of
 * printing help and exiting 0 as if the command existed.
 */
export function argsToParse(program: Command, args: readonly string[]): string[] {
  let command = program;
  let helpWord: number | undefined;
  for (const [i, arg] of args.entries()) {
    // Commands with subcommands (warden, policy, keys, eval) take no option values, so every other argument names one.
    if (command.commands.length === 0) break;
    if (arg.startsWith('-')) continue;
    if (arg === 'help' && helpWord === undefined) {
      helpWord = i;
      continue;
    }
    const sub = command.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (!sub) return args.filter((a, j) => !HELP_FLAGS.has(a) && j !== helpWord);
    command = sub;
  }
  return [...args];
}
