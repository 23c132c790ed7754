/**
 * Warden's package root: what you write agents, tools and policies with, the errors Warden throws,
 * and the types its runs report. Loading it starts nothing and loads no Temporal client or worker:
 * runs are started and steered through `warden/client`, and run by `warden/worker`.
 */
export { defineTool, defineAgent, defineMcpTools, ToolError, DefinitionError } from './agents/index';
export type { Tool, AnyTool, ToolOptions, ToolContext, ToolRisk, Agent, AgentOptions, ModelSpec, McpTools, McpToolsOptions, McpServer, McpStdioServer, McpHttpServer } from './agents/index';
export { parsePolicy, parsePolicyText, CompiledPolicy, PolicyError, policyVersion } from './governance/index';
export type { Policy, Decision, AuditEvent, DecisionClaims, SignedDecision, Keyring, KeyGrant, OperatorAction, OperatorRole } from './governance/index';
export { WardenError } from './errors';
export { KeyringError } from './governance/signing/keyring';
export { StoreError } from './store/rows';
export { PayloadCodecError, PayloadKeyError } from './codec/codec-errors';
export { RunInputError, UntrustedRunError } from './client/client-errors';
export type { RunOutcome, RunStatusView, PendingApproval, ScriptTurn, StartRunInput, DelegatedBy, DelegationView, CompensationStep, RunStatus, ReportedStatus } from './workflows/run-types';
export type { ApproveInput, RejectInput, OperatorInput, ApplyPolicyInput, DecisionReply, AuditTrailView } from './workflows/messages';
