import type { AuditEvent } from '../../governance';

/** One entry of a run's timeline: an audit event said in words, with the facts that matter for it. */
export interface TimelineEntry {
  seq: number;
  at: string;
  type: string;
  /** `model`, `decision`, `approval`, `tool`, `stop`, `operator`, `delegation`, `run`: the entry's colour. */
  kind: string;
  /** `ok`, `bad`, `warn` or ``: the entry's tone. */
  tone: string;
  title: string;
  facts: [label: string, value: string][];
  /** A run this entry names (a delegate, the delegating run): linked. */
  run?: { label: string; runId: string };
}

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v));
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** `1m 05s`, `2h 03m`, `850 ms`. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A JSON value shown in one line, cut at `max` characters. Arguments are as the trail holds them: redacted by the tool's schema. */
export function compact(value: unknown, max = 300): string {
  const text = JSON.stringify(value) ?? '';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * A verified trail as a timeline: model turns, each proposal with its decision (rule, policy
 * version), approvals with who decided and how long they waited, tool results, budget stops,
 * loop trips, pauses, rollbacks and delegations. Only what the trail holds is shown, as it holds it
 * (arguments redacted by the tool's schema when they were recorded).
 */
export function timelineOf(trail: readonly AuditEvent[]): TimelineEntry[] {
  const asked = new Map<string, AuditEvent>();
  const decisions = new Map<string, AuditEvent>();
  for (const e of trail) {
    if (e.type === 'approval_requested') asked.set(str(e.data.approvalId), e);
    if (e.type === 'policy_decision') decisions.set(str(e.data.callId), e);
  }
  const waited = (e: AuditEvent): string => {
    const a = asked.get(str(e.data.approvalId));
    return a ? duration(Date.parse(e.at) - Date.parse(a.at)) : '—';
  };
  const entries: TimelineEntry[] = [];
  for (const e of trail) {
    const d = e.data;
    const base = { seq: e.seq, at: e.at, type: e.type };
    const add = (kind: string, tone: string, title: string, facts: [string, string][] = [], run?: TimelineEntry['run']) => entries.push({ ...base, kind, tone, title, facts, ...(run ? { run } : {}) });
    switch (e.type) {
      case 'run_started': {
        const by = d.delegatedBy as { runId?: string; agent?: string } | undefined;
        add('run', '', `Run started by ${str(d.requester)}${d.requesterVerified ? ' (verified)' : ' (unverified)'}`, [
          ['Agent', str(d.agent)],
          ['Goal', str(d.goal)],
          ['Policy', `${str(d.policyVersion)} · ${str(d.policySource)}`],
          ['Model', str(d.model)],
          ...(d.tenant !== undefined ? ([['Tenant', str(d.tenant)]] as [string, string][]) : []),
        ], by?.runId ? { label: `delegated by agent ${str(by.agent)}`, runId: by.runId } : undefined);
        break;
      }
      case 'run_continued':
        add('run', '', `Continued as new (execution ${str(d.execution)})`, [['Messages', str(d.messageCount)]]);
        break;
      case 'model_turn':
        add('model', '', `Model turn ${str(d.step)}`, [
          ['Tokens', `${num(d.inputTokens)} in · ${num(d.outputTokens)} out`],
          ['Cost', `$${num(d.costUsd).toFixed(6)}`],
          ['Proposed', Array.isArray(d.calls) && d.calls.length > 0 ? d.calls.map(str).join(', ') : 'no calls (final answer)'],
          ...(str(d.text) ? ([['Text', str(d.text)]] as [string, string][]) : []),
        ]);
        break;
      case 'call_proposed':
        add('decision', '', `Proposed ${str(d.tool)}`, [['Call', str(d.callId)], ['Arguments', compact(d.args)]]);
        break;
      case 'schema_rejected':
        add('decision', 'bad', `Refused by schema: ${str(d.tool)}`, [['Call', str(d.callId)], ['Issues', compact(d.issues)]]);
        break;
      case 'policy_decision': {
        const decision = str(d.decision);
        const tone = decision === 'allow' ? 'ok' : decision === 'deny' ? 'bad' : 'warn';
        add('decision', tone, `${decision === 'allow' ? 'Allowed' : decision === 'deny' ? 'Denied' : 'Needs approval'}: ${str(d.tool)}`, [
          ['Call', str(d.callId)],
          ['Rule', str(d.ruleId)],
          ['Reason', str(d.reason)],
          ['Policy version', str(d.policyVersion)],
        ]);
        break;
      }
      case 'approval_requested':
        add('approval', 'warn', `Approval asked: ${str(d.tool)}`, [
          ['Approval', str(d.approvalId)],
          ['Rule', str(d.ruleId)],
          ['Approvers', Array.isArray(d.approvers) ? d.approvers.map(str).join(', ') : ''],
          ['Policy version', str(d.policyVersion)],
          ['Deadline', str(d.expiresAt)],
        ]);
        break;
      case 'approval_accepted':
      case 'rejection_accepted':
        add('approval', e.type === 'approval_accepted' ? 'ok' : 'bad', `${e.type === 'approval_accepted' ? 'Approval' : 'Rejection'} by ${str(d.approver)} via ${str(d.channel)}`, [
          ['Approval', str(d.approvalId)],
          ['Signed', d.signed ? 'yes' : 'no'],
          ...(str(d.note) ? ([['Note', str(d.note)]] as [string, string][]) : []),
          ['Waited', waited(e)],
        ]);
        break;
      case 'approval_decided':
        add('approval', d.decision === 'rejected' ? 'bad' : 'ok', `${d.decision === 'rejected' ? 'Rejected' : 'Approved'} by ${str(d.by)}`, [
          ['Approval', str(d.approvalId)],
          ['Waited', waited(e)],
        ]);
        break;
      case 'approval_refused':
        add('approval', 'bad', `Decision refused (${str(d.approver)} via ${str(d.channel)})`, [['Approval', str(d.approvalId)], ['Reason', str(d.reason)]]);
        break;
      case 'approval_expired':
        add('approval', 'bad', `Approval expired: ${str(d.tool)}`, [['Approval', str(d.approvalId)], ['Waited', waited(e)]]);
        break;
      case 'approval_escalated':
        add('approval', 'warn', 'Approval escalated', [['Approval', str(d.approvalId)], ['Approvers', compact(d.approvers)]]);
        break;
      case 'approval_withdrawn':
        add('approval', 'warn', `Approval withdrawn: ${str(d.tool)}`, [['Approval', str(d.approvalId)]]);
        break;
      case 'approval_notified':
        add('approval', d.error ? 'bad' : '', `Approvers notified via ${str(d.channel)}`, d.error ? [['Error', str(d.error)]] : []);
        break;
      case 'tool_started': {
        const decided = decisions.get(str(d.callId));
        add('tool', '', `Tool ${str(d.tool)} started`, [['Call', str(d.callId)], ...(decided ? ([['Rule', str(decided.data.ruleId)]] as [string, string][]) : [])]);
        break;
      }
      case 'tool_succeeded':
        add('tool', 'ok', `Tool ${str(d.tool)} succeeded`, [['Call', str(d.callId)], ['Attempts', str(d.attempts)], ['Result', compact(d.summary)]]);
        break;
      case 'tool_failed':
        add('tool', 'bad', `Tool ${str(d.tool)} failed`, [['Call', str(d.callId)], ['Error', str(d.error)]]);
        break;
      case 'compensation_run':
        add('operator', 'ok', `Undone: ${str(d.tool)}`, [['Call', str(d.callId)]]);
        break;
      case 'compensation_failed':
        add('operator', 'bad', `Undo failed: ${str(d.tool)}`, [['Call', str(d.callId)], ['Error', str(d.error)]]);
        break;
      case 'paused':
      case 'resumed':
        add('operator', e.type === 'paused' ? 'warn' : 'ok', `${e.type === 'paused' ? 'Paused' : 'Resumed'} by ${str(d.by) || 'someone'}${d.verified === true ? ' (verified)' : d.verified === false ? ' (unverified)' : ''}`, str(d.reason) ? [['Reason', str(d.reason)]] : []);
        break;
      case 'resume_refused':
      case 'operator_refused':
        add('operator', 'bad', `${str(d.action) || 'Operator command'} refused`, [['By', str(d.by)], ['Reason', str(d.reason)]]);
        break;
      case 'rollback_requested':
        add('operator', 'warn', `Rollback asked by ${str(d.by) || 'someone'}`, str(d.reason) ? [['Reason', str(d.reason)]] : []);
        break;
      case 'policy_applied':
        add('operator', d.refused ? 'bad' : '', d.refused ? 'Policy apply refused' : `Policy applied by ${str(d.by)}`, [['From', str(d.from)], ['To', str(d.to)], ...(d.error ? ([['Error', str(d.error)]] as [string, string][]) : [])]);
        break;
      case 'policy_shadow_diff':
        add('decision', 'warn', 'Shadow policy disagrees', [['Details', compact(d)]]);
        break;
      case 'budget_exhausted':
        add('stop', 'bad', `Budget stop: ${str(d.budget ?? d.limit ?? '')}`.trim(), [['Message', str(d.message)]]);
        break;
      case 'loop_detected':
        add('stop', 'bad', `Loop detected: ${str(d.tool)}`, [['Repeats', str(d.repeats)], ['Action', str(d.action)]]);
        break;
      case 'delegation_started':
        add('delegation', '', `Delegated to agent ${str(d.agent)}`, [['Call', str(d.callId)], ['Depth', str(d.depth)]], { label: `delegate run`, runId: str(d.runId) });
        break;
      case 'delegation_finished':
        add('delegation', d.status === 'completed' ? 'ok' : 'bad', `Delegation finished: ${str(d.status)}`, [['Call', str(d.callId)], ...(d.error ? ([['Error', str(d.error)]] as [string, string][]) : [])], d.runId ? { label: 'delegate run', runId: str(d.runId) } : undefined);
        break;
      case 'unencrypted_message':
        add('operator', d.accepted ? 'warn' : 'bad', `Unencrypted ${str(d.message)} ${d.accepted ? 'accepted' : 'refused'}`, []);
        break;
      case 'run_finished': {
        const usage = (d.usage ?? {}) as Record<string, unknown>;
        const status = str(d.status);
        add('run', status === 'completed' ? 'ok' : status === 'rolled_back' || status === 'cancelled' ? 'warn' : 'bad', `Run finished: ${status}`, [
          ['Reason', str(d.reason)],
          ['Steps', str(d.steps)],
          ['Tool calls', str(d.toolCalls)],
          ['Tokens', `${num(usage.inputTokens)} in · ${num(usage.outputTokens)} out`],
          ['Cost', `$${num(usage.costUsd).toFixed(6)}`],
        ]);
        break;
      }
      default:
        add('run', '', e.type, [['Details', compact(d)]]);
    }
  }
  return entries;
}

/** The runs a trail names around it: the run that delegated to it, and the runs it delegated to. */
export function delegationLinks(trail: readonly AuditEvent[]): { parent?: { runId: string; agent: string }; children: { runId: string; agent: string; status?: string }[] } {
  const started = trail.find((e) => e.type === 'run_started');
  const by = started?.data.delegatedBy as { runId?: unknown; agent?: unknown } | undefined;
  const children = new Map<string, { runId: string; agent: string; status?: string }>();
  for (const e of trail) {
    if (e.type === 'delegation_started' && typeof e.data.runId === 'string') children.set(e.data.runId, { runId: e.data.runId, agent: str(e.data.agent) });
    if (e.type === 'delegation_finished' && typeof e.data.runId === 'string') {
      const c = children.get(e.data.runId);
      if (c) c.status = str(e.data.status);
    }
  }
  return { ...(typeof by?.runId === 'string' ? { parent: { runId: by.runId, agent: str(by.agent) } } : {}), children: [...children.values()] };
}
