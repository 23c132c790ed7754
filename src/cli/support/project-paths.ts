import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../context';
import { CliError } from '../cli-errors';
import { prepareToLoad } from '../typescript';

/** Where a project keeps its agents module and policy files, relative to the working directory. */
const PROJECT_AGENTS = './agents';
const PROJECT_POLICIES = './policies';

/** The ways `require` finds a module path: as given (a directory with an index file), or with an extension. */
const MODULE_SUFFIXES = ['', '.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'];

function moduleExists(modulePath: string): boolean {
  const resolved = path.resolve(modulePath);
  return MODULE_SUFFIXES.some((suffix) => existsSync(resolved + suffix));
}

/**
 * Whether this CLI runs from a clone of Warden's repository (its sources are beside it, as
 * bin/warden.js checks), not from the npm package, which ships neither sources nor examples.
 */
export function runsFromClone(): boolean {
  return existsSync(path.join(packageRoot(), 'src', 'cli', 'main.ts'));
}

/** The repository's example agents (refund, procurement, triage), which `warden demo` walks through. */
export function exampleAgentsPath(): string {
  return path.join(packageRoot(), 'examples');
}

/** The policies of the example agents. */
export function examplePoliciesPath(): string {
  return path.join(packageRoot(), 'policies');
}

/** In a clone, without agents of its own in the working directory: the examples stand in. */
function examplesStandIn(): boolean {
  return !moduleExists(PROJECT_AGENTS) && runsFromClone();
}

/**
 * Where `--agents` points when not given: the project's `./agents` (agents.ts, agents.js, or a
 * directory with an index file). In a clone of Warden's repository that has none, the example
 * agents, so `npm start` and `npm run dev` need no flags. The package does not ship the examples:
 * they import Warden's sources, which it does not ship either.
 */
export function defaultAgentsPath(): string {
  return examplesStandIn() ? exampleAgentsPath() : PROJECT_AGENTS;
}

/** Where `--policies` points when not given: the project's `./policies`, or the examples' where they stand in for the agents. */
export function defaultPoliciesPath(): string {
  return !existsSync(PROJECT_POLICIES) && examplesStandIn() ? examplePoliciesPath() : PROJECT_POLICIES;
}

/**
 * Makes an agents module ready to `require` (TypeScript through tsx when it is TypeScript), or
 * refuses one that is not there, naming the flag that points at it.
 */
export function prepareAgentsModule(modulePath: string): void {
  prepareToLoad(modulePath);
  try {
    require.resolve(path.resolve(modulePath));
  } catch {
    throw new CliError(`agents module ${modulePath} not found (a .ts or .js file, or a directory with an index file): point --agents at the module that exports your agents`);
  }
}

/** Refuses a policies directory that is not there, naming the flag that points at it. */
export function checkPoliciesDir(dir: string): void {
  if (existsSync(dir) && statSync(dir).isDirectory()) return;
  throw new CliError(`policies directory ${dir} does not exist: point --policies at the directory of your policy files (one YAML file per agent)`);
}
