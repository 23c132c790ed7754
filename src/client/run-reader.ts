import { WorkflowNotFoundError, isGrpcServiceError, type Client, type WorkflowHandle } from '@temporalio/client';
import { encodeToPayloads } from '@temporalio/common/lib/internal-non-workflow/codec-helpers';
import { optionalTsToDate } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import type { AuditHead } from '../governance/signing/audit-chain';
import { AGENT_RUN_WORKFLOW } from '../config';
import { pendingApprovalsQuery } from '../workflows/messages';
import { AUDIT_ANCHOR_MEMO } from '../workflows/audit-log';
import { APPROVALS_MEMO, readApprovalsMemo } from '../workflows/approvals-memo';
import { UntrustedRunError } from './client-errors';
import { auditHeadOf, foreignApprovals, readRunMemoField, readRunPayload, type RunWords } from './run-memo';
import type { agentRun } from '../workflows/agent-run';
import type { PendingApproval } from '../workflows/run-types';

/** An execution as Temporal describes or lists it, memo and search attributes undecoded. */
export type RawExecution = temporal.api.workflow.v1.IWorkflowExecutionInfo;

/** gRPC's NOT_FOUND status code, as a raw describe of an unknown workflow id fails. */
const GRPC_NOT_FOUND = 5;

const { WorkflowExecutionStatus } = temporal.api.enums.v1;

/**
 * Reads a run as Temporal holds it and takes only the run's own words (`run-memo`): the raw
 * description, its memo fields one by one, its answer to the `pendingApprovals` query. What
 * `WardenClient`, its listings and its audit verification read a run with.
 */
export class RunReader {
  constructor(readonly client: Client) {}

  handle(runId: string): WorkflowHandle<typeof agentRun> {
    return this.client.workflow.getHandle<typeof agentRun>(runId);
  }

  /** The audit head the execution's memo anchors, if the run wrote it (`readRunMemoField`); null otherwise. */
  async anchorIn(runId: string, info: RawExecution): Promise<AuditHead | null> {
    const field = await this.runMemoField(runId, info, AUDIT_ANCHOR_MEMO).catch(() => null);
    return field?.ok ? auditHeadOf(field.value) : null;
  }

  runMemoField(runId: string, info: RawExecution, field: string): Promise<RunWords> {
    return readRunMemoField(this.client.options.loadedDataConverter, this.client.options.namespace, runId, info.memo?.fields, field);
  }

  /**
   * The latest execution under `runId` as Temporal holds it, memo undecoded: one field under a key
   * this client lacks must not hide the rest, and a field in clear must be seen to be in clear.
   */
  async describeRaw(runId: string): Promise<RawExecution> {
    try {
      const { workflowExecutionInfo } = await this.client.workflowService.describeWorkflowExecution({ namespace: this.client.options.namespace, execution: { workflowId: runId } });
      return workflowExecutionInfo ?? {};
    } catch (err) {
      if (isGrpcServiceError(err) && (err.code as number) === GRPC_NOT_FOUND) throw new WorkflowNotFoundError(err.details || `no workflow ${runId}`, runId, undefined);
      throw err;
    }
  }

  /** A run's own pending approvals, as `WardenClient.pendingApprovals` reads and checks them. */
  async pendingApprovals(runId: string): Promise<PendingApproval[]> {
    const info = await this.describeRaw(runId);
    const type = info.type?.name ?? '';
    if (type !== AGENT_RUN_WORKFLOW) {
      throw new UntrustedRunError(`the latest execution under run id ${runId} is a "${type}" workflow, not an ${AGENT_RUN_WORKFLOW}: it holds no Warden approvals`, `not an ${AGENT_RUN_WORKFLOW}`);
    }
    const field = await this.runMemoField(runId, info, APPROVALS_MEMO);
    if (!field.ok) throw new UntrustedRunError(field.detail, field.reason);
    const fromMemo = readApprovalsMemo(field.value);
    if (fromMemo && info.status !== WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING) return [];
    let approvals = fromMemo;
    if (!approvals) {
      const answer = await this.askPendingApprovals(runId);
      if (!answer.ok) throw new UntrustedRunError(answer.detail, answer.reason);
      approvals = answer.approvals;
    }
    const foreign = foreignApprovals(approvals, runId, optionalTsToDate(info.startTime) ?? undefined);
    if (foreign) throw new UntrustedRunError(foreign.detail, foreign.reason);
    return approvals;
  }

  /**
   * The `pendingApprovals` query, its answer read as the run's own words (`readRunPayload`): a
   * forged run's own worker answers in clear. Raw, since the SDK's `query` decodes the answer
   * before anyone can see whether it was encrypted.
   */
  async askPendingApprovals(runId: string): Promise<{ ok: true; approvals: PendingApproval[] } | { ok: false; reason: string; detail: string }> {
    const converter = this.client.options.loadedDataConverter;
    const { namespace } = this.client.options;
    const { queryResult } = await this.client.workflowService.queryWorkflow({
      namespace,
      execution: { workflowId: runId },
      query: { queryType: pendingApprovalsQuery.name, queryArgs: { payloads: (await encodeToPayloads(converter)) ?? [] } },
    });
    const answer = await readRunPayload(converter, namespace, runId, queryResult?.payloads?.[0], { short: 'answer', long: `the answer to the ${pendingApprovalsQuery.name} query` });
    if (!answer.ok) return answer;
    return { ok: true, approvals: Array.isArray(answer.value) ? (answer.value as PendingApproval[]) : [] };
  }
}
