import { SpanKind, SpanStatusCode, type Attributes, type Tracer } from '@opentelemetry/api';
import { Context } from '@temporalio/activity';
import type { AgentRegistry } from '../agents';
import { costOf } from '../governance';
import type { CallModelInput, CallModelResult, ToolActivity, ToolActivityInput } from '../activities/activity-types';
import { GEN_AI, WARDEN } from './conventions';
import type { WardenMetrics } from './metrics';

/** What the activity wrappers need: a tracer, the metrics, and each agent's model id. */
export interface ActivityTelemetry {
  tracer: Tracer;
  metrics: WardenMetrics;
  /** The agent's model id as policies price it: `openai:gpt-4o-mini`, `scripted`. */
  modelOf(agent: string): string;
}

/** `openai:gpt-4o-mini` → provider `openai`, model `gpt-4o-mini`; a bare id is its own provider. */
export function splitModelId(modelId: string): { provider: string; model: string } {
  const at = modelId.indexOf(':');
  return at > 0 ? { provider: modelId.slice(0, at), model: modelId.slice(at + 1) } : { provider: modelId, model: modelId };
}

/** The error's type for `error.type`: its Temporal failure type or class name, never its message (it may quote arguments). */
function errorType(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const type = (err as { type?: unknown }).type;
    if (typeof type === 'string' && type) return type;
    if (err instanceof Error) return err.name;
  }
  return 'error';
}

/**
 * Wraps the model activity in a `chat <model>` span (GenAI client span) that records the usage,
 * the cost at the run's price (the workflow hands it over, `CallModelInput.price`) and how many
 * calls the model proposed, and reports tokens, cost and duration as metrics. Prompts, answers
 * and arguments are not recorded: they stay in the run store.
 */
export function traceModelCall(telemetry: ActivityTelemetry, callModel: (input: CallModelInput) => Promise<CallModelResult>): (input: CallModelInput) => Promise<CallModelResult> {
  return async (input) => {
    const modelId = telemetry.modelOf(input.agent);
    const { provider, model } = splitModelId(modelId);
    const attributes: Attributes = {
      [GEN_AI.operationName]: 'chat',
      [GEN_AI.providerName]: provider,
      [GEN_AI.requestModel]: model,
      [GEN_AI.agentName]: input.agent,
      [GEN_AI.conversationId]: input.runId,
      [WARDEN.step]: input.step,
    };
    const started = performance.now();
    return telemetry.tracer.startActiveSpan(`chat ${model}`, { kind: SpanKind.CLIENT, attributes }, async (span) => {
      const facts = { agent: input.agent, provider, model, inputTokens: 0, outputTokens: 0, costUsd: 0 };
      try {
        const result = await callModel(input);
        const { inputTokens, outputTokens } = result.usage;
        const costUsd = costOf(input.price ?? undefined, inputTokens, outputTokens);
        span.setAttributes({ [GEN_AI.inputTokens]: inputTokens, [GEN_AI.outputTokens]: outputTokens, [WARDEN.costUsd]: costUsd, [WARDEN.proposedCalls]: result.calls.length });
        telemetry.metrics.modelCall({ ...facts, inputTokens, outputTokens, costUsd, durationS: (performance.now() - started) / 1000 });
        return result;
      } catch (err) {
        const type = errorType(err);
        span.setAttribute(WARDEN.errorType, type);
        span.setStatus({ code: SpanStatusCode.ERROR, message: type });
        telemetry.metrics.modelCall({ ...facts, durationS: (performance.now() - started) / 1000, error: type });
        throw err;
      } finally {
        span.end();
      }
    });
  };
}

/**
 * Wraps a tool activity in an `execute_tool <tool>` span (GenAI tool span) with how the call was
 * governed (`ToolActivityInput.governance`: decision, rule, and for an approved call who approved
 * and after how long). Arguments and results are not recorded: a tool's schema may mark fields
 * sensitive, and the full values are in the run store.
 */
export function traceToolCall(telemetry: ActivityTelemetry, tool: string, run: ToolActivity): ToolActivity {
  return async (input: ToolActivityInput) => {
    const g = input.governance;
    const attributes: Attributes = {
      [GEN_AI.operationName]: 'execute_tool',
      [GEN_AI.toolName]: tool,
      [GEN_AI.toolCallId]: input.callId,
      [GEN_AI.toolType]: 'function',
      [GEN_AI.agentName]: input.agent,
      [GEN_AI.conversationId]: input.runId,
      [WARDEN.attempt]: Context.current().info.attempt,
      ...(g ? { [WARDEN.decision]: g.decision, [WARDEN.ruleId]: g.ruleId, [WARDEN.policyVersion]: g.policyVersion } : {}),
      ...(g?.approval
        ? { [WARDEN.approvalId]: g.approval.approvalId, [WARDEN.approvers]: g.approval.approvers, [WARDEN.decidedBy]: g.approval.decidedBy, [WARDEN.approvalWaitMs]: g.approval.waitMs }
        : {}),
    };
    return telemetry.tracer.startActiveSpan(`execute_tool ${tool}`, { kind: SpanKind.INTERNAL, attributes }, async (span) => {
      try {
        return await run(input);
      } catch (err) {
        const type = errorType(err);
        span.setAttribute(WARDEN.errorType, type);
        span.setStatus({ code: SpanStatusCode.ERROR, message: type });
        throw err;
      } finally {
        span.end();
      }
    });
  };
}

/**
 * Puts the model activity and every tool activity of a worker in their spans (in place). Called
 * by `createActivities` when the worker has telemetry.
 */
export function traceActivities(
  telemetry: Pick<ActivityTelemetry, 'tracer' | 'metrics'>,
  registry: Pick<AgentRegistry, 'spec'>,
  core: { callModel: (input: CallModelInput) => Promise<CallModelResult> },
  tools: Record<string, ToolActivity>,
): void {
  const modelOf = (agent: string): string => {
    try {
      return registry.spec(agent).modelId;
    } catch {
      return 'unknown';
    }
  };
  const traced: ActivityTelemetry = { tracer: telemetry.tracer, metrics: telemetry.metrics, modelOf };
  core.callModel = traceModelCall(traced, core.callModel);
  for (const [name, run] of Object.entries(tools)) tools[name] = traceToolCall(traced, name, run);
}
