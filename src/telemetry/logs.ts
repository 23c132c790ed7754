import { isSpanContextValid, trace } from '@opentelemetry/api';
import pino, { type Logger } from 'pino';

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

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** One pino line for a person: `12:00:01.123 INFO  message  key=value …`. */
export function prettyLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { time, level, msg, pid: _pid, hostname: _hostname, name: _name, ...rest } = entry;
  const at = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return `${at} ${(LEVEL_NAMES[Number(level)] ?? String(level)).padEnd(5)} ${typeof msg === 'string' ? msg : ''}${fields.length > 0 ? `  ${fields.join(' ')}` : ''}\n`;
}

/**
 * The worker's logger: one JSON object per line (for a log collector), or, with `pretty`, one
 * readable line each (`warden worker --pretty`, `WARDEN_LOG_PRETTY=1`, or a terminal). Active
 * trace and span ids ride every line (`traceContextMixin`).
 */
export function workerLogger(options: { name: string; level: string; pretty: boolean; stream?: NodeJS.WritableStream }): Logger {
  const stream = options.stream ?? process.stdout;
  const destination = options.pretty ? { write: (line: string) => stream.write(prettyLine(line)) } : stream;
  return pino({ name: options.name, level: options.level, mixin: traceContextMixin }, destination);
}
