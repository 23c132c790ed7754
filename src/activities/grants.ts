import type { Logger } from 'pino';
import { digestOf, type CallProposal } from '../governance';
import type { RunStore } from '../store/run-store';
import type { PreparedRun } from '../workflows/run-types';
import { preparedDigest } from '../workflows/run/patches';
import type { GrantRef } from './activity-types';
import { activityRefused } from './execution-guard';
import { grantMatches, grantOf, proposalMatches, proposalSealOf } from './seals';

/** What an effectful activity's input carries for its check (a tool call or its compensation). */
export interface GrantedInput {
  runId: string;
  callId: string;
  args: Record<string, unknown>;
  grant?: GrantRef;
  proposal?: string | null;
  /** A delegate's call undone by its delegating run: the run whose model activity sealed the call. */
  callRunId?: string;
}

/**
 * Grants and proposal seals: what lets an effectful activity tell what Warden's worker handed the
 * run from what someone else handed it.
 *
 * Anyone with a Temporal client can complete a running activity by its id, with any result. The
 * run's workflow code is Warden's (the execution guard sees to that), and so are the inputs it
 * makes, but the results it works from — its preparation (agent, policy, requester), a new
 * policy, a model's parsed answer — come back through Temporal. So the worker seals them with the
 * store's seal key as it makes them: a grant over the preparation (`preparedDigest`), a seal over
 * each parsed call (run, call id, tool, arguments). The workflow hands both to every tool and
 * compensation, which run only when they match: a preparation or answer completed into the run by
 * anyone else runs nothing. (A payload key closes the same door sooner: a result forged in clear
 * is refused as the workflow reads it.)
 */
export class Grants {
  constructor(
    private readonly store: RunStore,
    private readonly logger: Logger,
  ) {}

  /** The grant over a preparation the worker made for a run. */
  async grant(runId: string, prepared: PreparedRun): Promise<string> {
    return grantOf(await this.store.sealKey(), { runId, digest: preparedDigest(prepared) });
  }

  /** Each parsed call sealed for the run; a refused call stays unsealed (it never runs). */
  async seal(runId: string, calls: CallProposal[]): Promise<CallProposal[]> {
    if (calls.every((c) => c.refused !== undefined)) return calls;
    const key = await this.store.sealKey();
    return calls.map((c) => (c.refused !== undefined ? c : { ...c, seal: proposalSealOf(key, { runId, callId: c.id, tool: c.name, argsDigest: digestOf(c.args) }) }));
  }

  /** Whether `ref` is the worker's grant for the run, over the preparation the workflow says it works under. */
  async granted(runId: string, ref: GrantRef): Promise<boolean> {
    return grantMatches(await this.store.sealKey(), { runId, digest: ref.digest }, ref.seal);
  }

  /**
   * Refuses (without retry, logged) a tool call or compensation whose run works under a
   * preparation the worker did not grant, or whose call its model activity did not seal. An input
   * without `grant` comes from a run that started before grants (its workflow asked `GRANTS` and
   * got no): it is let through as before.
   */
  async check(activity: string, tool: string, input: GrantedInput): Promise<void> {
    if (input.grant === undefined) return;
    const refuse = (reason: string): never => {
      this.logger.warn({ activity, runId: input.runId, callId: input.callId, reason }, 'activity refused');
      throw activityRefused(`refused: ${tool} not run: ${reason}`);
    };
    const key = await this.store.sealKey();
    if (!grantMatches(key, { runId: input.runId, digest: input.grant.digest }, input.grant.seal)) {
      refuse(`the run's preparation (agent, policy, requester) carries no grant of this worker's store: it was not made by a Warden worker for run ${input.runId}`);
    }
    const sealedFor = input.callRunId ?? input.runId;
    if (!proposalMatches(key, { runId: sealedFor, callId: input.callId, tool, argsDigest: digestOf(input.args) }, input.proposal)) {
      refuse(`call ${input.callId} carries no seal of this worker's model activity for run ${sealedFor}: it is not a call the worker parsed from the model's answer, or its arguments were changed`);
    }
  }
}
