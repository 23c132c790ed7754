import { CompiledPolicy, digestOf, type Policy } from '../governance/sandbox';

/**
 * Compiled policies, by content: a run compiles a policy once however often it meets it again
 * (a shadow equal to the enforced policy, `applyPolicy` bringing the version the run has).
 *
 * The SDK gives each run its own copy of this module (only the modules of
 * src/workflows/shared-modules.ts are shared across runs, and CEL cannot be: it changes its own
 * exported objects), so this map holds one run's policies. An entry is a pure function of its key
 * (the policy's content digest and the agent's tool names) and never changes once built.
 */
const compiled = new Map<string, CompiledPolicy>();
const MAX_POLICIES = 64;

/** The policy compiled for an agent that has `tools` (a listed tool the agent lacks is denied). */
export function compiledPolicy(policy: Policy, tools: readonly string[]): CompiledPolicy {
  const key = `${digestOf(policy)}|${JSON.stringify([...tools].sort())}`;
  let entry = compiled.get(key);
  if (!entry) {
    entry = new CompiledPolicy(policy, { knownTools: new Set(tools) });
    if (compiled.size >= MAX_POLICIES) compiled.delete(compiled.keys().next().value as string);
    compiled.set(key, entry);
  }
  return entry;
}
