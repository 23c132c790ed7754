import { patched } from '@temporalio/workflow';
import type { CallModelResult, ModelQuotaInput, ReserveQuotaResult, ToolBooking } from '../../activities/activity-types';
import { hasQuotas, modelQuotas, rulesForCall, type QuotaHit, type QuotaSet } from '../../governance/workflow-safe';
import { quotaBook } from './activities';
import { QUOTAS } from './patches';
import { RunEnd } from './run-end';
import type { CallInFlight, RunState } from './run-state';

/** What an audit event says of a quota threshold reached. */
function hitFields(hit: QuotaHit): Record<string, unknown> {
  return { quota: hit.quota, counter: hit.counter, window: hit.window, action: hit.action, above: hit.above, used: hit.used, amount: hit.amount, reason: hit.reason };
}

/**
 * A run's part in fleet quotas (docs/quotas.md): its counted calls booked in the run store before
 * their tools run, its model spend checked and charged by the model activity, its reservations
 * settled as it ends. A run whose policy and fleet set no quota or rate limit does none of it, and
 * adds no command to its history (not even the patch marker).
 */
export class RunQuotas {
  /** Whether this execution books against quotas; set as it starts (QUOTAS is asked only by runs that have quotas). */
  on = false;

  constructor(private readonly run: RunState) {}

  begin(): void {
    this.on = hasQuotas(this.run.prepared.quotas) && patched(QUOTAS);
  }

  /** The quotas and rate limits a call of `tool` books against; null when none (or the run books nothing). */
  rulesFor(tool: string): QuotaSet | null {
    if (!this.on) return null;
    const rules = rulesForCall(this.run.prepared.quotas, tool);
    return rules.quotas.length > 0 || rules.rateLimits.length > 0 ? rules : null;
  }

  /** What the model activity needs to check and charge the run's model spend; nothing without quotas on it. */
  modelInput(): { quota?: ModelQuotaInput } {
    if (!this.on) return {};
    const quotas = modelQuotas(this.run.prepared.quotas);
    if (quotas.length === 0) return {};
    const prepared = this.run.prepared;
    return { quota: { tenant: prepared.tenant ?? null, requester: prepared.requester.id, quotas, price: prepared.policy.pricing[prepared.agent.modelId] ?? null } };
  }

  /** A model answer's quota news, audited: warnings as its spend was charged, or the stop that kept the call from being made (the run ends). */
  answered(answer: CallModelResult): void {
    for (const hit of answer.quota?.warnings ?? []) this.run.record('quota_warning', hitFields(hit));
    const stop = answer.quota?.stop;
    if (stop) {
      this.run.record('quota_exceeded', { ...hitFields(stop), on: 'model_call' });
      throw new RunEnd('budget_exhausted', stop.message);
    }
  }

  /** What a call books: made once for its booking activity and again for its tool (which books it again, see `confirmBooking`). */
  bookingOf(f: CallInFlight, rules: QuotaSet, approved: boolean): ToolBooking {
    return { ref: this.refOf(f), tenant: this.run.prepared.tenant ?? null, approved, quotas: rules.quotas, rateLimits: rules.rateLimits };
  }

  /** Books a call (after policy and any approval allowed it, before its tool runs); audits what it reached. */
  async reserve(f: CallInFlight, rules: QuotaSet, approved: boolean): Promise<ReserveQuotaResult> {
    const run = this.run;
    const result = await quotaBook.reserveQuota({ runId: run.runId, agent: run.input.agent, requester: run.prepared.requester.id, tool: f.call.name, args: f.call.args, ...this.bookingOf(f, rules, approved) });
    if (result.kind === 'booked') {
      for (const hit of result.warnings) run.record('quota_warning', { callId: f.call.id, tool: f.call.name, ...hitFields(hit) });
    } else {
      run.record('quota_exceeded', { callId: f.call.id, tool: f.call.name, ...hitFields(result.hit) });
    }
    return result;
  }

  /** The booking ref of a call: its seq, unique in the run. */
  refOf(f: CallInFlight): string {
    return `call:${f.seq}`;
  }

  /** A counted call that failed gives back what it held. */
  async release(ref: string): Promise<void> {
    await quotaBook.settleQuota({ runId: this.run.runId, ref, from: 'held', to: 'released' });
  }

  /** As the run ends (completed, failed, cancelled, rolled back): whatever it still holds goes back. */
  async settleRun(): Promise<void> {
    if (this.on) await quotaBook.settleQuota({ runId: this.run.runId, from: 'held', to: 'released' });
  }
}
