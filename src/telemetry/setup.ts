import { metrics as metricsApi, type Meter, type Tracer } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { Resource } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type MetricReader } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { errorMarker, WardenError } from '../errors';
import { WORKER_TELEMETRY_SCOPE } from './conventions';
import { WardenMetrics } from './metrics';

/** A telemetry setting that cannot work (an endpoint that is no URL, nowhere to export to). */
export class TelemetryError extends WardenError {
  static override readonly marker = errorMarker('TelemetryError');
  override name = 'TelemetryError';
}

export interface TelemetryOptions {
  /**
   * The OTLP/HTTP base URL, as in `OTEL_EXPORTER_OTLP_ENDPOINT` (`http://collector:4318`): spans
   * go to `<endpoint>/v1/traces`, metrics to `<endpoint>/v1/metrics`, protobuf-encoded.
   */
  endpoint?: string;
  /** Headers for every export (an API key of a hosted backend). */
  headers?: Record<string, string>;
  /** `service.name` of everything exported. Default `warden`. */
  serviceName?: string;
  /** More resource attributes (`deployment.environment.name`, …). */
  resourceAttributes?: Record<string, string>;
  /** How often metrics are exported, in ms. Default 60 000. */
  metricIntervalMs?: number;
  /** Instead of OTLP to `endpoint`: where spans go (tests, another protocol). */
  spanExporter?: SpanExporter;
  /** Instead of OTLP to `endpoint`: what reads the metrics. */
  metricReader?: MetricReader;
}

/**
 * Traces and metrics of one process (a worker, a client), exported over OTLP/HTTP. Pass it as
 * the `telemetry` option of `createWardenWorker` and `WardenClient.connect`; call `shutdown()`
 * when the process stops so the last spans and metrics leave.
 */
export interface WardenTelemetry {
  readonly tracer: Tracer;
  readonly meter: Meter;
  readonly metrics: WardenMetrics;
  readonly resource: Resource;
  /** Where workflow spans (exported through Temporal's sink) are handed over. */
  readonly spanProcessor: SpanProcessor;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/**
 * Sets up tracing and metrics. With neither `endpoint` nor an exporter it throws: telemetry that
 * goes nowhere is a misconfiguration. Library code never reads `OTEL_*` itself; see
 * `telemetryFromEnv` for the CLI's reading of them.
 */
export function createTelemetry(options: TelemetryOptions): WardenTelemetry {
  const endpoint = options.endpoint ? trimSlash(options.endpoint) : undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^/]/.test(endpoint)) throw new TelemetryError(`telemetry endpoint must be an http(s) URL, got "${options.endpoint}"`);
  const spanExporter = options.spanExporter ?? (endpoint ? new OTLPTraceExporter({ url: `${endpoint}/v1/traces`, headers: options.headers }) : undefined);
  const metricReader =
    options.metricReader ??
    (endpoint
      ? new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ url: `${endpoint}/v1/metrics`, headers: options.headers }), exportIntervalMillis: options.metricIntervalMs ?? 60_000 })
      : undefined);
  if (!spanExporter || !metricReader) throw new TelemetryError('telemetry needs an OTLP endpoint (or a span exporter and a metric reader)');

  const resource = Resource.default().merge(new Resource({ 'service.name': options.serviceName ?? 'warden', ...options.resourceAttributes }));
  const spanProcessor = new BatchSpanProcessor(spanExporter);
  const tracerProvider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  const meterProvider = new MeterProvider({ resource, readers: [metricReader] });
  // The process's providers, context manager and propagator (what the OTel Node SDK does): trace
  // context crosses client → workflow → activity in Temporal headers through the global W3C
  // propagator; spans made inside activities (chat, execute_tool, and a tool's own through
  // `@opentelemetry/api`) find their parent through the active context. Whatever someone
  // registered first is kept.
  tracerProvider.register();
  metricsApi.setGlobalMeterProvider(meterProvider);
  const meter = meterProvider.getMeter(WORKER_TELEMETRY_SCOPE);
  let stopped: Promise<void> | null = null;
  return {
    tracer: tracerProvider.getTracer(WORKER_TELEMETRY_SCOPE),
    meter,
    metrics: new WardenMetrics(meter),
    resource,
    spanProcessor,
    async forceFlush() {
      await Promise.all([tracerProvider.forceFlush(), meterProvider.forceFlush()]);
    },
    shutdown() {
      return (stopped ??= Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]).then(() => undefined));
    },
  };
}

/**
 * The CLI's telemetry: on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, off (undefined) otherwise.
 * Reads `OTEL_SERVICE_NAME` and `OTEL_EXPORTER_OTLP_HEADERS` (`key=value,key2=value2`) too.
 */
export function telemetryFromEnv(env: NodeJS.ProcessEnv = process.env, defaults: Pick<TelemetryOptions, 'serviceName'> = {}): WardenTelemetry | undefined {
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!endpoint) return undefined;
  if (!/^https?:\/\/[^/]/.test(endpoint)) throw new TelemetryError(`OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL such as http://127.0.0.1:4318, got "${endpoint}"`);
  const headers: Record<string, string> = {};
  for (const pair of (env.OTEL_EXPORTER_OTLP_HEADERS ?? '').split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    try {
      headers[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim());
    } catch {
      throw new TelemetryError(`OTEL_EXPORTER_OTLP_HEADERS: "${pair.slice(0, at).trim()}" is not URL-encoded correctly`);
    }
  }
  const interval = Number(env.OTEL_METRIC_EXPORT_INTERVAL);
  return createTelemetry({
    endpoint,
    headers,
    serviceName: env.OTEL_SERVICE_NAME?.trim() || defaults.serviceName,
    ...(Number.isFinite(interval) && interval > 0 ? { metricIntervalMs: interval } : {}),
  });
}
