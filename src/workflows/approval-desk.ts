import { condition, workflowInfo } from '@temporalio/workflow';
import type { VerifyDecisionInput, VerifyDecisionResult } from '../activities/activity-types';
import {
  approvalIdFor,
  durationMs,
  escalateApproval,
  judgeDecision,
  precheckDecision,
  type ApprovalRequirement,
  type ApprovalState,
  type AuditEventType,
  type Decision,
  type DecisionInput,
} from '../governance/workflow-safe';
import { APPROVALS_MEMO, approvalsMemo } from './approvals-memo';
import type { ApproveInput, DecisionReply, RejectInput } from './messages';
import type { PendingApproval } from './run-types';
import { failureMessage, text } from './message-values';
import { DecisionRefusedError } from './update-refusals';

/** What becomes of a call that waited: it runs, it does not (and the model is told why), or people are asked again. */
export type ApprovalOutcome = { kind: 'run' } | { kind: 'refuse'; message: string } | { kind: 'ask'; approvalId: string };

/** What the desk needs from its run. */
export interface DeskHost {
  runId: string;
  record(type: AuditEventType, data: Record<string, unknown>): void;
  /** Whether a rollback was asked for: a waiting approval gives way to it. */
  rollingBack(): boolean;
  /** The worker's verdict on who decided (`verifyDecision`, with its current keyring). */
  verify(input: VerifyDecisionInput): Promise<VerifyDecisionResult>;
  /** The run's `pendingApprovals` answer, which the memo mirrors. */
  pending(): PendingApproval[];
  /** Writes memo fields now (with the audit anchor, if it moved, in the same upsert). */
  writeMemo(fields: Record<string, unknown>): void;
  /** Whether the run writes the approvals memo (`patched(APPROVALS_MEMO_PATCH)`, or implied by a later patch). */
  memoPatched(): boolean;
}

/** The call an approval is for, as governance saw it (`args` already redacted). */
export interface ApprovalCall {
  seq: number;
  id: string;
  name: string;
  args: unknown;
  redactedArgs: Record<string, unknown>;
}

/**
 * The run's approvals: asking, waiting (escalation, expiry, rollback, policy changes), and taking
 * people's decisions from signals and Updates. The rules are `judgeDecision`'s; this module does
 * the bookkeeping and the waiting, in workflow code.
 */
export class ApprovalDesk {
  private readonly approvals = new Map<string, ApprovalState>();
  /** Approvals a policy change withdrew, and what the new policy said instead. */
  private readonly replacements = new Map<string, ApprovalOutcome>();
  /** The approvals memo as last written (JSON), or null before the first write. */
  private memoWritten: string | null = null;

  constructor(private readonly host: DeskHost) {}

  get(approvalId: string): ApprovalState | undefined {
    return this.approvals.get(approvalId);
  }

  hasPending(): boolean {
    return [...this.approvals.values()].some((a) => a.state === 'pending');
  }

  /** The `pendingApprovals` query's answer. */
  view(paused: boolean): PendingApproval[] {
    return [...this.approvals.values()]
      .filter((a) => a.state === 'pending')
      .map(({ votes, state: _state, decidedBy: _by, note: _note, policyVersion: _version, ...view }) => ({ ...view, approvals: votes, paused }));
  }

  /**
   * The memo field for the pending approvals (`APPROVALS_MEMO`) when they differ from what was
   * last written, else nothing; the caller writes it (with the audit anchor where it anchors
   * anyway). Nothing is written before the run's first approval, nor in histories recorded
   * before the memo existed (the patch): those emit no command they did not emit before.
   */
  memoChange(): Record<string, unknown> {
    const memo = approvalsMemo(this.host.pending());
    const json = JSON.stringify(memo);
    if (json === this.memoWritten || (this.memoWritten === null && memo.count === 0)) return {};
    if (!this.host.memoPatched()) return {};
    this.memoWritten = json;
    return { [APPROVALS_MEMO]: memo };
  }

  /** Writes the approvals memo if the pending approvals changed: after a decision, an escalation, an expiry, a pause. */
  publish(): void {
    this.host.writeMemo(this.memoChange());
  }

  /** Asks for approval of a call; its id binds the call's position and the policy version that asked. */
  open(call: ApprovalCall, decision: Decision, requirement: ApprovalRequirement, requester: string): ApprovalState {
    const now = Date.now();
    const { runId } = this.host;
    const approval: ApprovalState = {
      approvalId: approvalIdFor({ runId, execution: workflowInfo().firstExecutionRunId, seq: call.seq, callId: call.id, tool: call.name, args: call.args, policyVersion: decision.policyVersion }),
      runId,
      callId: call.id,
      tool: call.name,
      args: call.redactedArgs,
      ruleId: decision.ruleId,
      reason: decision.reason,
      policyVersion: decision.policyVersion,
      approvers: [...requirement.approvers],
      quorum: requirement.quorum,
      votes: [],
      requester,
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + durationMs(requirement.timeout)).toISOString(),
      escalated: false,
      state: 'pending',
    };
    this.approvals.set(approval.approvalId, approval);
    this.host.record('approval_requested', {
      approvalId: approval.approvalId,
      callId: call.id,
      tool: call.name,
      ruleId: decision.ruleId,
      approvers: approval.approvers,
      quorum: approval.quorum,
      expiresAt: approval.expiresAt,
      policyVersion: decision.policyVersion,
    });
    return approval;
  }

  /**
   * Waits until people decide, the deadline passes (escalating once if the rule says so, then
   * failing closed), a rollback is asked for, or a policy change withdraws the approval.
   * `onWait` is told each time the wait (re)starts, for status lines.
   */
  async wait(approvalId: string, requirement: ApprovalRequirement, onWait: (approval: ApprovalState) => void): Promise<ApprovalOutcome> {
    for (;;) {
      const waiting = this.approvals.get(approvalId);
      if (!waiting) return { kind: 'refuse', message: 'not run: the approval is gone' };
      onWait(waiting);
      this.publish();
      const left = Date.parse(waiting.expiresAt) - Date.now();
      const changed = await condition(() => this.approvals.get(approvalId)?.state !== 'pending' || this.host.rollingBack(), Math.max(left, 1));
      const outcome = this.settleWait(approvalId, waiting, changed, requirement);
      if (outcome === 'again') continue;
      this.publish();
      return outcome;
    }
  }

  /** What a wait that woke up comes to; `again` after an escalation, whose new wait starts at once. */
  private settleWait(approvalId: string, waiting: ApprovalState, changed: boolean, requirement: ApprovalRequirement): ApprovalOutcome | 'again' {
    const approval = this.approvals.get(approvalId) ?? waiting;
    if (approval.state === 'approved') return { kind: 'run' };
    if (approval.state === 'rejected') {
      return { kind: 'refuse', message: `not run: approval ${approvalId} was rejected by ${approval.decidedBy ?? '?'}${approval.note ? `: ${approval.note}` : ''}` };
    }
    if (approval.state === 'superseded') return this.replacements.get(approvalId) ?? { kind: 'refuse', message: 'not run: the policy changed' };
    if (changed || this.host.rollingBack()) {
      this.approvals.set(approvalId, { ...approval, state: 'cancelled' });
      return { kind: 'refuse', message: 'not run: the run is being rolled back' };
    }
    const escalation = requirement.escalation;
    if (escalation && !approval.escalated) {
      const escalated = escalateApproval(approval, escalation, Date.now());
      this.approvals.set(approvalId, escalated);
      this.host.record('approval_escalated', { approvalId, approvers: escalated.approvers, expiresAt: escalated.expiresAt, votesKept: escalated.votes.length });
      return 'again';
    }
    this.approvals.set(approvalId, { ...approval, state: 'expired' });
    this.host.record('approval_expired', { approvalId, tool: approval.tool });
    return { kind: 'refuse', message: `not run: approval ${approvalId} expired with no decision (fails closed)` };
  }

  /** A policy change withdrew this approval: the call's wait ends with `outcome` instead. */
  supersede(approvalId: string, outcome: ApprovalOutcome): void {
    const approval = this.approvals.get(approvalId);
    if (!approval || approval.state !== 'pending') return;
    this.approvals.set(approvalId, { ...approval, state: 'superseded' });
    this.replacements.set(approvalId, outcome);
  }

  /** The run ends: nothing waits any more. */
  cancelPending(): void {
    for (const approval of this.approvals.values()) if (approval.state === 'pending') this.approvals.set(approval.approvalId, { ...approval, state: 'cancelled' });
  }

  /** The Update validator: refuses, before anything is recorded, what cannot count. */
  validate(kind: 'approve' | 'reject', input: ApproveInput | RejectInput): void {
    const parsed = decisionInput(kind, input);
    if (typeof parsed === 'string') throw new DecisionRefusedError(parsed);
    const early = precheckDecision(this.approvals.get(parsed.approvalId), parsed, Date.now());
    if (early) throw new DecisionRefusedError(early);
  }

  /**
   * One decision from a signal or an Update. The worker verifies who decided (signature, revoked
   * keys, what the key may assert) with its current keyring; `judgeDecision` applies four-eyes,
   * eligibility, distinct people, the deadline and the signed claims. Never throws: a bad
   * decision is refused, audited, and changes nothing.
   */
  async decide(kind: 'approve' | 'reject', input: ApproveInput | RejectInput): Promise<DecisionReply> {
    const record = (type: AuditEventType, data: Record<string, unknown>) => this.host.record(type, data);
    const approvalId = text(input?.approvalId) ?? '';
    const refuse = (reason: string): DecisionReply => {
      record('approval_refused', { kind, approvalId: approvalId || null, approver: text(input?.approver), channel: text(input?.channel), reason });
      return { status: 'refused', approvalId, reason };
    };
    const parsed = decisionInput(kind, input);
    if (typeof parsed === 'string') return refuse(parsed);
    const early = precheckDecision(this.approvals.get(approvalId), parsed, Date.now());
    if (early) return refuse(early);
    let authority: VerifyDecisionResult;
    try {
      authority = await this.host.verify({ runId: this.host.runId, nowMs: Date.now(), approver: input.approver, groups: input.groups, channel: input.channel, signature: input.signature });
    } catch (err) {
      return refuse(`the worker could not verify the decision: ${failureMessage(err)}`);
    }
    if ('refused' in authority) return refuse(authority.refused);
    // Judged after the await, against the approval as it is now: another decision may have settled it.
    const judged = judgeDecision(this.approvals.get(approvalId), parsed, authority, Date.now());
    if (judged.verdict === 'refused') return refuse(judged.reason);
    const { approval } = judged;
    this.approvals.set(approvalId, approval);
    const who = authority.identity;
    record(kind === 'approve' ? 'approval_accepted' : 'rejection_accepted', {
      approvalId,
      approver: who.id,
      groups: who.groups,
      channel: who.channel,
      keyId: who.keyId,
      signed: authority.claims !== undefined,
      note: parsed.note ?? null,
    });
    this.publish();
    if (!judged.settled) return { status: 'accepted', approvalId, approver: who.id, decided: false };
    const state = approval.state === 'rejected' ? 'rejected' : 'approved';
    const by = approval.decidedBy ?? who.id;
    record('approval_decided', { approvalId, decision: state, by });
    return { status: 'accepted', approvalId, approver: who.id, decided: true, state, by };
  }
}

/** The decision a message carries, or why it is malformed. Messages come from anyone: every field is checked. */
function decisionInput(kind: 'approve' | 'reject', input: ApproveInput | RejectInput): DecisionInput | string {
  if (typeof input !== 'object' || input === null || typeof input.approvalId !== 'string' || typeof input.approver !== 'string' || input.approver.trim() === '') {
    return 'malformed decision: expected {"approvalId": "...", "approver": "..."}';
  }
  const note = kind === 'approve' ? (input as ApproveInput).comment : (input as RejectInput).reason;
  if (note !== undefined && typeof note !== 'string') return 'malformed decision: the comment or reason must be text';
  return { kind, approvalId: input.approvalId, approver: input.approver, ...(note ? { note } : {}) };
}
