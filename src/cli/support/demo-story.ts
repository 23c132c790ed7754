import type { AuditEvent } from '../../governance';
import { compact, out, truncate } from '../format';

// How the demo prints what a run did: a heading per scene, and the run's governance story read
// from its audit trail.

/** A scene's title, underlined. */
export function heading(title: string): void {
  out();
  out(title);
  out('─'.repeat(Math.min(title.length, 100)));
}

/** The governance story of a run, from its audit trail: each decision, what ran, what stopped it. */
export function storyLines(events: AuditEvent[]): string[] {
  const args = new Map<string, unknown>();
  const lines: string[] = [];
  const str = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  for (const e of events) {
    const d = e.data;
    const call = typeof d.callId === 'string' ? d.callId : '';
    switch (e.type) {
      case 'call_proposed':
        args.set(call, d.args);
        break;
      case 'policy_decision': {
        const label = d.decision === 'allow' ? 'ALLOW   ' : d.decision === 'deny' ? 'DENY    ' : 'APPROVAL';
        lines.push(`  ${label} ${str(d.tool)} ${compact(args.get(call) ?? {}, 80)}  [rule ${str(d.ruleId)}]`);
        if (d.decision !== 'allow') lines.push(`           ${str(d.reason)}`);
        break;
      }
      case 'schema_rejected':
        lines.push(`  INVALID  ${str(d.tool)} ${compact(args.get(call) ?? {}, 80)}  [the tool's schema]`);
        lines.push(`           ${truncate((d.issues as unknown[] | undefined)?.map(str).join('; ') ?? '', 120)}`);
        break;
      case 'tool_succeeded':
        lines.push(`           ran ${str(d.tool)} → ${truncate(str(d.summary), 90)}`);
        break;
      case 'tool_failed':
        lines.push(`           ${str(d.tool)} failed: ${str(d.error)}`);
        break;
      case 'loop_detected':
        lines.push(`  LOOP     ${str(d.tool)} proposed with the same arguments ${str(d.repeats)} times in the last ${str(d.window)} calls → ${str(d.action)}; that call did not run`);
        break;
      case 'budget_exhausted':
        lines.push(`  BUDGET   ${str(d.message)}`);
        break;
      case 'approval_refused':
        lines.push(`  REFUSED  decision by ${str(d.approver)}: ${str(d.reason)}`);
        break;
      case 'approval_accepted':
      case 'rejection_accepted':
        lines.push(`  DECIDED  ${e.type === 'approval_accepted' ? 'approve' : 'reject'} by ${str(d.approver)} (groups ${(d.groups as string[] | undefined)?.join(',') || '-'}, channel ${str(d.channel)}, ${d.signed ? 'signed' : 'unsigned'})`);
        break;
      case 'paused':
      case 'resumed':
        lines.push(`  ${e.type.toUpperCase().padEnd(8)} by ${str(d.by)}${d.reason ? `: ${str(d.reason)}` : ''}`);
        break;
      case 'delegation_started':
        lines.push(`  DELEGATE ${str(d.agent)} → run ${str(d.runId)}`);
        break;
      case 'delegation_finished':
        lines.push(`           ${str(d.agent)} ${str(d.status)}${d.reason ? `: ${str(d.reason)}` : ''} (its audit head #${str((d.audit as { seq?: unknown } | undefined)?.seq ?? '?')} recorded here)`);
        break;
      case 'rollback_requested':
        lines.push(`  ROLLBACK requested by ${str(d.by)}${d.reason ? `: ${str(d.reason)}` : ''}`);
        break;
      case 'compensation_run':
        lines.push(`  UNDONE   ${str(d.tool)} (${call})`);
        break;
      case 'compensation_failed':
        lines.push(`  UNDO FAILED ${str(d.tool)} (${call}): ${str(d.error)}`);
        break;
      default:
        break;
    }
  }
  return lines;
}

/**
 * A story with each block (an event line and its indented detail lines) once, in the order first
 * seen, with how many times it happened: a real model proposes the same call turn after turn.
 */
export function collapsed(lines: readonly string[]): string[] {
  const blocks: { text: string[]; count: number }[] = [];
  const seen = new Map<string, { text: string[]; count: number }>();
  let current: string[] | null = null;
  const flush = () => {
    if (!current) return;
    const key = current.join('\n');
    const block = seen.get(key);
    if (block) block.count += 1;
    else {
      const fresh = { text: current, count: 1 };
      seen.set(key, fresh);
      blocks.push(fresh);
    }
  };
  for (const line of lines) {
    if (/^ {2}\S/.test(line)) {
      flush();
      current = [line];
    } else if (current) current.push(line);
    else current = [line];
  }
  flush();
  return blocks.flatMap((b) => (b.count === 1 ? b.text : [`${b.text[0]}  (×${b.count})`, ...b.text.slice(1)]));
}
