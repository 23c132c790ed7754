import { Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import type { AgentRegistry, ToolContext } from '../agents';
import type { RunStore } from '../store/run-store';
import type { AuditInput } from '../governance';
import type { ToolActivity, ToolActivityInput, ToolActivityResult } from './activity-types';
import { classify, nonRetryable } from './activity-errors';
import type { Grants } from './grants';
import { withHeartbeats } from './heartbeats';
import type { createQuotaActivities } from './quota-activities';

const SUMMARY_CHARS = 200;

function summarize(value: unknown): string {
  const text = value === undefined ? 'done' : typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > SUMMARY_CHARS ? `${text.slice(0, SUMMARY_CHARS - 1)}…` : text;
}

function toolResultRow(seq: number, callId: string, toolName: string, value: unknown) {
  return { seq, message: { role: 'tool', content: [{ type: 'tool-result', toolCallId: callId, toolName, output: { type: 'json', value: value ?? null } }] } };
}

/** What a tool (or its compensation) is handed besides its arguments: the call, the attempt, a logger, the cancel signal, a heartbeat. */
export function toolContext(input: ToolActivityInput, logger: Logger, beat?: (details?: unknown) => void): ToolContext {
  const ctx = Context.current();
  return {
    idempotencyKey: input.idempotencyKey,
    runId: input.runId,
    callId: input.callId,
    agent: input.agent,
    requester: input.requester,
    attempt: ctx.info.attempt,
    log: logger.child({ runId: input.runId, callId: input.callId, tool: ctx.info.activityType }),
    signal: ctx.cancellationSignal,
    heartbeat: beat ?? ((details?: unknown) => ctx.heartbeat(details)),
  };
}

export interface ToolActivityDeps {
  registry: AgentRegistry;
  store: RunStore;
  logger: Logger;
  grants: Grants;
  quotas: Pick<ReturnType<typeof createQuotaActivities>, 'confirmBooking' | 'waitForPace'>;
  /** Writes the events an input carries (links rebuilt) before anything else. */
  appendAudit: (runId: string, audit: AuditInput) => Promise<void>;
}

/**
 * One activity per tool, under the tool's name (the Temporal UI shows which tool ran). Each writes
 * the trail it was handed, runs only with the run's grant and the call's seal, on the quota
 * ledger's own booking and after its rate slot, then heartbeats the tool, stores its result and
 * commits what the call booked.
 */
export function createToolActivities(deps: ToolActivityDeps): Record<string, ToolActivity> {
  const { registry, store, logger, grants, quotas, appendAudit } = deps;
  const tools: Record<string, ToolActivity> = {};
  for (const [name, tool] of registry.tools()) {
    tools[name] = async (input: ToolActivityInput): Promise<ToolActivityResult> => {
      await appendAudit(input.runId, input.audit);
      await grants.check(name, name, input);
      if (tool.schemaDigest !== undefined && input.schemaDigest !== tool.schemaDigest) {
        // The run pinned the schema it started with; a server that changed since is not called with arguments governed under the old one.
        throw nonRetryable(
          'ToolError',
          `the input schema of ${name} changed since this run started (run: ${input.schemaDigest ?? 'none'}, this worker: ${tool.schemaDigest}): not called; a new run uses the new schema`,
        );
      }
      // A counted call runs only on the ledger's own booking; a rate-limited one starts no sooner than its slot by the clock of this start.
      if (input.booking) await quotas.confirmBooking(name, input, input.booking);
      else if (input.pace) await quotas.waitForPace(input.pace, `${input.runId}|${input.resultSeq}`);
      let value: unknown;
      try {
        // The workflow hands over exactly the arguments it governed (parsed once, in callModel): parsing
        // again could change them after the policy and the approver saw them.
        // Warden heartbeats for the tool (a killed worker is noticed in seconds, a cancel fires ctx.signal).
        value = await withHeartbeats((beat) => Promise.resolve(tool.run(input.args, toolContext(input, logger, beat))));
      } catch (err) {
        classify(err);
      }
      await store.appendMessages(input.runId, [toolResultRow(input.resultSeq, input.callId, tool.modelName ?? name, value)], 'replace');
      // The call ran: what it reserved against quotas counts for good (a retry after this commits nothing twice).
      if (input.quotaRef !== undefined) await store.settleQuota(input.runId, { ref: input.quotaRef, from: 'held', to: 'committed' });
      return { summary: summarize(value), attempt: Context.current().info.attempt };
    };
  }
  return tools;
}
