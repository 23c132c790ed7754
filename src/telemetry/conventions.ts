/**
 * Attribute and span names: the OpenTelemetry GenAI semantic conventions where they have one,
 * `warden.*` for what only a governed runtime knows. Plain constants with no imports, so workflow
 * code (the sandbox) and worker code share them.
 */

export const GEN_AI = {
  operationName: 'gen_ai.operation.name',
  providerName: 'gen_ai.provider.name',
  requestModel: 'gen_ai.request.model',
  inputTokens: 'gen_ai.usage.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
  tokenType: 'gen_ai.token.type',
  agentName: 'gen_ai.agent.name',
  conversationId: 'gen_ai.conversation.id',
  toolName: 'gen_ai.tool.name',
  toolCallId: 'gen_ai.tool.call.id',
  toolType: 'gen_ai.tool.type',
} as const;

export const WARDEN = {
  runId: 'warden.run.id',
  outcome: 'warden.run.outcome',
  steps: 'warden.run.steps',
  toolCalls: 'warden.run.tool_calls',
  continuedAsNew: 'warden.run.continued_as_new',
  step: 'warden.step',
  proposedCalls: 'warden.model.proposed_calls',
  costUsd: 'warden.cost.usd',
  decision: 'warden.policy.decision',
  ruleId: 'warden.policy.rule_id',
  policyVersion: 'warden.policy.version',
  approvalId: 'warden.approval.id',
  approvalOutcome: 'warden.approval.outcome',
  approvers: 'warden.approval.approvers',
  decidedBy: 'warden.approval.decided_by',
  approvalWaitMs: 'warden.approval.wait_ms',
  budgetLimit: 'warden.budget.limit',
  quotaName: 'warden.quota.name',
  quotaAction: 'warden.quota.action',
  quotaCount: 'warden.quota.count',
  attempt: 'warden.tool.attempt',
  errorType: 'error.type',
} as const;

/** The instrumentation scope of the spans and metrics Warden makes on the worker. */
export const WORKER_TELEMETRY_SCOPE = 'warden';

/** The sink workflow code reports governance facts through (decisions, approvals, budgets) for metrics. */
export const TELEMETRY_SINK = 'wardenTelemetry';

/** What a run tells its worker's metrics: one fact per call, never arguments. */
export type GovernanceFact =
  | { kind: 'decision'; agent: string; tool: string; decision: string; ruleId: string }
  | { kind: 'approval'; agent: string; tool: string; outcome: 'approved' | 'rejected' | 'expired' | 'withdrawn'; waitMs: number }
  | { kind: 'budget'; agent: string; limit: string };

/**
 * How a tool call was governed, handed to its tool activity so its `execute_tool` span can say
 * so. Computed by the workflow from its own state (never from a message), and only when the
 * worker traces.
 */
export interface CallGovernance {
  decision: string;
  ruleId: string;
  policyVersion: string;
  approval?: {
    approvalId: string;
    /** Everyone whose approval counted, in order. */
    approvers: string[];
    decidedBy: string;
    /** Workflow time from the request to the decision. */
    waitMs: number;
  };
}
