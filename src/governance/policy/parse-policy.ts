import { parse } from '@bufbuild/cel';
import type { z } from 'zod';
import { PolicySourceMap } from './policy-location';
import { formatPolicyPath, formatPolicyProblem, type PolicyProblem } from './policy-problem';
import { fleetPolicySchema, MOVED_TO_WORKER, policySchema, type FleetPolicy, type Policy } from './policy-schema';
import { errorMarker, WardenError } from '../../errors';

export { CompiledPolicy, policyVersion } from './policy-compiled';
export type { CallFacts, CompiledPolicyOptions, Decision, DecisionKind, RunFacts } from './policy-compiled';

/**
 * A policy that failed validation. The message names the source; `issues` are the problems
 * printed one per line (`file:line:col: path: message`), `problems` the same as data.
 */
export class PolicyError extends WardenError {
  static override readonly marker = errorMarker('PolicyError');
  override name = 'PolicyError';
  constructor(
    message: string,
    readonly source: string,
    readonly issues: readonly string[] = [],
    readonly problems: readonly PolicyProblem[] = [],
  ) {
    super(message);
  }
}

/** Throws the `PolicyError` for a list of problems found in `source`. */
export function throwPolicyProblems(source: string, problems: readonly PolicyProblem[]): never {
  const issues = problems.map((p) => formatPolicyProblem(source, p));
  throw new PolicyError(`${source}: invalid policy\n  ${issues.join('\n  ')}`, source, issues, problems);
}

export interface ParsePolicyOptions {
  /**
   * Drop `allowUnsignedDecisions` and `trustedKeys` instead of refusing them. Only for policies
   * recorded before those moved to the worker (run inputs and snapshots of runs in flight, stored
   * applied policies): they carry the old defaults, and the worker's settings now decide.
   */
  dropMovedFields?: boolean;
}

type Locate = PolicySourceMap | undefined;

function problemsOf(error: z.ZodError, map: Locate): PolicyProblem[] {
  return error.issues.flatMap((issue): PolicyProblem[] => {
    const path = issue.path;
    // One issue names every unknown key of an object; each key is its own mistake, at its own line.
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => {
        const keyPath = [...path, key];
        return { path: formatPolicyPath(keyPath), message: `unknown field "${key}"`, ...where(map, keyPath, 'key') };
      });
    }
    // A bad key of a record (a tool name under `tools`) says what a key must be, at the key.
    if (issue.code === 'invalid_key') {
      return [{ path: formatPolicyPath(path), message: issue.issues[0]?.message ?? issue.message, ...where(map, path, 'key') }];
    }
    // A field that is not allowed at all is pointed at by its key, not its value.
    const at = issue.code === 'invalid_type' && issue.expected === 'never' ? 'key' : 'value';
    const rule = path[0] === 'rules' && typeof path[1] === 'number' ? { rule: path[1] } : {};
    return [{ path: formatPolicyPath(path), message: issue.message, ...rule, ...where(map, path, at) }];
  });
}

function where(map: Locate, path: readonly PropertyKey[], at: 'key' | 'value'): { line?: number; column?: number } {
  const position = map?.positionOf(path, at);
  return position ? { line: position.line, column: position.column } : {};
}

function validate(doc: unknown, source: string, map: Locate, options: ParsePolicyOptions): Policy {
  if (options.dropMovedFields && typeof doc === 'object' && doc !== null && !Array.isArray(doc)) {
    const copy: Record<string, unknown> = { ...(doc as Record<string, unknown>) };
    for (const field of MOVED_TO_WORKER) delete copy[field];
    doc = copy;
  }
  const result = policySchema.safeParse(doc);
  if (!result.success) throwPolicyProblems(source, problemsOf(result.error, map));
  const problems: PolicyProblem[] = [];
  result.data.rules.forEach((rule, i) => {
    if (rule.when === undefined) return;
    try {
      parse(rule.when);
    } catch (err) {
      const path = ['rules', i, 'when'];
      const offset = (err as { location?: { start?: { offset?: number } } }).location?.start?.offset ?? 0;
      const detail = (err as { rawMessage?: string }).rawMessage ?? (err instanceof Error ? err.message : String(err));
      const position = map?.positionInString(path, offset);
      problems.push({ path: formatPolicyPath(path), rule: i, message: `CEL syntax error in "${rule.when}": ${detail}`, ...(position ? { line: position.line, column: position.column } : {}) });
    }
  });
  if (problems.length > 0) throwPolicyProblems(source, problems);
  return result.data;
}

/**
 * Validates a policy document (already parsed from YAML or JSON) and checks that every CEL
 * condition parses. Throws `PolicyError` naming `source` and each bad path.
 * Use it wherever a policy enters the system: at load, on `policy apply`, on `applyPolicy`.
 * It does not check conditions against tools' schemas: `checkPolicy` does, where the tools are known.
 */
export function parsePolicy(doc: unknown, source: string, options: ParsePolicyOptions = {}): Policy {
  return validate(doc, source, undefined, options);
}

/**
 * Parses policy YAML (or JSON) text, then validates it like `parsePolicy`; every problem carries
 * the line and column of the node it is about.
 */
export function parsePolicyText(text: string, source: string, options: ParsePolicyOptions = {}): Policy {
  const map = new PolicySourceMap(text);
  const [yamlError] = map.doc.errors;
  if (yamlError) {
    const start = yamlError.linePos?.[0];
    const where = start ? `${source}:${start.line}:${start.col}` : source;
    // The library's own message ends its first line with "at line L, column C:" before a code frame; the prefix says that already.
    const [first = '', ...frame] = yamlError.message.split('\n');
    const detail = start ? first.replace(/ at line \d+, column \d+:?$/, '') : first;
    throw new PolicyError([`${where}: not valid YAML: ${detail}`, ...frame].join('\n'), source, [`${where}: ${detail}`]);
  }
  return validate(map.doc.toJS(), source, map, options);
}

/**
 * Parses and validates the fleet file (`policies/fleet.yaml`: quotas and rate limits across
 * agents). Throws `PolicyError` naming the file, each bad path, its line and column.
 */
export function parseFleetPolicyText(text: string, source: string): FleetPolicy {
  const map = new PolicySourceMap(text);
  const [yamlError] = map.doc.errors;
  if (yamlError) {
    const start = yamlError.linePos?.[0];
    const where = start ? `${source}:${start.line}:${start.col}` : source;
    throw new PolicyError(`${where}: not valid YAML: ${yamlError.message.split('\n')[0] ?? ''}`, source, [`${where}: ${yamlError.message.split('\n')[0] ?? ''}`]);
  }
  const result = fleetPolicySchema.safeParse(map.doc.toJS() ?? {});
  if (!result.success) throwPolicyProblems(source, problemsOf(result.error, map));
  return result.data;
}
