import type { Logger } from 'pino';
import { z } from 'zod';
import { sha256Hex } from '../governance/signing/digest';
import { delegationToolName } from '../governance/policy/policy-tools';
import { DURATION_PATTERN, type RetrySettings } from '../governance';
import type { ScriptTurn } from '../workflows/run-types';
import type { McpTools } from './mcp';
import { errorMarker, WardenError } from '../errors';

/** What a tool's `run` and `compensate` receive besides the arguments. */
export interface ToolContext {
  /** Same for every attempt of the same call, and across worker restarts: pass it to the system you call. */
  idempotencyKey: string;
  runId: string;
  callId: string;
  agent: string;
  requester: string;
  /** 1 for the first attempt. */
  attempt: number;
  log: Logger;
  /**
   * Aborted when the call is cancelled (the run cancelled or rolled back while the tool runs, a
   * delegate cancelled) or its attempt timed out. Pass it on to `fetch` and the like, so a
   * cancelled call stops at once and writes no effect.
   */
  signal: AbortSignal;
  /** Records progress details a retry reads back (`heartbeatDetails`); Warden heartbeats on its own while the tool runs. */
  heartbeat(details?: unknown): void;
}

export type ToolRisk = 'low' | 'medium' | 'high';

export interface ToolOptions<S extends z.ZodType, R> {
  /** The name the model calls the tool by, and the Temporal activity type. */
  name: string;
  description: string;
  /** Arguments schema. Mark a field `.meta({ sensitive: true })` to keep it out of audit trails and approval screens. */
  input: S;
  run: (args: z.output<S>, ctx: ToolContext) => Promise<R> | R;
  /** Undoes a successful call; registered in the run's rollback plan when the call succeeds. */
  compensate?: (args: z.output<S>, result: R, ctx: ToolContext) => Promise<void> | void;
  /** Temporal retry policy for the call's activity; a policy file may override it. */
  retry?: RetrySettings;
  /** Start-to-close timeout of one attempt, e.g. `30s` (default `1m`). */
  timeout?: string;
  /**
   * How long the worker may go silent before the attempt counts as lost and is retried elsewhere
   * (default `10s`). Warden heartbeats while `run` runs; a tool need not call `ctx.heartbeat`.
   */
  heartbeatTimeout?: string;
  risk?: ToolRisk;
  /**
   * Run each call as a Temporal local activity, in the worker that runs the workflow: a few
   * milliseconds instead of a round trip through the server, for short, low-risk tools (a lookup,
   * a calculation). The trade-offs: retries happen inside the worker and show in history only as
   * the final result (no separate attempt events in the Temporal UI); an attempt is bounded by
   * `timeout` and cannot heartbeat; the tool must be registered on every worker of the task queue.
   * Governance is the same: schema, budgets, policy, approval and audit happen before it runs.
   */
  local?: boolean;
}

/** A defined tool. Create it with `defineTool`. */
export interface Tool<S extends z.ZodType = z.ZodType, R = unknown> extends ToolOptions<S, R> {
  readonly kind: 'warden.tool';
  /**
   * The name the model calls the tool by, when `name` has characters model providers refuse
   * (MCP tools: `mcp:github/create_issue` is offered as `mcp__github__create_issue`). Policies,
   * the audit trail and the activity type use `name`.
   */
  readonly modelName?: string;
  /** The input's JSON Schema as the tool's source declares it (an MCP server's listing); otherwise derived from `input`. */
  readonly inputJsonSchema?: Record<string, unknown>;
  /** Digest of the input schema. A run records it at start and refuses the tool once the worker's differs. */
  readonly schemaDigest?: string;
  /** Set on the tool a delegation is offered as (`agent:<name>`): the agent it hands the task to, as a child run. */
  readonly delegate?: string;
}

/** A tool of any schema and result, as agents hold them. */
// The function members make Tool invariant in its parameters; `never` accepts every tool.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTool = Tool<any, any>;

/**
 * An error a tool throws when trying again cannot help (bad input, a refused operation).
 * Temporal does not retry it; the model is told the message.
 */
export class ToolError extends WardenError {
  static override readonly marker = errorMarker('ToolError');
  override name = 'ToolError';
  constructor(
    message: string,
    readonly options: { retryable?: boolean } = {},
  ) {
    super(message);
  }
}

/** Whether an agent definition should be rejected; the message names the field. */
export class DefinitionError extends WardenError {
  static override readonly marker = errorMarker('DefinitionError');
  override name = 'DefinitionError';
}

const TOOL_NAME = /^[a-zA-Z][a-zA-Z0-9_-]{0,63}$/;
const AGENT_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * Defines a tool an agent can call. `run` executes as a Temporal activity named after the tool,
 * only after the call passed its schema, budget and policy checks.
 */
export function defineTool<S extends z.ZodType, R>(options: ToolOptions<S, R>): Tool<S, R> {
  if (!TOOL_NAME.test(options.name)) throw new DefinitionError(`tool name "${options.name}" must match ${TOOL_NAME.source}`);
  // Duck-typed, not instanceof: a user's project may bring its own copy of zod 4.
  if (typeof (options.input as { safeParse?: unknown } | undefined)?.safeParse !== 'function' || !('_zod' in options.input)) {
    throw new DefinitionError(`tool ${options.name}: input must be a zod 4 schema`);
  }
  if (options.timeout !== undefined && !DURATION_PATTERN.test(options.timeout)) {
    throw new DefinitionError(`tool ${options.name}: timeout "${options.timeout}" is not a duration such as 30s`);
  }
  if (options.heartbeatTimeout !== undefined && !DURATION_PATTERN.test(options.heartbeatTimeout)) {
    throw new DefinitionError(`tool ${options.name}: heartbeatTimeout "${options.heartbeatTimeout}" is not a duration such as 10s`);
  }
  if (options.local !== undefined && typeof options.local !== 'boolean') throw new DefinitionError(`tool ${options.name}: local must be true or false`);
  // A high-risk call's every attempt belongs in history, where the Temporal UI shows it.
  if (options.local && options.risk === 'high') throw new DefinitionError(`tool ${options.name}: a high-risk tool cannot run as a local activity (local: true is for short, low-risk tools)`);
  return { ...options, kind: 'warden.tool' };
}

/** A model through the Vercel AI SDK. Keys come from the environment, never from run input. */
export type ModelSpec =
  | `openai:${string}`
  | `anthropic:${string}`
  /** A GGUF model run on the worker's CPU: `local:smollm2` (fetched with `warden models fetch smollm2`) or `local:/path/to/model.gguf`. */
  | `local:${string}`
  | 'scripted'
  | { provider: 'openai-compatible'; name: string; baseURL: string; model: string; apiKeyEnv?: string }
  | { provider: 'scripted'; script: ScriptTurn[] };

/**
 * How much of its conversation an agent's model is sent on each call. Over the limit, the oldest
 * turns after the goal are left out (the system prompt, the goal and the newest turns stay; a tool
 * call and its result stay together), the goal says how many, and the `model_turn` audit event
 * records it. Tokens are estimated at four bytes each. The run store keeps the whole conversation.
 */
export interface ContextPolicy {
  maxTokens?: number;
  maxBytes?: number;
}

export interface AgentOptions {
  /** Lower-case letters, digits and `-`; names its policy file (`policies/<name>.yaml`) and its runs' ids. */
  name: string;
  description?: string;
  /** The system prompt. */
  instructions: string;
  model: ModelSpec;
  /** Tools made with `defineTool`, and the tools of MCP servers (`defineMcpTools`), listed when the worker starts. */
  tools: (AnyTool | McpTools)[];
  /**
   * Agents this one may hand a task to. The model sees each as a tool (`agent__<name>`, governed as
   * `agent:<name>`) taking a `goal`; an allowed (or approved) call starts the delegate as a child run
   * under its own policy and inside this run's remaining budgets, and its answer is the tool result.
   * The worker serves the delegates too.
   */
  delegates?: Agent[];
  /** The most of its conversation the model is sent per call (see `ContextPolicy`). Default: all of it. */
  context?: ContextPolicy;
}

export interface Agent extends Omit<AgentOptions, 'tools' | 'delegates'> {
  readonly kind: 'warden.agent';
  /** The agent's tools; an MCP server's join them once the registry has listed it (`AgentRegistry.resolveTools`). */
  tools: AnyTool[];
  /** The MCP servers whose tools the agent offers. */
  mcpTools: McpTools[];
  /** The agents it may delegate to (each offered to the model as a tool, in `tools`). */
  delegates: Agent[];
}

/** The arguments of a delegation: the task the delegate's run works on. */
export const delegationInput = z.strictObject({
  goal: z.string().min(1).max(8000).describe('The task for the other agent, with everything it needs to know: it sees nothing of this conversation.'),
});

/** The name a delegation is offered to the model by: within the characters and length providers accept. */
export function delegationModelName(agent: string): string {
  const name = `agent__${agent}`.replace(/[^a-zA-Z0-9_-]/g, '_');
  return name.length <= 64 ? name : `${name.slice(0, 55)}_${sha256Hex(agent).slice(0, 8)}`;
}

/** The tool a delegation is offered as. It never runs as an activity: the workflow starts the delegate's run. */
function delegationTool(parent: string, agent: Agent): AnyTool {
  return {
    kind: 'warden.tool',
    name: delegationToolName(agent.name),
    modelName: delegationModelName(agent.name),
    description: `Hand a task to the ${agent.name} agent${agent.description ? ` (${agent.description})` : ''}. It works on its own, under its own rules and within what is left of this run's budgets, and answers with its result.`,
    input: delegationInput,
    risk: 'medium',
    delegate: agent.name,
    run: () => {
      throw new DefinitionError(`agent ${parent}: a delegation to ${agent.name} runs as a child run, never as a tool activity`);
    },
  };
}

/** Defines an agent: its instructions, model and the tools it may propose. Its policy says which it may run. */
export function defineAgent(options: AgentOptions): Agent {
  if (!AGENT_NAME.test(options.name)) throw new DefinitionError(`agent name "${options.name}" must match ${AGENT_NAME.source}`);
  checkContextPolicy(options.name, options.context);
  const seen = new Set<string>();
  const tools: AnyTool[] = [];
  const mcpTools: McpTools[] = [];
  for (const tool of options.tools) {
    if (tool?.kind === 'warden.mcp-tools') {
      if (mcpTools.some((m) => m.server === tool.server)) throw new DefinitionError(`agent ${options.name}: two tool sets for MCP server ${tool.server}`);
      mcpTools.push(tool);
      continue;
    }
    if (tool?.kind !== 'warden.tool') throw new DefinitionError(`agent ${options.name}: tools must be created with defineTool or defineMcpTools`);
    if (seen.has(tool.name)) throw new DefinitionError(`agent ${options.name}: two tools are named ${tool.name}`);
    seen.add(tool.name);
    tools.push(tool);
  }
  const delegates: Agent[] = [];
  for (const delegate of options.delegates ?? []) {
    if (!isAgent(delegate)) throw new DefinitionError(`agent ${options.name}: delegates must be agents created with defineAgent`);
    if (delegate.name === options.name) throw new DefinitionError(`agent ${options.name}: an agent cannot delegate to itself`);
    if (delegates.some((d) => d.name === delegate.name)) throw new DefinitionError(`agent ${options.name}: delegates ${delegate.name} twice`);
    delegates.push(delegate);
    tools.push(delegationTool(options.name, delegate));
  }
  const { delegates: _given, ...rest } = options;
  return { ...rest, tools, mcpTools, delegates, kind: 'warden.agent' };
}

function checkContextPolicy(agent: string, context: ContextPolicy | undefined): void {
  if (context === undefined) return;
  if (typeof context !== 'object' || context === null) throw new DefinitionError(`agent ${agent}: context must be an object such as { maxTokens: 8000 }`);
  const unknown = Object.keys(context).filter((k) => k !== 'maxTokens' && k !== 'maxBytes');
  if (unknown.length > 0) throw new DefinitionError(`agent ${agent}: context has unknown field(s) ${unknown.join(', ')}; it takes maxTokens or maxBytes`);
  if ((context.maxTokens === undefined) === (context.maxBytes === undefined)) throw new DefinitionError(`agent ${agent}: context takes one of maxTokens or maxBytes`);
  const limit = context.maxTokens ?? context.maxBytes;
  if (!Number.isSafeInteger(limit) || (limit ?? 0) < 256) throw new DefinitionError(`agent ${agent}: context.${context.maxTokens !== undefined ? 'maxTokens' : 'maxBytes'} must be a whole number of at least 256`);
}

/** The id prices are looked up by in a policy's `pricing`. */
export function modelIdOf(model: ModelSpec): string {
  if (typeof model === 'string') return model;
  if (model.provider === 'scripted') return 'scripted';
  return `${model.name}:${model.model}`;
}

export function isAgent(value: unknown): value is Agent {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'warden.agent';
}
