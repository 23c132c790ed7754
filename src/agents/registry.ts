import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { parseFleetPolicyText, parsePolicyText, PolicyError, type FleetPolicy, type Policy } from '../governance';
import { checkPolicy } from '../governance/policy/policy-check';
import { throwPolicyProblems } from '../governance/policy/parse-policy';
import type { AgentSpec, ToolSpec } from '../workflows/run-types';
import { argsJsonSchema } from './args-schema';
import { DefinitionError, isAgent, modelIdOf, type Agent, type AnyTool } from './define';

/** Names the worker's own activities use; a tool may not take one. */
export const RESERVED_ACTIVITY_NAMES = new Set(['prepareRun', 'prepareAndCallModel', 'callModel', 'recordRun', 'compensateCall', 'notifyApproval', 'verifyDecision', 'verifyOperator', 'currentPolicy', 'sealState', 'verifySeal']);

/** A policy as a registry holds it; `text` (the file's content) lets problems be reported with their line. */
export interface PolicyEntry {
  policy: Policy;
  source: string;
  text?: string;
}

/** Agents a worker serves, with their policies. */
export class AgentRegistry {
  private readonly agents = new Map<string, Agent>();
  private readonly policies = new Map<string, PolicyEntry>();
  private readonly specs = new Map<string, AgentSpec>();
  private resolving: Promise<void> | undefined;
  /** Agents whose MCP tools are not listed yet. */
  private readonly unresolved = new Set<string>();

  constructor(agents: readonly Agent[], policies: readonly PolicyEntry[] = []) {
    for (const agent of withDelegates(agents)) {
      if (this.agents.has(agent.name)) throw new DefinitionError(`two agents are named ${agent.name}`);
      for (const tool of agent.tools) {
        if (RESERVED_ACTIVITY_NAMES.has(tool.name)) throw new DefinitionError(`agent ${agent.name}: tool name ${tool.name} is reserved by Warden`);
      }
      this.agents.set(agent.name, agent);
      if ((agent.mcpTools ?? []).length > 0) this.unresolved.add(agent.name);
    }
    for (const entry of policies) this.policies.set(entry.policy.agent, entry);
  }

  /**
   * Lists the tools of every MCP server the agents use, once (later calls wait for the same
   * listing), and adds them to their agents. `createWardenWorker` awaits it before it registers
   * activities; call it yourself before `spec` or `tools` on a registry you use otherwise. Policy
   * files for those agents are checked against the listed tools here, as `loadPolicies` does for
   * other agents. A server that cannot be reached fails it with a `DefinitionError` naming it.
   */
  resolveTools(): Promise<void> {
    this.resolving ??= this.resolve().catch((err: unknown) => {
      this.resolving = undefined;
      throw err;
    });
    return this.resolving;
  }

  private async resolve(): Promise<void> {
    const sets = [...new Set([...this.agents.values()].flatMap((a) => a.mcpTools ?? []))];
    const listed = new Map(await Promise.all(sets.map(async (set) => [set, await set.list()] as const)));
    for (const name of this.unresolved) {
      const agent = this.get(name);
      const tools = [...agent.tools, ...agent.mcpTools.flatMap((set) => listed.get(set) ?? [])];
      const names = new Set<string>();
      const modelNames = new Map<string, string>();
      for (const tool of tools) {
        if (names.has(tool.name)) throw new DefinitionError(`agent ${name}: two tools are named ${tool.name}`);
        names.add(tool.name);
        const offered = tool.modelName ?? tool.name;
        const other = modelNames.get(offered);
        if (other !== undefined) throw new DefinitionError(`agent ${name}: tools ${other} and ${tool.name} are both offered to the model as ${offered}`);
        modelNames.set(offered, tool.name);
      }
      this.agents.set(name, { ...agent, tools });
      this.specs.delete(name);
    }
    this.unresolved.clear();
    for (const name of this.agents.keys()) {
      const entry = this.policies.get(name);
      if (!entry?.text || !listed.size) continue;
      const problems = checkPolicy(entry.policy, this.get(name).tools.map(toolSpec), entry.text);
      if (problems.length > 0) throwPolicyProblems(entry.source, problems);
    }
  }

  /** Closes the connections to MCP servers (stdio servers' processes end). A later call connects again. */
  async close(): Promise<void> {
    const sets = new Set([...this.agents.values()].flatMap((a) => a.mcpTools ?? []));
    await Promise.all([...sets].map((set) => set.close()));
  }

  list(): Agent[] {
    return [...this.agents.values()];
  }

  get(name: string): Agent {
    const agent = this.agents.get(name);
    if (!agent) throw new DefinitionError(`unknown agent "${name}"; this worker serves: ${[...this.agents.keys()].join(', ') || 'none'}`);
    return agent;
  }

  policyFor(agent: string): PolicyEntry | undefined {
    return this.policies.get(agent);
  }

  /** Every tool of every agent that runs as an activity, by name (delegations run as child runs). Tools with one name across agents must be the same tool. */
  tools(): Map<string, AnyTool> {
    const tools = new Map<string, AnyTool>();
    for (const agent of this.agents.values()) {
      for (const tool of agent.tools) {
        if (tool.delegate !== undefined) continue;
        const existing = tools.get(tool.name);
        if (existing && existing !== tool) throw new DefinitionError(`two different tools are named ${tool.name} (agents must share one definition)`);
        tools.set(tool.name, tool);
      }
    }
    return tools;
  }

  /** The plain-JSON description of an agent the workflow governs with. */
  spec(name: string): AgentSpec {
    let spec = this.specs.get(name);
    if (!spec) {
      const agent = this.get(name);
      if (this.unresolved.has(name)) {
        throw new DefinitionError(`agent ${name} uses tools of MCP servers (${agent.mcpTools.map((m) => m.server).join(', ')}) that are not listed yet: await registry.resolveTools() first`);
      }
      spec = { name: agent.name, modelId: modelIdOf(agent.model), tools: agent.tools.map(toolSpec) };
      this.specs.set(name, spec);
    }
    return spec;
  }
}

/** The plain-JSON description of a tool: JSON Schema of its input, retry and timeout, no code. */
export function toolSpec(tool: AnyTool): ToolSpec {
  const inputSchema = tool.inputJsonSchema ? structuredClone(tool.inputJsonSchema) : (z.toJSONSchema(tool.input, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>);
  delete inputSchema.$schema;
  const spec: ToolSpec = {
    name: tool.name,
    description: tool.description,
    inputSchema,
    risk: tool.risk ?? 'low',
    compensable: typeof tool.compensate === 'function',
  };
  // Only a tool that reshapes its arguments needs a second schema: the run redacts by it.
  const args = tool.inputJsonSchema ? null : argsJsonSchema(tool.input as z.ZodType);
  if (args) spec.argsSchema = args;
  if (tool.modelName !== undefined) spec.modelName = tool.modelName;
  if (tool.schemaDigest !== undefined) spec.schemaDigest = tool.schemaDigest;
  if (tool.retry) spec.retry = tool.retry;
  if (tool.timeout) spec.timeout = tool.timeout;
  if (tool.heartbeatTimeout) spec.heartbeatTimeout = tool.heartbeatTimeout;
  if (tool.local) spec.local = true;
  if (tool.delegate !== undefined) spec.delegate = tool.delegate;
  return spec;
}

/**
 * The agents and, after each, the agents it delegates to (and theirs), each once: a worker serves
 * every agent its agents may start. Two different agents of one name are refused.
 */
function withDelegates(agents: readonly Agent[]): Agent[] {
  const out = new Map<string, Agent>();
  const visit = (agent: Agent, via: string | undefined) => {
    const known = out.get(agent.name);
    if (known === agent) return;
    if (known) throw new DefinitionError(via ? `agent ${via} delegates to an agent named ${agent.name} that is not the ${agent.name} this worker serves` : `two agents are named ${agent.name}`);
    out.set(agent.name, agent);
    for (const delegate of agent.delegates ?? []) visit(delegate, agent.name);
  };
  for (const agent of agents) visit(agent, undefined);
  return [...out.values()];
}

/**
 * Loads the agents a module exports (any exported value made by `defineAgent`, or arrays of
 * them) and the policies in a directory (`*.yaml`, `*.yml`, `*.json`, but not the tests beside them,
 * `*.test.yaml`; each names its agent).
 * TypeScript modules load when the process runs under tsx (the `warden` command does).
 */
export function loadAgents(modulePath: string, policiesDir?: string): AgentRegistry {
  const resolved = path.resolve(modulePath);
  let mod: Record<string, unknown>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(resolved) as Record<string, unknown>;
  } catch (err) {
    throw new DefinitionError(`cannot load agents from ${modulePath}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const agents: Agent[] = [];
  const collect = (value: unknown) => {
    if (isAgent(value)) agents.push(value);
    else if (Array.isArray(value)) value.forEach(collect);
  };
  Object.values(mod).forEach(collect);
  if (agents.length === 0) throw new DefinitionError(`${modulePath} exports no agent (export the values defineAgent returns)`);
  const served = withDelegates([...new Set(agents)]);
  return new AgentRegistry(served, policiesDir ? loadPolicies(policiesDir, served) : []);
}

/**
 * Reads and validates every policy file in a directory. The first bad file throws `PolicyError`
 * naming it, with line and column. A policy for one of `agents` is also checked against that
 * agent's tools (`checkPolicy`): a tool it lacks, or a condition that cannot evaluate with its
 * tools' arguments, fails the load instead of denying calls at run time. Policies for other
 * agents are only validated; a shared directory may hold them.
 */
export function loadPolicies(dir: string, agents: readonly Agent[] = []): PolicyEntry[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new PolicyError(`policies directory ${dir} does not exist`, dir);
  const out: PolicyEntry[] = [];
  const seen = new Map<string, string>();
  for (const file of readdirSync(dir).sort()) {
    // Tests written beside a policy (`refund-agent.test.yaml`, read by `warden policy test`) are not policies.
    if (!/\.(ya?ml|json)$/.test(file) || /\.test\.(ya?ml|json)$/.test(file) || isFleetFile(file)) continue;
    const source = path.join(dir, file);
    const text = readFileSync(source, 'utf8');
    const policy = parsePolicyText(text, source);
    const agent = agents.find((a) => a.name === policy.agent);
    // An agent with MCP tools is checked once they are listed (AgentRegistry.resolveTools), at worker start.
    if (agent && (agent.mcpTools ?? []).length === 0) {
      const problems = checkPolicy(policy, agent.tools.map(toolSpec), text);
      if (problems.length > 0) throwPolicyProblems(source, problems);
    }
    const other = seen.get(policy.agent);
    if (other) throw new PolicyError(`${source}: agent ${policy.agent} already has a policy in ${other}`, source);
    seen.set(policy.agent, source);
    out.push(agent && (agent.mcpTools ?? []).length > 0 ? { policy, source, text } : { policy, source });
  }
  return out;
}

/** The fleet file's names in a policy directory: quotas and rate limits across agents, not an agent's policy. */
export const FLEET_FILES = ['fleet.yaml', 'fleet.yml', 'fleet.json'] as const;

/** Whether a file (by its name) is a policy directory's fleet file. */
export function isFleetFile(file: string): boolean {
  return (FLEET_FILES as readonly string[]).includes(path.basename(file));
}

/**
 * The fleet file of a policy directory (`fleet.yaml`), validated, with its path; undefined where
 * the directory has none. A bad file throws `PolicyError` naming the file, path, line and column.
 */
export function loadFleetPolicy(dir: string): { fleet: FleetPolicy; source: string } | undefined {
  const found = FLEET_FILES.map((name) => path.join(dir, name)).filter((f) => existsSync(f));
  if (found.length > 1) throw new PolicyError(`${dir} has more than one fleet file (${found.map((f) => path.basename(f)).join(', ')}): keep one`, dir);
  const source = found[0];
  if (!source) return undefined;
  return { fleet: parseFleetPolicyText(readFileSync(source, 'utf8'), source), source };
}
