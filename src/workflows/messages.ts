import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { AuditEvent, SignedDecision } from '../governance/workflow-safe';
import type { CompensationStep, PendingApproval, RunStatusView } from './run-types';

// Wire names are part of the product: operators type them into the Temporal UI.
// Each constant's name ends in its kind and matches its wire name.

/** A decision by a person on one pending approval. `signature` is set by channels that authenticate people. */
export interface ApproveInput {
  approvalId: string;
  approver: string;
  /** Groups the approver belongs to, as the channel's identity says (checked against the signature when signed). */
  groups?: string[];
  comment?: string;
  channel?: string;
  signature?: SignedDecision;
}

export interface RejectInput {
  approvalId: string;
  approver: string;
  groups?: string[];
  reason?: string;
  channel?: string;
  signature?: SignedDecision;
}

export interface OperatorInput {
  by?: string;
  reason?: string;
  /**
   * A signed operator command (`DecisionSigner.signOperator`) for this action and run, by a key
   * with the `operator` role: needed to resume and roll back; a signed pause names who paused.
   */
  signature?: SignedDecision;
}

/**
 * Asks the run to take up its agent's current policy from the worker (the policy directory or
 * `warden policy apply`). The signal carries no policy: a policy never arrives through Temporal.
 */
export interface ApplyPolicyInput {
  by?: string;
  /** A signed operator command (`DecisionSigner.signOperator`, action `applyPolicy`) by a key with the `policy-admin` role. */
  signature?: SignedDecision;
}

/** The answer of the `approve`/`reject` Updates: whether the run counted the decision, and why not. */
export type DecisionReply =
  | { status: 'accepted'; approvalId: string; approver: string; decided: boolean; state?: 'approved' | 'rejected'; by?: string }
  | { status: 'refused'; approvalId: string; reason: string };

export interface AuditTrailView {
  /** Events this execution holds; events before `firstSeq` were flushed to the run store before a continue-as-new. */
  events: AuditEvent[];
  firstSeq: number;
  headSeq: number;
}

export const approveSignal = defineSignal<[ApproveInput]>('approve');
export const rejectSignal = defineSignal<[RejectInput]>('reject');
export const pauseSignal = defineSignal<[OperatorInput?]>('pause');
export const resumeSignal = defineSignal<[OperatorInput?]>('resume');
export const rollbackSignal = defineSignal<[OperatorInput?]>('rollback');
export const applyPolicySignal = defineSignal<[ApplyPolicyInput?]>('applyPolicy');

// The same decisions as Updates: the caller learns in the same round trip whether it counted.
// Signals stay for people typing into the Temporal UI's signal form.
export const approveUpdate = defineUpdate<DecisionReply, [ApproveInput]>('approve');
export const rejectUpdate = defineUpdate<DecisionReply, [RejectInput]>('reject');

export const statusQuery = defineQuery<RunStatusView>('status');
export const pendingApprovalsQuery = defineQuery<PendingApproval[]>('pendingApprovals');
export const auditTrailQuery = defineQuery<AuditTrailView>('auditTrail');
export const rollbackPlanQuery = defineQuery<CompensationStep[]>('rollbackPlan');
