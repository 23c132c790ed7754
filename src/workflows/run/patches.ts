import { digestOf } from '../../governance/workflow-safe';
import type { AgentRunInput, PreparedRun } from '../run-types';

// Patch ids are part of recorded histories: never rename one.

/** Runs started under this patch prepare and make their first model call in one activity (`prepareAndCallModel`). */
export const PREPARE_WITH_FIRST_MODEL_CALL = 'prepare-with-first-model-call';

/**
 * Executions started under this patch emit fewer commands: the patches before it are implied (no
 * marker and change-version upsert of their own), the agent and requester go in the upsert of the
 * run's first status (which the first answer may already make awaiting_approval), and the last
 * write to the run store is a local activity. Asked once, as the execution starts, so an
 * execution recorded before it keeps its commands throughout.
 */
export const FEWER_COMMANDS = 'warden-fewer-commands';

/**
 * Executions under this patch seal the state they hand to another execution (continue-as-new,
 * a delegate's start) and accept carried state only with a seal the worker verifies.
 */
export const SEALED_STATE = 'warden-sealed-state';

/**
 * Executions under this patch count resume, rollback and applyPolicy only as signed operator
 * commands the worker verifies (a pause stays open to anyone: it asks for a safer state).
 */
export const OPERATOR_AUTHORITY = 'warden-operator-authority';

/**
 * Executions under this patch run each tool call in a cancellation scope of its own, waiting for
 * a cancelled call to stop (`WAIT_CANCELLATION_COMPLETED`): a rollback cancels the calls running
 * when it is asked for, and a call that finished anyway is known and undone with the rest. Implied
 * by GRANTS.
 */
export const CANCEL_TOOLS = 'warden-cancel-tools';

/**
 * A delegate cancelled under this patch returns its outcome (status `cancelled`, with what it spent
 * and what it did) instead of ending as a cancelled workflow: its delegating run charges the
 * spending to its own budgets and can undo what it did.
 */
export const DELEGATE_CANCEL_OUTCOME = 'warden-delegate-cancel-outcome';

/**
 * Executions under this patch charge a delegate that was cancelled (and so returned no outcome)
 * with what its trail in the run store says it spent.
 */
export const DELEGATE_CANCEL_USAGE = 'warden-delegate-cancel-usage';

/**
 * Executions under this patch book counted calls against fleet quotas and rate limits (a quota
 * activity before the tool, a timer while a rate limit makes the call wait). Asked only by runs
 * whose quota set is not empty, so a run without quotas records no marker.
 */
export const QUOTAS = 'warden-quotas';

/**
 * Executions under this patch hand every effectful activity (tools, compensations) the grant their
 * preparation came with and the seal of the call, and take up a new policy or delegate only with
 * their grant: a preparation or a model answer completed into the run by anyone but the worker
 * runs nothing. Asked once, as the execution starts, before FEWER_COMMANDS, which it implies (with
 * the patches before that): a new execution records this marker alone. An execution continued
 * from one without grants keeps going without them.
 */
export const GRANTS = 'warden-grants';

/** A preparation as the run received it (JSON), without its grant: what a grant covers. */
export function preparedDigest(prepared: PreparedRun): string {
  const { grant: _grant, ...rest } = JSON.parse(JSON.stringify(prepared)) as PreparedRun;
  return digestOf(rest);
}

/** The input as the next execution receives it (JSON), without its seal: what a seal covers. */
export function sealedDigest(input: AgentRunInput): string {
  const { seal: _seal, ...rest } = JSON.parse(JSON.stringify(input)) as AgentRunInput;
  return digestOf(rest);
}

/**
 * Executions under this patch ask the worker what a cancelled delegate spent with a local activity
 * (whose result no Temporal client can complete in its place), not a regular one.
 */
export const DELEGATE_USAGE_LOCAL = 'warden-delegate-usage-local';

/**
 * Turns, second version. Executions under this patch
 * - write their audit chain's head to the memo every N turns (the policy's
 *   `audit.anchorEveryTurns`, default 10), and still before every wait for people or for a resume,
 *   and as they continue or end: a memo upsert (and a visibility write) a turn was most of what a
 *   fast turn cost beyond its two activities;
 * - hand each model call the run's own model spend so far as the worker's model activity sealed
 *   it, with the budgets it must stay under: a model answer completed into the run by someone else
 *   (with its tokens under-counted) cannot carry the run past its token or cost budget.
 * Asked once, as the execution starts, before GRANTS, which it implies (with the patches before
 * that): a new execution records this marker alone. An execution continued from one without grants
 * keeps going without both.
 */
export const TURNS_V2 = 'warden-turns-v2';

/** How many turns a run goes between anchors when its policy does not say (`audit.anchorEveryTurns`). */
export const DEFAULT_ANCHOR_EVERY_TURNS = 10;

/**
 * Executions under this patch let the loop breaker count calls refused for their arguments (a
 * model repeating one invalid call is a loop). Asked only when such a call meets a policy with a
 * loop breaker, so most runs record no marker.
 */
export const LOOP_SEES_REJECTED = 'warden-loop-sees-rejected';

/**
 * A pause under this patch takes hold in the activation its signal arrives in, with no local
 * activity to verify its signature (anyone may pause; the trail records it as asked, with no
 * `verified`). A local activity awaited in the pause handler resolved, live, in the activation the
 * worker got to it (after an activity that completed meanwhile), and on replay right after its
 * marker: a run paused while its first activity ran failed to replay. Asked by the pause handler.
 */
export const PAUSE_UNCHECKED = 'warden-pause-unchecked';
