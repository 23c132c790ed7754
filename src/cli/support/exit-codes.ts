import type { ReportedStatus } from '../../workflows/run-types';

/**
 * The exit code of `warden run --wait` for each outcome, so scripts and CI can branch on it.
 * 1 and 2 stay what they are everywhere (an error, a usage error).
 */
export const OUTCOME_EXIT_CODES: Record<ReportedStatus, number> = {
  completed: 0,
  failed: 10,
  budget_exhausted: 11,
  cancelled: 12,
  rolled_back: 13,
  terminated: 14,
};

/**
 * The exit code of `warden policy what-if --fail-on` when a difference of a listed kind is found,
 * clear of the outcome codes above.
 */
export const POLICY_DIFF_EXIT_CODE = 20;

/**
 * The exit code of `warden eval run` and `warden replay` when a replay differs from its
 * recording (a decision, the outcome, an expectation), clear of the outcome codes (10-14) and
 * `policy what-if --fail-on` (20).
 */
export const EVAL_FAILED_EXIT_CODE = 21;

/** The exit code of a long-running command stopped with Ctrl-C (128 + SIGINT), as shells report it. */
export const INTERRUPTED_EXIT = 130;
