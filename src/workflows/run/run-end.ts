import type { BudgetExceeded } from '../../governance/workflow-safe';
import type { RunStatus } from '../run-types';

/** How a run ends. Thrown inside the run, caught once, at the top: the one way out. */
export class RunEnd extends Error {
  override name = 'RunEnd';
  constructor(
    readonly status: RunStatus,
    readonly reason: string,
    readonly text = '',
    readonly budget?: BudgetExceeded,
  ) {
    super(reason);
  }
}
