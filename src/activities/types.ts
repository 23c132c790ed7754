import type { AuditEvent } from '../governance';
import type { MessageRow } from '../store/types';
import type { PendingApproval, PreparedRun, ProposedCall, ScriptTurn } from '../workflows/types';

// Activity inputs and results are small: references, digests and the audit events since the
// last activity (they ride along and are appended first, so no activity exists just to audit).

export interface PrepareRunInput {
  runId: string;
  agent: string;
  /** False when the run brings its own policy: then only the agent is looked up. */
  loadPolicy: boolean;
}

/** The agent, and its policy unless the run brought one. */
export type PreparedAgent = Omit<PreparedRun, 'policy' | 'policySource'> & Partial<Pick<PreparedRun, 'policy' | 'policySource'>>;

export interface CallModelInput {
  runId: string;
  agent: string;
  step: number;
  /** The model reads messages `[0, upTo)`; its answer is stored at `upTo`. */
  upTo: number;
  append: MessageRow[];
  audit: AuditEvent[];
  /**
   * For a run that brings its own script: the turn that answers this call (null once the script
   * has ended). Only this turn travels, so a long scripted run's history stays flat.
   */
  scriptTurn?: ScriptTurn | null;
}

export interface CallModelResult {
  calls: ProposedCall[];
  text: string;
  usage: { inputTokens: number; outputTokens: number };
}

export interface ToolActivityInput {
  runId: string;
  agent: string;
  requester: string;
  callId: string;
  args: Record<string, unknown>;
  idempotencyKey: string;
  /** Where the result is stored in the conversation. */
  resultSeq: number;
  audit: AuditEvent[];
}

export interface ToolActivityResult {
  /** At most a couple of hundred characters: the full result is in the run store. */
  summary: string;
  attempt: number;
}

export interface CompensateInput extends ToolActivityInput {
  tool: string;
}

export interface RecordRunInput {
  runId: string;
  append: MessageRow[];
  audit: AuditEvent[];
}

/** A request to tell people in Slack that an approval waits (redacted arguments only). */
export interface NotifyApprovalInput {
  channel: string;
  agent: string;
  approval: Pick<PendingApproval, 'approvalId' | 'runId' | 'tool' | 'args' | 'ruleId' | 'reason' | 'requester' | 'approvers' | 'quorum' | 'expiresAt'>;
}

/** The worker's own activities. Tools are activities too, registered under their own names. */
export interface CoreActivities {
  /** Registered only on workers configured for Slack (`PreparedRun.notifications.slack`). */
  notifyApproval(input: NotifyApprovalInput): Promise<{ channel: string; ts: string }>;
  prepareRun(input: PrepareRunInput): Promise<PreparedAgent>;
  callModel(input: CallModelInput): Promise<CallModelResult>;
  compensateCall(input: CompensateInput): Promise<ToolActivityResult>;
  recordRun(input: RecordRunInput): Promise<void>;
}

export type ToolActivity = (input: ToolActivityInput) => Promise<ToolActivityResult>;

/** Error types the workflow never retries. */
export const NON_RETRYABLE_ERRORS = ['SlackNotifyError', 'ToolError', 'ToolInputError', 'ModelConfigError', 'DefinitionError', 'PolicyError', 'ModelCallError'] as const;
