import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parsePolicyText, type Policy } from '../governance';
import type { ShadowSource } from '../workflows/run-types';

/**
 * Loads the shadow a policy names (`shadow: {file}`, relative to the file the policy came from):
 * validated like any policy, for the same agent, naming no shadow of its own. A shadow that cannot
 * be loaded is reported, not thrown: it must never stop the enforced policy from deciding.
 * Only the worker calls this, for policies from its own sources (policy directory, applied).
 */
export function loadShadowPolicy(policy: Policy, policyFile: string): ShadowSource | undefined {
  if (!policy.shadow) return undefined;
  const file = path.resolve(path.dirname(policyFile), policy.shadow.file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { error: `cannot read shadow policy ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, source: file };
  }
  try {
    const shadow = parsePolicyText(text, file);
    if (shadow.agent !== policy.agent) return { error: `shadow policy ${file} is for agent ${shadow.agent}, not ${policy.agent}`, source: file };
    if (shadow.shadow) return { error: `shadow policy ${file} names a shadow of its own; a shadow cannot have one`, source: file };
    return { policy: shadow, source: file };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err), source: file };
  }
}
