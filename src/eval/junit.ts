import type { CaseReport } from './run';

const escape = (text: string): string =>
  // XML 1.0 has no way to write most control characters: they are dropped.
  // eslint-disable-next-line no-control-regex
  text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '').replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] ?? c);

/**
 * The reports as JUnit XML, one `testcase` per golden case (classname: the agent), a `failure`
 * listing what failed, and what changed in `system-out`: what CI systems show as test results.
 */
export function junitXml(reports: readonly CaseReport[], suite = 'warden eval'): string {
  const failed = reports.filter((r) => !r.passed).length;
  const seconds = (ms: number) => (ms / 1000).toFixed(3);
  const total = reports.reduce((n, r) => n + r.durationMs, 0);
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<testsuites name="${escape(suite)}" tests="${reports.length}" failures="${failed}" time="${seconds(total)}">`];
  lines.push(`  <testsuite name="${escape(suite)}" tests="${reports.length}" failures="${failed}" errors="0" time="${seconds(total)}">`);
  for (const r of reports) {
    lines.push(`    <testcase name="${escape(r.name)}" classname="${escape(r.agent)}" time="${seconds(r.durationMs)}">`);
    if (!r.passed) lines.push(`      <failure message="${escape(r.failures[0] ?? 'failed')}">${escape(r.failures.join('\n'))}</failure>`);
    const out = [`replay ${r.runId} of ${r.recordedRunId}`, `outcome ${r.outcome.replayed.status}, ${r.budget.steps} step(s), ${r.budget.toolCalls} tool call(s), $${r.budget.costUsd.toFixed(6)}`, ...r.changes];
    lines.push(`      <system-out>${escape(out.join('\n'))}</system-out>`);
    lines.push('    </testcase>');
  }
  lines.push('  </testsuite>', '</testsuites>', '');
  return lines.join('\n');
}
