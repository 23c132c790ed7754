/**
 * Workflow interceptors for a worker that traces: Temporal's (RunWorkflow, StartActivity,
 * HandleSignal/HandleUpdate spans and trace context in activity headers) and Warden's
 * `invoke_agent <agent>` span around each run. Not a workflow: a module for
 * `interceptors.workflowModules` or `bundleWorkflowCode({ workflowInterceptorModules })`
 * (`WORKFLOW_TELEMETRY_MODULES`). Sandbox-safe.
 *
 * Spans made here are exported through Temporal's `exporter` sink, which is not called during
 * replay; their ids come from the workflow's seeded random source and their times from workflow
 * time, so a run replayed after eviction ends the same span it started.
 */
// First: Temporal's workflow module gives the sandbox the `performance` the OpenTelemetry SDK reads as it loads.
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow';
import { SpanKind, SpanStatusCode, context, trace, type Span, type Tracer } from '@opentelemetry/api';
import { BasicTracerProvider, SimpleSpanProcessor, type IdGenerator } from '@opentelemetry/sdk-trace-base';
import { extractContextFromHeaders, instrument } from '@temporalio/interceptors-opentelemetry/lib/instrumentation';
import { SpanExporter } from '@temporalio/interceptors-opentelemetry/lib/workflow/span-exporter';
import { ContinueAsNew, workflowInfo, type Next, type QueryInput, type WorkflowExecuteInput, type WorkflowInboundCallsInterceptor, type WorkflowInterceptors } from '@temporalio/workflow';
import { GEN_AI, WARDEN } from './conventions';
import { RUN_TRACE_API } from './workflow-events';

/**
 * The instrumentation scope of the spans Warden makes in workflow code. Defined here and only
 * here: a worker given a prebuilt bundle looks for it to tell whether the bundle has these
 * interceptors (every bundle has the rest of src/telemetry's workflow-side code).
 */
export const WORKFLOW_TELEMETRY_SCOPE = 'warden-workflow-telemetry';

// config.ts's AGENT_RUN_WORKFLOW, not imported: config.ts reads the environment and files, which the sandbox has not.
const AGENT_RUN_WORKFLOW = 'agentRun';

interface RunInputView {
  agent?: unknown;
}

interface RunOutcomeView {
  status?: unknown;
  steps?: unknown;
  toolCalls?: unknown;
  usage?: { inputTokens?: unknown; outputTokens?: unknown; costUsd?: unknown };
}

const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

function recordOutcome(span: Span, result: unknown): void {
  const outcome = (typeof result === 'object' && result !== null ? result : {}) as RunOutcomeView;
  const set = (key: string, value: string | number | undefined) => {
    if (value !== undefined) span.setAttribute(key, value);
  };
  set(WARDEN.outcome, typeof outcome.status === 'string' ? outcome.status : undefined);
  set(WARDEN.steps, num(outcome.steps));
  set(WARDEN.toolCalls, num(outcome.toolCalls));
  set(GEN_AI.inputTokens, num(outcome.usage?.inputTokens));
  set(GEN_AI.outputTokens, num(outcome.usage?.outputTokens));
  set(WARDEN.costUsd, num(outcome.usage?.costUsd));
  // A run that ended badly ended as its policy or its people said: the outcome says which; only
  // a failure is an error.
  if (outcome.status === 'failed') span.setStatus({ code: SpanStatusCode.ERROR, message: 'run failed' });
}

/** `invoke_agent <agent>` around one execution of an agent run (GenAI agent span). */
export class InvokeAgentInterceptor implements WorkflowInboundCallsInterceptor {
  async execute(input: WorkflowExecuteInput, next: Next<WorkflowInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const info = workflowInfo();
    if (info.workflowType !== AGENT_RUN_WORKFLOW) return next(input);
    const [first] = input.args as [RunInputView | undefined];
    const agent = typeof first?.agent === 'string' ? first.agent : 'unknown';
    const tracer = trace.getTracer(WORKFLOW_TELEMETRY_SCOPE);
    const span = tracer.startSpan(`invoke_agent ${agent}`, {
      kind: SpanKind.INTERNAL,
      attributes: {
        [GEN_AI.operationName]: 'invoke_agent',
        [GEN_AI.agentName]: agent,
        [GEN_AI.conversationId]: info.workflowId,
        [WARDEN.runId]: info.workflowId,
      },
    });
    try {
      const result = await context.with(trace.setSpan(context.active(), span), () => next(input));
      recordOutcome(span, result);
      return result;
    } catch (err) {
      if (err instanceof ContinueAsNew) {
        span.setAttribute(WARDEN.continuedAsNew, true);
      } else {
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.name : 'error' });
      }
      throw err;
    } finally {
      span.end();
    }
  }
}

/** `length` hex characters digested from `text` (FNV-1a rounds): ids that need no random source. */
function hexDigest(text: string, length: number): string {
  let out = '';
  for (let round = 0; out.length < length; round++) {
    let h = (0x811c9dc5 ^ round) >>> 0;
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
    out += h.toString(16).padStart(8, '0');
  }
  return out.slice(0, length);
}

/** Ids for one query's span, from what makes that query unique; set before each query's span starts. */
class QuerySpanIds implements IdGenerator {
  seed = '';
  generateTraceId(): string {
    return hexDigest(`${this.seed}/trace`, 32);
  }
  generateSpanId(): string {
    return hexDigest(`${this.seed}/span`, 16);
  }
}

const querySpanIds = new QuerySpanIds();
let queryTracer: Tracer | undefined;
let queries = 0;

/**
 * Temporal's inbound interceptor, except for queries: their `HandleQuery` spans take their ids
 * from the query (its id, the caller's span, the run, a count) instead of the run's seeded random
 * source. A query is not part of a run's history: drawing from that source gave its span the id a
 * span of the run had drawn (or would draw on replay) — one span id in two traces — and moved the
 * run's random sequence off the one its replay follows.
 */
class WardenInboundInterceptor extends OpenTelemetryInboundInterceptor {
  override async handleQuery(input: QueryInput, next: Next<WorkflowInboundCallsInterceptor, 'handleQuery'>): Promise<unknown> {
    const parent = extractContextFromHeaders(input.headers);
    const caller = parent ? trace.getSpanContext(parent) : undefined;
    const info = workflowInfo();
    querySpanIds.seed = `${input.queryId}|${caller?.traceId ?? ''}|${caller?.spanId ?? ''}|${info.workflowId}|${info.runId}|${++queries}|${Date.now()}`;
    queryTracer ??= new BasicTracerProvider({ idGenerator: querySpanIds, spanProcessors: [new SimpleSpanProcessor(new SpanExporter())] }).getTracer('@temporalio/interceptor-workflow');
    return instrument({ tracer: queryTracer, spanName: `HandleQuery:${input.queryName}`, fn: () => next(input), ...(parent ? { context: parent } : {}) });
  }
}

export const interceptors = (): WorkflowInterceptors => {
  // Called once for each run, on the run's own global: its telemetry (workflow-events.ts) reports through this.
  (globalThis as { [RUN_TRACE_API]?: typeof trace })[RUN_TRACE_API] = trace;
  return {
    // The first inbound interceptor is the outermost: RunWorkflow, then invoke_agent inside it.
    inbound: [new WardenInboundInterceptor(), new InvokeAgentInterceptor()],
    outbound: [new OpenTelemetryOutboundInterceptor()],
    internals: [new OpenTelemetryInternalsInterceptor()],
  };
};
