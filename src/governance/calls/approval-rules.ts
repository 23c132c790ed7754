import { durationMs } from '../policy/duration';
import { identityKey, isEligible, lookalikeApprover, normalizeIdentity, spellOut } from '../signing/identity-folding';
import type { VerifiedIdentity } from '../signing/keyring';
import type { ApprovalRequirement } from '../policy/policy-schema';
import type { DecisionClaims } from '../signing/signed-decision';

/** One person's approval of a pending call. Plain JSON. */
export interface ApprovalVote {
  /** Normalised identity. */
  approver: string;
  groups: string[];
  at: string;
  channel: string;
  comment?: string;
}

export type ApprovalStateName = 'pending' | 'approved' | 'rejected' | 'expired' | 'cancelled' | 'superseded';

/** A call waiting for people, as the run keeps it. Plain JSON; `args` are redacted. */
export interface ApprovalState {
  approvalId: string;
  runId: string;
  callId: string;
  tool: string;
  args: Record<string, unknown>;
  ruleId: string;
  reason: string;
  policyVersion: string;
  approvers: string[];
  quorum: number;
  votes: ApprovalVote[];
  requester: string;
  createdAt: string;
  expiresAt: string;
  escalated: boolean;
  state: ApprovalStateName;
  decidedBy?: string;
  note?: string;
}

/** A decision as it reached the run (signal or update), before anyone trusted it. */
export interface DecisionInput {
  kind: 'approve' | 'reject';
  approvalId: string;
  approver: string;
  note?: string;
}

/** Who the worker says decided: a verified identity, and the signed claims when there were any. */
export interface DecisionAuthority {
  identity: VerifiedIdentity | { id: string; groups: string[]; channel: string; keyId: null };
  claims?: DecisionClaims;
}

export type Judgement =
  | { verdict: 'refused'; reason: string }
  | { verdict: 'accepted'; approval: ApprovalState; settled: boolean; vote?: ApprovalVote };

/**
 * What can be said about a decision before anyone verified it: is there such an approval, is it
 * still waiting, is its deadline still ahead. Cheap and synchronous: an Update's validator calls
 * it, so junk never reaches history.
 */
export function precheckDecision(approval: ApprovalState | undefined, input: DecisionInput, nowMs: number): string | null {
  if (!approval) return `no approval ${input.approvalId} in this run (wrong run, call or arguments, or a policy change asked again under a new id)`;
  if (approval.state !== 'pending') return `approval ${input.approvalId} is already ${approval.state}`;
  if (nowMs > Date.parse(approval.expiresAt)) return `approval ${input.approvalId} expired at ${approval.expiresAt}; decisions after the deadline do not count`;
  return null;
}

/**
 * Judges one verified decision on one pending approval: the signed claims must name this run,
 * this approval, this kind of decision, the approver the message names and the note it carries;
 * then four-eyes, eligibility, one vote per person and the deadline (at decision time). Pure:
 * returns the new approval state, the caller audits and applies it.
 */
export function judgeDecision(approval: ApprovalState | undefined, input: DecisionInput, authority: DecisionAuthority, nowMs: number): Judgement {
  const early = precheckDecision(approval, input, nowMs);
  if (early || !approval) return { verdict: 'refused', reason: early ?? 'no such approval' };
  const { identity, claims } = authority;
  if (claims) {
    if (claims.runId !== approval.runId) return { verdict: 'refused', reason: `signed decision is for run ${claims.runId}, not this one` };
    if (claims.approvalId !== input.approvalId) return { verdict: 'refused', reason: `signed decision is for approval ${claims.approvalId}, not ${input.approvalId}` };
    if (claims.decision !== input.kind) return { verdict: 'refused', reason: `signed decision says ${claims.decision}, the message says ${input.kind}` };
    if (normalizeIdentity(claims.approver) !== normalizeIdentity(input.approver)) return { verdict: 'refused', reason: `signed decision is by ${claims.approver}, the message names ${input.approver}` };
    if ((claims.note ?? '') !== (input.note ?? '')) return { verdict: 'refused', reason: 'the comment or reason is not the one that was signed' };
  }
  const who = identity.id;
  if (!who) return { verdict: 'refused', reason: 'the decision names no approver' };
  // Look-alikes are one person where that takes a right away (four-eyes, one vote each), never where it gives one (eligibility).
  const key = identityKey(who);
  if (key === identityKey(approval.requester)) {
    const requester = normalizeIdentity(approval.requester);
    return { verdict: 'refused', reason: who === requester ? `four-eyes: ${who} requested this run and cannot decide its approvals` : `four-eyes: ${spellOut(who)} looks like ${spellOut(requester)}, who requested this run, and cannot decide its approvals` };
  }
  if (!isEligible(who, identity.groups, approval.approvers)) {
    const imitated = lookalikeApprover(who, approval.approvers);
    const lookalike = imitated === undefined ? '' : `; ${spellOut(who)} looks like ${spellOut(imitated)} but is spelled with other characters`;
    return { verdict: 'refused', reason: `${who} is not among the approvers (${approval.approvers.join(', ')})${lookalike}` };
  }
  const earlier = approval.votes.find((v) => identityKey(v.approver) === key);
  if (earlier) return { verdict: 'refused', reason: earlier.approver === who ? `${who} has already approved ${approval.approvalId}` : `${spellOut(who)} looks like ${spellOut(earlier.approver)}, who has already approved ${approval.approvalId}` };

  const at = new Date(nowMs).toISOString();
  if (input.kind === 'reject') {
    return { verdict: 'accepted', settled: true, approval: { ...approval, state: 'rejected', decidedBy: who, ...(input.note ? { note: input.note } : {}) } };
  }
  const vote: ApprovalVote = { approver: who, groups: [...identity.groups], at, channel: identity.channel, ...(input.note ? { comment: input.note } : {}) };
  const votes = [...approval.votes, vote];
  if (votes.length < approval.quorum) return { verdict: 'accepted', settled: false, vote, approval: { ...approval, votes } };
  return { verdict: 'accepted', settled: true, vote, approval: { ...approval, votes, state: 'approved', decidedBy: votes.map((v) => v.approver).join(', ') } };
}

/**
 * Hands a pending approval to the escalation approvers with a new deadline. Only votes of people
 * who are escalation approvers themselves still count: the quorum is of the escalation group.
 */
export function escalateApproval(approval: ApprovalState, escalation: NonNullable<ApprovalRequirement['escalation']>, nowMs: number): ApprovalState {
  const approvers = [...escalation.approvers];
  return {
    ...approval,
    escalated: true,
    approvers,
    votes: approval.votes.filter((v) => isEligible(v.approver, v.groups, approvers)),
    expiresAt: new Date(nowMs + durationMs(escalation.timeout)).toISOString(),
  };
}

/** Whether two approval requirements ask the same people the same way (a policy change keeps such an approval). */
export function sameRequirement(a: ApprovalRequirement | undefined, b: ApprovalRequirement | undefined): boolean {
  if (!a || !b) return a === b;
  const key = (r: ApprovalRequirement) => JSON.stringify([[...r.approvers].sort(), r.quorum, r.timeout, r.escalation ? [[...r.escalation.approvers].sort(), r.escalation.timeout] : null]);
  return key(a) === key(b);
}
