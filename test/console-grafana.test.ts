/**
 * docs/grafana-dashboard.json against the metrics Warden exports: every metric a panel queries is
 * one the worker records (src/telemetry/metrics.ts), as Prometheus names an OpenTelemetry metric,
 * and every label it filters or groups by is an attribute of src/telemetry/conventions.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { GEN_AI, WARDEN } from '../src/telemetry/conventions';

const root = path.join(__dirname, '..');
const dashboard = JSON.parse(readFileSync(path.join(root, 'docs/grafana-dashboard.json'), 'utf8')) as {
  uid: string;
  panels: { id: number; title: string; gridPos: object; targets: { expr: string }[] }[];
  templating: { list: { name: string; query: string }[] };
};

/** The instruments metrics.ts creates: OpenTelemetry name, kind and unit. */
function instruments(): { name: string; kind: 'counter' | 'histogram'; unit: string }[] {
  const source = readFileSync(path.join(root, 'src/telemetry/metrics.ts'), 'utf8');
  const found = [...source.matchAll(/create(Counter|Histogram)\('([^']+)', \{ unit: '([^']*)'/g)];
  return found.map((m) => ({ name: m[2] ?? '', kind: m[1] === 'Counter' ? ('counter' as const) : ('histogram' as const), unit: m[3] ?? '' }));
}

/**
 * The series names Prometheus gives an instrument (OTLP into Prometheus, or a collector's
 * Prometheus exporter): dots to underscores, the unit as a suffix when it is a real unit (`s` is
 * `seconds`; `{token}`-style annotations are dropped), `_total` on counters, `_bucket`, `_sum` and
 * `_count` on histograms.
 */
function seriesOf(i: { name: string; kind: 'counter' | 'histogram'; unit: string }): string[] {
  const base = i.name.replace(/\./g, '_') + (i.unit === 's' ? '_seconds' : '');
  return i.kind === 'counter' ? [`${base}_total`] : [`${base}_bucket`, `${base}_sum`, `${base}_count`];
}

const queries = () => [...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)), ...dashboard.templating.list.map((v) => v.query)];

describe('Grafana dashboard', () => {
  test('every metric a panel or variable queries is one Warden exports, under its Prometheus name', () => {
    const known = new Set(instruments().flatMap(seriesOf));
    expect(known.size).toBeGreaterThan(10);
    // A metric is followed by its label matchers or range, or is label_values' first argument.
    const used = new Set(queries().flatMap((q) => [...q.matchAll(/\b([a-z_]+)\s*[{[]|label_values\(([a-z_]+)/g)].map((m) => m[1] ?? m[2] ?? '')));
    expect(used.size).toBeGreaterThan(5);
    for (const name of used) expect({ name, known: known.has(name) }).toEqual({ name, known: true });
  });

  test('every label it uses is an attribute of the telemetry conventions', () => {
    const attributes = new Set([...Object.values(GEN_AI), ...Object.values(WARDEN)].map((a) => a.replace(/\./g, '_')));
    const labels = new Set(
      queries().flatMap((q) => [
        ...[...q.matchAll(/\b([a-z_]+)\s*=~?\s*"/g)].map((m) => m[1] ?? ''),
        ...[...q.matchAll(/by \(([^)]*)\)/g)].flatMap((m) => (m[1] ?? '').split(',').map((l) => l.trim())),
        ...[...q.matchAll(/label_values\([^,]+,\s*([a-z_]+)\)/g)].map((m) => m[1] ?? ''),
      ]),
    );
    labels.delete('le');
    expect(labels.size).toBeGreaterThan(3);
    for (const label of labels) expect({ label, known: attributes.has(label) }).toEqual({ label, known: true });
  });

  test('it charts cost, tokens, decisions, approval wait, budget stops and model latency, each panel placed once', () => {
    const text = queries().join('\n');
    for (const series of ['warden_gen_ai_cost_total', 'gen_ai_client_token_usage_sum', 'warden_policy_decisions_total', 'warden_approval_wait_seconds_bucket', 'warden_budget_exhaustions_total', 'gen_ai_client_operation_duration_seconds_bucket']) {
      expect(text).toContain(series);
    }
    expect(dashboard.uid).toBe('warden-fleet');
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    expect(new Set(dashboard.panels.map((p) => JSON.stringify(p.gridPos))).size).toBe(dashboard.panels.length);
  });
});
