import { ToolError } from '../../src/agents';
import { ShopError } from './store';

/**
 * Runs a shop operation inside a tool. A refusal by the shop (`ShopError`) becomes a `ToolError`:
 * trying again cannot help, so Temporal does not retry and the model is told why. Anything else
 * (a locked database file) stays an ordinary error and is retried by the tool's retry policy.
 */
export function asToolError<T>(operation: () => T): T {
  try {
    return operation();
  } catch (err) {
    if (err instanceof ShopError) throw new ToolError(err.message);
    throw err;
  }
}
