import { z } from 'zod';

/**
 * One thing wrong with a policy: a schema error, a CEL syntax error, or a condition that cannot
 * work with the agent's tools. Plain JSON, so `--json` output and tests can read it as it is.
 */
export interface PolicyProblem {
  /** Where inside the policy, written as zod writes issue paths: `rules[2].when`, `tools.issue_refund`. */
  path: string;
  message: string;
  /** The rule's index in `rules`, for a problem inside a rule. */
  rule?: number;
  /** The tools whose schemas the problem depends on (a field one of them lacks). */
  tools?: string[];
  /** 1-based line and column in the policy's text, when it was read from text. */
  line?: number;
  column?: number;
}

/** A path inside a policy as zod's own error messages write it (`rules[0].approval.quorum`). */
export function formatPolicyPath(path: readonly PropertyKey[]): string {
  return z.core.toDotPath(path) || '(top level)';
}

/**
 * The one way a policy problem is printed: `file:line:col: path: message`, the form editors and
 * terminals turn into links. Without a position, `file: path: message`.
 */
export function formatPolicyProblem(source: string, problem: PolicyProblem): string {
  const where = problem.line === undefined ? source : `${source}:${problem.line}:${problem.column ?? 1}`;
  return `${where}: ${problem.path}: ${problem.message}`;
}
