import { ApplicationFailure, Context } from '@temporalio/activity';
import { APICallError } from '@ai-sdk/provider';
import { generateText, jsonSchema, tool as aiTool, type ModelMessage, type ToolSet } from 'ai';
import type { Logger } from 'pino';
import type { ZodType } from 'zod';
import { ToolError, type AgentRegistry, type AnyTool, type ToolContext } from '../agents';
import type { RunStore } from '../store/types';
import { ModelConfigError, resolveModel } from './models';
import type { CallModelInput, CallModelResult, CompensateInput, CoreActivities, PrepareRunInput, RecordRunInput, ToolActivity, ToolActivityInput, ToolActivityResult } from './types';

export type * from './types';
export { NON_RETRYABLE_ERRORS } from './types';
export { resolveModel, scriptedModel, ModelConfigError } from './models';

export interface ActivityDeps {
  registry: AgentRegistry;
  store: RunStore;
  logger: Logger;
  /** Public keys (hex, by key id) of the channels whose signed approvals count. */
  trustedKeys?: Record<string, string>;
  /** Posts approval requests to Slack; absent when the worker has no Slack configuration. */
  notifyApproval?: CoreActivities['notifyApproval'];
}

const SUMMARY_CHARS = 200;

function summarize(value: unknown): string {
  const text = value === undefined ? 'done' : typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > SUMMARY_CHARS ? `${text.slice(0, SUMMARY_CHARS - 1)}…` : text;
}

function nonRetryable(type: string, message: string, cause?: unknown): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true, cause: cause instanceof Error ? cause : undefined });
}

/** Rethrows an error so Temporal retries only what can succeed on a retry. */
function classify(err: unknown): never {
  if (err instanceof ApplicationFailure) throw err;
  if (err instanceof ToolError) {
    if (err.options.retryable) throw ApplicationFailure.create({ type: 'ToolError', message: err.message, nonRetryable: false });
    throw nonRetryable('ToolError', err.message);
  }
  if (err instanceof ModelConfigError) throw nonRetryable('ModelConfigError', err.message);
  if (APICallError.isInstance(err) && !err.isRetryable) throw nonRetryable('ModelCallError', `${err.message} (HTTP ${err.statusCode ?? '?'})`);
  throw err;
}

function toolsForModel(registry: AgentRegistry, agent: string): ToolSet {
  const spec = registry.spec(agent);
  const set: ToolSet = {};
  for (const t of spec.tools) {
    // No validate function: the workflow does the schema check, so a bad call reaches
    // governance (and the audit trail) instead of being dropped inside the SDK.
    set[t.name] = aiTool({ description: t.description, inputSchema: jsonSchema(t.inputSchema) });
  }
  return set;
}

function toolResultRow(seq: number, callId: string, toolName: string, value: unknown) {
  return { seq, message: { role: 'tool', content: [{ type: 'tool-result', toolCallId: callId, toolName, output: { type: 'json', value: value ?? null } }] } };
}

function toolContext(input: ToolActivityInput, logger: Logger): ToolContext {
  const ctx = Context.current();
  return {
    idempotencyKey: input.idempotencyKey,
    runId: input.runId,
    callId: input.callId,
    agent: input.agent,
    requester: input.requester,
    attempt: ctx.info.attempt,
    log: logger.child({ runId: input.runId, callId: input.callId, tool: ctx.info.activityType }),
    signal: ctx.cancellationSignal,
    heartbeat: (details?: unknown) => ctx.heartbeat(details),
  };
}

function parseArgs(tool: AnyTool, args: unknown): unknown {
  const schema = tool.input as ZodType;
  const parsed = schema.safeParse(args);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(arguments)'}: ${i.message}`).join('; ');
    throw nonRetryable('ToolInputError', `invalid arguments for ${tool.name}: ${issues}`);
  }
  return parsed.data;
}

/**
 * The activities a worker registers: Warden's own (prepare, model call, compensation, record)
 * and one per tool, under the tool's name, so the Temporal UI shows which tool ran.
 */
export function createActivities(deps: ActivityDeps): Partial<CoreActivities> & Record<string, ToolActivity | CoreActivities[keyof CoreActivities]> {
  const { registry, store, logger } = deps;
  const trustedKeys = deps.trustedKeys ?? {};
  const notifications = { slack: deps.notifyApproval !== undefined };
  // The tool set an agent offers its model never changes while the worker runs: build it once.
  const toolSets = new Map<string, ToolSet>();
  const modelTools = (agent: string): ToolSet => {
    let set = toolSets.get(agent);
    if (!set) toolSets.set(agent, (set = toolsForModel(registry, agent)));
    return set;
  };

  const core: Omit<CoreActivities, 'notifyApproval'> & Partial<Pick<CoreActivities, 'notifyApproval'>> = {
    async prepareRun(input: PrepareRunInput) {
      let agent;
      try {
        agent = registry.spec(input.agent);
      } catch (err) {
        throw nonRetryable('DefinitionError', err instanceof Error ? err.message : String(err));
      }
      if (!input.loadPolicy) return { agent, trustedKeys, notifications };
      const applied = await store.getAppliedPolicy(input.agent);
      if (applied) return { agent, trustedKeys, notifications, policy: applied.policy as never, policySource: `${applied.source} (applied ${applied.appliedAt})` };
      const fromFile = registry.policyFor(input.agent);
      if (!fromFile) throw nonRetryable('PolicyError', `no policy for agent ${input.agent}: add policies/${input.agent}.yaml (every tool call is denied without one)`);
      return { agent, trustedKeys, notifications, policy: fromFile.policy, policySource: fromFile.source };
    },

    async callModel(input: CallModelInput): Promise<CallModelResult> {
      await store.appendAudit(input.runId, input.audit);
      await store.appendMessages(input.runId, input.append);
      const agent = registry.get(input.agent);
      const messages = (await store.readMessages(input.runId, input.upTo)) as ModelMessage[];
      let result;
      try {
        result = await generateText({
          model: resolveModel(agent.model, input.scriptTurn),
          system: agent.instructions,
          messages,
          tools: modelTools(agent.name),
          // Temporal owns retries: one place, visible in history, with backoff across worker restarts.
          maxRetries: 0,
          abortSignal: Context.current().cancellationSignal,
        });
      } catch (err) {
        classify(err);
      }
      const assistant = result.response.messages.filter((m) => m.role === 'assistant');
      const content = assistant.flatMap((m) => (typeof m.content === 'string' ? [{ type: 'text' as const, text: m.content }] : m.content));
      await store.appendMessages(input.runId, [{ seq: input.upTo, message: { role: 'assistant', content } }], 'replace');
      return {
        calls: result.toolCalls.map((c) => ({ id: c.toolCallId, name: c.toolName, args: (c.input ?? {}) as Record<string, unknown> })),
        text: result.text,
        usage: { inputTokens: result.usage.inputTokens ?? 0, outputTokens: result.usage.outputTokens ?? 0 },
      };
    },

    async compensateCall(input: CompensateInput): Promise<ToolActivityResult> {
      await store.appendAudit(input.runId, input.audit);
      const tool = registry.tools().get(input.tool);
      if (!tool?.compensate) throw nonRetryable('DefinitionError', `tool ${input.tool} has no compensation`);
      const rows = await store.readMessages(input.runId, input.resultSeq + 1);
      const row = rows[input.resultSeq] as { content?: { output?: { value?: unknown } }[] } | undefined;
      const result = row?.content?.[0]?.output?.value;
      try {
        await tool.compensate(parseArgs(tool, input.args), result, toolContext(input, logger));
      } catch (err) {
        classify(err);
      }
      return { summary: `compensated ${input.tool}`, attempt: Context.current().info.attempt };
    },

    async recordRun(input: RecordRunInput) {
      await store.appendAudit(input.runId, input.audit);
      await store.appendMessages(input.runId, input.append);
    },
  };
  if (deps.notifyApproval) core.notifyApproval = deps.notifyApproval;

  const tools: Record<string, ToolActivity> = {};
  for (const [name, tool] of registry.tools()) {
    tools[name] = async (input: ToolActivityInput): Promise<ToolActivityResult> => {
      await store.appendAudit(input.runId, input.audit);
      const args = parseArgs(tool, input.args);
      let value: unknown;
      try {
        value = await tool.run(args, toolContext(input, logger));
      } catch (err) {
        classify(err);
      }
      await store.appendMessages(input.runId, [toolResultRow(input.resultSeq, input.callId, name, value)], 'replace');
      return { summary: summarize(value), attempt: Context.current().info.attempt };
    };
  }
  return { ...tools, ...core };
}
