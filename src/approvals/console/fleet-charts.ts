import type { ApprovalWaitRow, FleetActivityRow, FleetRange } from '../../store/fleet-queries';

/** One chart as the page hands it to uPlot: x in Unix seconds (bucket starts), one array per series. */
export interface ChartSpec {
  id: string;
  title: string;
  unit: string;
  labels: string[];
  x: number[];
  series: number[][];
  /** Sums over the range, per series (wait charts: over all waits in the range), for the legend and for tests. */
  totals: number[];
}

export const DECISIONS = ['allow', 'deny', 'require_approval'] as const;
export const OUTCOMES = ['completed', 'failed', 'budget_exhausted', 'cancelled', 'rolled_back'] as const;

const BUCKET_MS = { hour: 3600_000, day: 86_400_000 } as const;

/** The bucket keys of a range, in order: `2026-12-06T23` per hour, `2026-12-06` per day (UTC), as the store groups them. */
export function bucketsOf(range: FleetRange): { key: string; start: number }[] {
  const step = BUCKET_MS[range.bucket];
  const chars = range.bucket === 'hour' ? 13 : 10;
  const out: { key: string; start: number }[] = [];
  const first = Math.floor(Date.parse(range.from) / step) * step;
  for (let t = first; t < Date.parse(range.to); t += step) out.push({ key: new Date(t).toISOString().slice(0, chars), start: t });
  return out;
}

/** The nearest-rank percentile of sorted values (`p` in 0..1); 0 when there are none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
}

const round = (v: number, digits = 6) => Math.round(v * 10 ** digits) / 10 ** digits;

/**
 * The fleet charts of a range from the store's aggregates: cost and tokens, calls by decision,
 * approval wait (median and p90), budget stops and loop trips, runs by outcome. Every bucket of the
 * range is present (zero where nothing happened), so the x axis is time as it passed.
 */
export function fleetCharts(range: FleetRange, activity: readonly FleetActivityRow[], waits: readonly ApprovalWaitRow[]): ChartSpec[] {
  const buckets = bucketsOf(range);
  const index = new Map(buckets.map((b, i) => [b.key, i]));
  const zeros = () => buckets.map(() => 0);
  const x = buckets.map((b) => b.start / 1000);
  const cost = zeros();
  const input = zeros();
  const output = zeros();
  const decisions = DECISIONS.map(zeros);
  const schema = zeros();
  const budget = zeros();
  const loops = zeros();
  const outcomes = OUTCOMES.map(zeros);
  const add = (series: number[] | undefined, i: number, v: number) => {
    if (series) series[i] = (series[i] ?? 0) + v;
  };
  for (const row of activity) {
    const i = index.get(row.bucket);
    if (i === undefined) continue;
    if (row.type === 'model_turn') {
      add(cost, i, row.costUsd);
      add(input, i, row.inputTokens);
      add(output, i, row.outputTokens);
    } else if (row.type === 'policy_decision') add(decisions[DECISIONS.indexOf(row.decision as (typeof DECISIONS)[number])], i, row.count);
    else if (row.type === 'schema_rejected') add(schema, i, row.count);
    else if (row.type === 'budget_exhausted') add(budget, i, row.count);
    else if (row.type === 'loop_detected') add(loops, i, row.count);
    else if (row.type === 'run_finished') add(outcomes[OUTCOMES.indexOf(row.status as (typeof OUTCOMES)[number])], i, row.count);
  }
  const byBucket = buckets.map(() => [] as number[]);
  for (const w of waits) {
    const i = index.get(w.bucket);
    if (i !== undefined) byBucket[i]?.push(w.waitMs / 1000);
  }
  const sortedAll = waits.map((w) => w.waitMs / 1000).sort((a, b) => a - b);
  const sorted = byBucket.map((v) => v.sort((a, b) => a - b));
  const sum = (s: number[]) => round(s.reduce((a, b) => a + b, 0));
  const spec = (id: string, title: string, unit: string, labels: string[], series: number[][], totals = series.map(sum)): ChartSpec => ({
    id,
    title,
    unit,
    labels,
    x,
    series: series.map((s) => s.map((v) => round(v))),
    totals,
  });
  return [
    spec('cost', 'Cost', 'USD', ['cost'], [cost]),
    spec('tokens', 'Tokens', 'tokens', ['input', 'output'], [input, output]),
    spec('decisions', 'Calls by decision', 'calls', ['allowed', 'denied', 'approval', 'refused by schema'], [...decisions, schema]),
    spec(
      'approval-wait',
      'Approval wait',
      'seconds',
      ['median', 'p90'],
      [sorted.map((v) => percentile(v, 0.5)), sorted.map((v) => percentile(v, 0.9))],
      [round(percentile(sortedAll, 0.5)), round(percentile(sortedAll, 0.9))],
    ),
    spec('stops', 'Budget stops and loop trips', 'events', ['budget stops', 'loop trips'], [budget, loops]),
    spec('outcomes', 'Runs by outcome', 'runs', ['completed', 'failed', 'budget exhausted', 'cancelled', 'rolled back'], outcomes),
  ];
}
