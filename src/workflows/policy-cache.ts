import { CompiledPolicy, digestOf, type Policy } from '../governance/workflow-safe';

/**
 * Compiled policies, by content: a policy is compiled once however often it is met again (a
 * shadow equal to the enforced policy, `applyPolicy` bringing the version the run has, another
 * run of the same agent).
 *
 * This module is shared by every run of a worker thread (src/workflows/shared-modules.ts), so
 * the map serves them all. An entry is a pure function of its key (the policy's content digest
 * and the agent's tool names) and never changes once built, so whether a run finds it here or
 * compiles it makes no difference to what the run does or records.
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
