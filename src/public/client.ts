/**
 * `warden/client`: start runs and steer them — approve, reject, pause, resume, roll back, read
 * status and audit trails — and sign what channels vouch for (run starts, decisions, operator
 * commands). Import it in services, the CLI, inboxes and chat bots; it loads no worker.
 */
export { WardenClient, OperatorCommandError } from '../client/index';
export type { StartRunOptions, RunSummary, StartSigner, OperatorSigner, OperatorCommand, AuditTrailCheck, RunFilter, RunApprovals, PendingApprovalsListing } from '../client/index';
export { DecisionSigner, SigningKeyError, loadSigningKey, createSigningKey, loadKeyring, watchKeyring, ensureDevKeys } from '../approvals/signing-keys';
export { approveSignal, rejectSignal, pauseSignal, resumeSignal, rollbackSignal, applyPolicySignal, approveUpdate, rejectUpdate, statusQuery, pendingApprovalsQuery, auditTrailQuery, rollbackPlanQuery } from '../workflows/messages';
export { verifyAuditChain } from '../governance/signing/audit-chain';
export { signDecision, verifySignedDecision, generateSigningKey } from '../governance/signing/signed-decision';
export { normalizeIdentity } from '../governance/signing/identity-folding';
export { EncryptionCodec, loadPayloadKeys, createPayloadKeyFile } from '../codec/index';
export type { PayloadKeys } from '../codec/index';
export { TASK_QUEUE, AGENT_RUN_WORKFLOW, LOCAL_TEMPORAL, runIdFor, temporalSettingsFromEnv } from '../config';
export type { TemporalSettings, Environment } from '../config';
export * from '../index';
