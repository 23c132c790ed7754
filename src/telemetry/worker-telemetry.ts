import { readFileSync } from 'node:fs';
// Loaded only by a worker that traces: the interceptors bring the OpenTelemetry SDK.
import type * as TemporalOtel from '@temporalio/interceptors-opentelemetry/lib/worker';
import type { InjectedSink, InjectedSinks, WorkerOptions } from '@temporalio/worker';
import type { OpenTelemetryWorkflowExporter } from '@temporalio/interceptors-opentelemetry/lib/workflow';
import type { WorkflowInfo } from '@temporalio/workflow';
import type { Logger } from 'pino';
import { TELEMETRY_SINK } from './conventions';
import type * as WorkflowInterceptors from './workflow-interceptors';
import type { WardenTelemetry } from './setup';
import type { WardenTelemetrySinks } from './workflow-events';

/**
 * The workflow interceptor modules of a worker that traces. A worker that bundles its own
 * workflows adds them itself; a prebuilt bundle must include them:
 * `bundleWorkflowCode({ workflowsPath, workflowInterceptorModules: WORKFLOW_TELEMETRY_MODULES })`.
 */
export const WORKFLOW_TELEMETRY_MODULES: readonly string[] = [require.resolve('./workflow-interceptors')];

/** Whether a prebuilt workflow bundle was built with `WORKFLOW_TELEMETRY_MODULES`. */
export function bundleHasTelemetry(bundle: { codePath: string } | { code: string }): boolean {
  const code = 'code' in bundle ? bundle.code : readFileSync(bundle.codePath, 'utf8');
  // The scope's one definition is in the workflow interceptors' module, loaded only here.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return code.includes((require('./workflow-interceptors') as typeof WorkflowInterceptors).WORKFLOW_TELEMETRY_SCOPE);
}

function temporalOtel(): typeof TemporalOtel {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('@temporalio/interceptors-opentelemetry/lib/worker') as typeof TemporalOtel;
}

/** Sinks that drop everything: for a bundle with telemetry on a worker without it. */
function droppingSinks(): InjectedSinks<WardenTelemetrySinks & { exporter: { export(spans: unknown[]): void } }> {
  return { exporter: { export: { fn: () => undefined } }, [TELEMETRY_SINK]: { record: { fn: () => undefined } } };
}

/**
 * Temporal's workflow span exporter, given only the identifying part of the run's WorkflowInfo:
 * Temporal's sink copies the whole of it (memo, search attributes with the requester, history
 * sizes) into every workflow span's attributes.
 */
function workflowSpanSink(telemetry: WardenTelemetry): InjectedSink<OpenTelemetryWorkflowExporter> {
  const temporal = temporalOtel().makeWorkflowExporter(telemetry.spanProcessor, telemetry.resource);
  return {
    export: {
      fn: (info, spans) => {
        const { workflowId, runId, workflowType, taskQueue, namespace, attempt } = info;
        return temporal.export.fn({ workflowId, runId, workflowType, taskQueue, namespace, attempt } as WorkflowInfo, spans);
      },
    },
  };
}

/**
 * The Temporal worker options that make a worker trace: activity interceptors (RunActivity spans,
 * trace context from the workflow), workflow interceptor modules (RunWorkflow, StartActivity and
 * `invoke_agent` spans), and the sinks workflow code reports through: Temporal's span exporter and
 * Warden's governance facts (metrics). Sinks are not called during replay.
 *
 * Without telemetry it returns only what a telemetry bundle needs so that its sink calls are not
 * logged as errors.
 */
export function telemetryWorkerOptions(telemetry: WardenTelemetry | undefined, workflowBundle: { codePath: string } | { code: string } | undefined, logger: Logger): Partial<WorkerOptions> {
  const bundled = workflowBundle ? bundleHasTelemetry(workflowBundle) : false;
  if (!telemetry) return bundled ? { sinks: droppingSinks() } : {};
  if (workflowBundle && !bundled) {
    logger.warn('telemetry: the workflow bundle was built without WORKFLOW_TELEMETRY_MODULES, so runs have no workflow spans (invoke_agent, RunWorkflow) or governance metrics; activity spans are exported');
  }
  const { tracer } = telemetry;
  const { OpenTelemetryActivityInboundInterceptor, OpenTelemetryActivityOutboundInterceptor } = temporalOtel();
  const sinks: InjectedSinks<WardenTelemetrySinks> = { [TELEMETRY_SINK]: { record: { fn: (_info, fact) => telemetry.metrics.governance(fact) } } };
  return {
    interceptors: {
      activity: [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx, { tracer }), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) })],
      ...(workflowBundle ? {} : { workflowModules: [...WORKFLOW_TELEMETRY_MODULES] }),
    },
    sinks: { ...sinks, exporter: workflowSpanSink(telemetry) },
  };
}
