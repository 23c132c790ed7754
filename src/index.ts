/**
 * Warden's public surface: define agents and tools, run workers, start and steer runs.
 * Workflow code lives in `src/workflows` and is loaded by the worker, not imported from here.
 */
export { defineTool, defineAgent, ToolError, DefinitionError, loadAgents, loadPolicies, AgentRegistry } from './agents';
export type { Tool, AnyTool, ToolOptions, ToolContext, ToolRisk, Agent, AgentOptions, ModelSpec } from './agents';
export { defineMcpTools } from './agents';
export type { McpTools, McpToolsOptions, McpServer, McpStdioServer, McpHttpServer } from './agents';
export { WardenClient } from './client';
export type { StartRunOptions, RunSummary, StartSigner, AuditTrailCheck, RunFilter, RunApprovals, PendingApprovalsListing } from './client';
export { createWardenWorker, connectWorker } from './worker';
export type { WardenWorkerOptions } from './worker';
export { createSqliteStore, defaultStorePath, createPostgresStore, openRunStore, redactStoreLocation } from './store';
export type { RunStore, MessageRow, PostgresStoreOptions } from './store';
export { TASK_QUEUE, LOCAL_TEMPORAL, runIdFor, temporalSettingsFromEnv } from './config';
export type { TemporalSettings, Environment } from './config';
export { WardenError } from './errors';
export { parsePolicy, parsePolicyText, CompiledPolicy, PolicyError, policyVersion, verifyAuditChain, signDecision, verifySignedDecision, parseKeyring, normalizeIdentity } from './governance';
export type { Policy, Decision, AuditEvent, DecisionClaims, SignedDecision, Keyring, KeyGrant } from './governance';
export { DecisionSigner, ensureDevKeys, loadSigningKey, createSigningKey, loadKeyring, watchKeyring } from './approvals/keys';
export type { RunOutcome, RunStatusView, PendingApproval, ScriptTurn, StartRunInput, DelegatedBy, DelegationView } from './workflows/types';
export { approveSignal, rejectSignal, pauseSignal, resumeSignal, rollbackSignal, applyPolicySignal, approveUpdate, rejectUpdate, statusQuery, pendingApprovalsQuery, auditTrailQuery, rollbackPlanQuery } from './workflows/messages';
export { EncryptionCodec, loadPayloadKeys, createPayloadKeyFile, createCodecHandler } from './codec';
export type { PayloadKeys, CodecEndpointOptions } from './codec';
export type { DecisionReply } from './workflows/messages';
export { createTelemetry, telemetryFromEnv, TelemetryError, traceContextMixin, WORKFLOW_TELEMETRY_MODULES } from './telemetry';
export type { TelemetryOptions, WardenTelemetry } from './telemetry';
