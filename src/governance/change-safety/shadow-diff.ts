import type { AuditEvent } from '../signing/audit-chain';
import type { CallProposal, GovernResult } from '../calls/govern-call';
import { diffKindOf, verdictOf, type DiffKind, type Verdict } from './what-if';

/** One side of a shadow comparison: what a policy said, and which version said it. */
export interface ShadowSide extends Verdict {
  policyVersion: string;
}

/** The data of a `policy_shadow_diff` audit event: the enforced policy and its shadow disagreed on a call. */
export interface ShadowDiff {
  callId: string;
  tool: string;
  kind: DiffKind;
  enforced: ShadowSide;
  shadow: ShadowSide;
}

/**
 * Compares what the enforced policy and its shadow made of one call (both through `governCall`,
 * from the same state), or null when they agree or either did not judge it.
 */
export function shadowDiffOf(call: CallProposal, enforced: GovernResult, enforcedVersion: string, shadow: GovernResult, shadowVersion: string): ShadowDiff | null {
  const a = verdictOf(enforced);
  const b = verdictOf(shadow);
  if (!a || !b) return null;
  const kind = diffKindOf(a, b);
  if (!kind) return null;
  return { callId: call.id, tool: call.name, kind, enforced: { ...a, policyVersion: enforcedVersion }, shadow: { ...b, policyVersion: shadowVersion } };
}

const side = (value: unknown): ShadowSide | null => {
  const v = value as Partial<ShadowSide> | null;
  if (typeof v !== 'object' || v === null || typeof v.decision !== 'string' || typeof v.ruleId !== 'string') return null;
  return { decision: v.decision, ruleId: v.ruleId, reason: typeof v.reason === 'string' ? v.reason : '', policyVersion: typeof v.policyVersion === 'string' ? v.policyVersion : '', ...(Array.isArray(v.approvers) ? { approvers: v.approvers.map(String) } : {}) };
};

/** The shadow disagreements a run's trail records, oldest first. */
export function shadowDiffsOf(runId: string, events: readonly AuditEvent[]): (ShadowDiff & { runId: string; seq: number; at: string })[] {
  return events.flatMap((e) => {
    if (e.type !== 'policy_shadow_diff') return [];
    const enforced = side(e.data.enforced);
    const shadow = side(e.data.shadow);
    if (!enforced || !shadow) return [];
    return [{ runId, seq: e.seq, at: e.at, callId: String(e.data.callId), tool: String(e.data.tool), kind: e.data.kind as DiffKind, enforced, shadow }];
  });
}
