import { isSpanContextValid, trace } from '@opentelemetry/api';

/**
 * A pino `mixin` that adds the active span's `trace_id` and `span_id` to every log line, so a
 * line written inside an activity (a tool's `ctx.log` too) finds its trace. Adds nothing outside
 * a span or without telemetry. `pino({ mixin: traceContextMixin })`.
 */
export function traceContextMixin(): Record<string, string> {
  const span = trace.getActiveSpan();
  const ctx = span?.spanContext();
  if (!ctx || !isSpanContextValid(ctx)) return {};
  return { trace_id: ctx.traceId, span_id: ctx.spanId, trace_flags: `0${ctx.traceFlags.toString(16)}` };
}
