import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { AuditEvent, Policy, SignedDecision } from '../governance';
import type { CompensationStep, PendingApproval, RunStatusView } from './types';

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
}

export interface ApplyPolicyInput {
  policy: Policy;
  by?: string;
}

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
export const applyPolicySignal = defineSignal<[ApplyPolicyInput]>('applyPolicy');

export const statusQuery = defineQuery<RunStatusView>('status');
export const pendingApprovalsQuery = defineQuery<PendingApproval[]>('pendingApprovals');
export const auditTrailQuery = defineQuery<AuditTrailView>('auditTrail');
export const rollbackPlanQuery = defineQuery<CompensationStep[]>('rollbackPlan');
