import { ApplicationFailure } from '@temporalio/activity';
import type { Logger } from 'pino';
import { checkModelCallBudgets, costOf, emptyUsage } from '../governance';
import type { RunStore } from '../store/run-store';
import type { CallModelInput, SealedSpend } from './activity-types';
import { activityRefused } from './execution-guard';
import { spendMatches, spendSealOf } from './seals';

/**
 * A run's own model spend, kept where no one but the worker can write it. The workflow counts
 * tokens and cost from each model answer, and anyone with a Temporal client can complete a model
 * call with an answer of their own, its usage zero, while the real call's tokens were spent. So
 * the model activity seals the run's spend so far with each answer (run, step, tokens, cost), and
 * the next model call is made only on that seal, for the step before it, and within the run's
 * token and cost budgets: a forged answer ends the run at its next model call, with its spend
 * over budget or its seal missing.
 */
export class ModelSpend {
  constructor(
    private readonly store: RunStore,
    private readonly logger: Logger,
  ) {}

  /** Refuses (without retry, logged) a model call whose run's spend is unsealed, not the step before it, or over a token or cost budget. */
  async check(input: CallModelInput): Promise<void> {
    const spend = input.spend;
    if (!spend) return;
    const { spent } = spend;
    const refuse = (reason: string): never => {
      this.logger.warn({ runId: input.runId, step: input.step, reason }, 'model call refused');
      throw activityRefused(`refused: the model is not called for step ${input.step}: ${reason}`);
    };
    if (spent.step !== input.step - 1) refuse(`the run's model spend is for step ${spent.step}, not ${input.step - 1}: an earlier answer was not the worker's model activity's`);
    const first = spent.step === 0 && spent.inputTokens === 0 && spent.outputTokens === 0 && spent.costUsd === 0 && spent.seal === '';
    if (!first && !spendMatches(await this.store.sealKey(), { runId: input.runId, ...spent }, spent.seal)) {
      refuse(`the run's model spend so far carries no seal of this worker's model activity: an earlier answer was completed into the run by someone else`);
    }
    if (!spend.budgets && !spend.ceiling) return;
    const exceeded = checkModelCallBudgets(spend.budgets ?? {}, spend.ceiling, { ...emptyUsage(), inputTokens: spent.inputTokens, outputTokens: spent.outputTokens, costUsd: spent.costUsd }, 0);
    if (exceeded) {
      this.logger.warn({ runId: input.runId, step: input.step, limit: exceeded.limit }, 'model call refused: sealed spend over budget');
      throw ApplicationFailure.create({
        type: 'BudgetError',
        nonRetryable: true,
        message: `refused: the model is not called for step ${input.step}: ${exceeded.message} by the run's own model spend as the worker sealed it (${spent.inputTokens} input and ${spent.outputTokens} output tokens, $${spent.costUsd}), though the run counted less: an answer was completed into the run by someone else`,
      });
    }
  }

  /** The run's spend with this call's usage, sealed; nothing for a run that is not handed its spend. */
  async after(input: CallModelInput, usage: { inputTokens: number; outputTokens: number }): Promise<SealedSpend | undefined> {
    const spend = input.spend;
    if (!spend) return undefined;
    const next = {
      step: input.step,
      inputTokens: spend.spent.inputTokens + usage.inputTokens,
      outputTokens: spend.spent.outputTokens + usage.outputTokens,
      // Added as the workflow adds it (the same sum, in the same order): the sealed cost is the one the run counts.
      costUsd: spend.spent.costUsd + costOf(spend.price ?? undefined, usage.inputTokens, usage.outputTokens),
    };
    return { ...next, seal: spendSealOf(await this.store.sealKey(), { runId: input.runId, ...next }) };
  }
}
