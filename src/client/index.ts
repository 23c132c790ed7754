/**
 * Starting and steering runs: `WardenClient` starts runs, reads their status, approvals and audit
 * trails (taking only a run's own words), and sends them decisions and operator commands.
 */
export { WardenClient } from './warden-client';
export type { DecisionOptions, StartRunOptions, StartSigner } from './warden-client';
export { OperatorCommandError } from './operator-command';
export type { OperatorCommand, OperatorSigner } from './operator-command';
export type { AuditTrailCheck } from './audit-verification';
export type { PendingApprovalsListing, RunApprovals, RunFilter, RunSummary } from './listings';
export { RunInputError, UntrustedRunError } from './client-errors';
export type { CompensationStep, PendingApproval, RunOutcome, RunStatusView } from '../workflows/run-types';
