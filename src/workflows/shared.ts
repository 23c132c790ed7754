import { CompiledPolicy, digestOf, type Policy } from '../governance/sandbox';

/**
 * Compiled policies, shared by every run a worker thread holds. A policy's CEL programs cost far
 * more memory and time than the policy itself, and a thousand runs of one agent have the same
 * policy: they share one compiled copy instead of a thousand.
 *
 * Module scope is shared by all workflows of a worker thread (the SDK reuses one V8 context).
 * That stays deterministic because an entry is a pure function of its key (the policy's content
 * digest and the agent's tool names) and is never changed once built: a run that finds it and a
 * run that builds it again (after eviction, in another thread, on replay) decide alike.
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
