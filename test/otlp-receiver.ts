import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
// The protobuf classes the OTLP exporters encode with (generated static code, with decoders too):
// what a collector would decode, offline.
import generated from '@opentelemetry/otlp-transformer/build/src/generated/root';

interface MessageType {
  decode(bytes: Uint8Array): unknown;
  toObject(message: unknown, options: Record<string, unknown>): unknown;
}

interface OtlpRoot {
  opentelemetry: {
    proto: {
      collector: {
        trace: { v1: { ExportTraceServiceRequest: MessageType; ExportTraceServiceResponse: MessageType } };
        metrics: { v1: { ExportMetricsServiceRequest: MessageType } };
      };
    };
  };
}

const collector = (generated as unknown as OtlpRoot).opentelemetry.proto.collector;
const TO_OBJECT = { longs: Number, bytes: String, enums: Number, defaults: false, arrays: true };

type AnyValue = { stringValue?: string; boolValue?: boolean; intValue?: number; doubleValue?: number; arrayValue?: { values?: AnyValue[] }; kvlistValue?: { values?: KeyValue[] }; bytesValue?: string };
type KeyValue = { key: string; value?: AnyValue };

function valueOf(v: AnyValue | undefined): unknown {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return v.intValue;
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(valueOf);
  if (v.kvlistValue) return attributesOf(v.kvlistValue.values);
  return v.bytesValue;
}

function attributesOf(list: KeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) out[kv.key] = valueOf(kv.value);
  return out;
}

const hex = (base64: string | undefined): string => (base64 ? Buffer.from(base64, 'base64').toString('hex') : '');

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  events: { name: string; attributes: Record<string, unknown> }[];
  links: { traceId: string; spanId: string; attributes: Record<string, unknown> }[];
  status: { code?: number; message?: string };
  scope: string;
  resource: Record<string, unknown>;
}

export interface ReceivedPoint {
  attributes: Record<string, unknown>;
  /** Sums and gauges. */
  value?: number;
  /** Histograms. */
  count?: number;
  sum?: number;
}

export interface ReceivedMetric {
  name: string;
  unit: string;
  scope: string;
  points: ReceivedPoint[];
}

/**
 * An OTLP/HTTP receiver on 127.0.0.1: it takes what the OTLP/HTTP protobuf exporters send to
 * `/v1/traces` and `/v1/metrics`, decodes it with the OTLP protobuf definitions, and keeps the
 * raw bodies too (to search every exported byte).
 */
export interface OtlpReceiver {
  /** The base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` would name it. */
  url: string;
  spans: ReceivedSpan[];
  metrics: ReceivedMetric[];
  /** Every request body as received (after gunzip). */
  bodies: Buffer[];
  /** Requests that could not be decoded, with why. */
  errors: string[];
  close(): Promise<void>;
}

function decodeTraces(body: Buffer, into: ReceivedSpan[]): void {
  const type = collector.trace.v1.ExportTraceServiceRequest;
  const request = type.toObject(type.decode(body), TO_OBJECT) as {
    resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { scope?: { name?: string }; spans?: Record<string, unknown>[] }[] }[];
  };
  for (const rs of request.resourceSpans ?? []) {
    const resource = attributesOf(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        into.push({
          traceId: hex(s.traceId as string),
          spanId: hex(s.spanId as string),
          parentSpanId: hex(s.parentSpanId as string | undefined),
          name: String(s.name),
          kind: Number(s.kind ?? 0),
          attributes: attributesOf(s.attributes as KeyValue[]),
          events: ((s.events ?? []) as { name: string; attributes?: KeyValue[] }[]).map((e) => ({ name: e.name, attributes: attributesOf(e.attributes) })),
          links: ((s.links ?? []) as { traceId?: string; spanId?: string; attributes?: KeyValue[] }[]).map((l) => ({ traceId: hex(l.traceId), spanId: hex(l.spanId), attributes: attributesOf(l.attributes) })),
          status: s.status ?? {},
          scope: ss.scope?.name ?? '',
          resource,
        });
      }
    }
  }
}

type DataPoint = { attributes?: KeyValue[]; asDouble?: number; asInt?: number; count?: number; sum?: number };

function decodeMetrics(body: Buffer, into: ReceivedMetric[]): void {
  const type = collector.metrics.v1.ExportMetricsServiceRequest;
  const request = type.toObject(type.decode(body), TO_OBJECT) as {
    resourceMetrics?: { scopeMetrics?: { scope?: { name?: string }; metrics?: { name: string; unit?: string; sum?: { dataPoints?: DataPoint[] }; gauge?: { dataPoints?: DataPoint[] }; histogram?: { dataPoints?: DataPoint[] } }[] }[] }[];
  };
  for (const rm of request.resourceMetrics ?? []) {
    for (const sm of rm.scopeMetrics ?? []) {
      for (const m of sm.metrics ?? []) {
        const points = [...(m.sum?.dataPoints ?? []), ...(m.gauge?.dataPoints ?? [])].map((p) => ({ attributes: attributesOf(p.attributes), value: p.asDouble ?? p.asInt ?? 0 }));
        const histogram = (m.histogram?.dataPoints ?? []).map((p) => ({ attributes: attributesOf(p.attributes), count: p.count ?? 0, sum: p.sum ?? 0 }));
        into.push({ name: m.name, unit: m.unit ?? '', scope: sm.scope?.name ?? '', points: [...points, ...histogram] });
      }
    }
  }
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const metrics: ReceivedMetric[] = [];
  const bodies: Buffer[] = [];
  const errors: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        if (req.method !== 'POST') throw new Error(`${req.method} ${req.url}`);
        if (req.headers['content-type'] !== 'application/x-protobuf') throw new Error(`content-type ${req.headers['content-type']} on ${req.url}`);
        const raw = Buffer.concat(chunks);
        const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
        bodies.push(body);
        if (req.url === '/v1/traces') decodeTraces(body, spans);
        else if (req.url === '/v1/metrics') decodeMetrics(body, metrics);
        else throw new Error(`unexpected path ${req.url}`);
        // An empty Export*ServiceResponse: everything accepted.
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    metrics,
    bodies,
    errors,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
