import type { Attributes, Counter, Histogram, Meter } from '@opentelemetry/api';
import { GEN_AI, WARDEN, type GovernanceFact } from './conventions';

// Bucket boundaries the GenAI semantic conventions advise for token counts and durations.
const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
const DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
// People take seconds to days.
const WAIT_BUCKETS = [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 3 * 24 * 3600, 7 * 24 * 3600];

/** What a model call reports. */
export interface ModelCallFacts {
  agent: string;
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  durationS: number;
  error?: string;
}

/**
 * Warden's instruments: token usage and operation duration as the GenAI conventions name them,
 * and cost, policy decisions, approval waits and budget exhaustions as `warden.*`.
 */
export class WardenMetrics {
  private readonly tokens: Histogram;
  private readonly duration: Histogram;
  private readonly cost: Counter;
  private readonly decisions: Counter;
  private readonly approvalWait: Histogram;
  private readonly budgets: Counter;
  private readonly quotaUsed: Counter;
  private readonly quotaExceeded: Counter;

  constructor(meter: Meter) {
    this.tokens = meter.createHistogram('gen_ai.client.token.usage', { unit: '{token}', description: 'Tokens used per model call, by type (input, output)', advice: { explicitBucketBoundaries: TOKEN_BUCKETS } });
    this.duration = meter.createHistogram('gen_ai.client.operation.duration', { unit: 's', description: 'Duration of model calls', advice: { explicitBucketBoundaries: DURATION_BUCKETS } });
    this.cost = meter.createCounter('warden.gen_ai.cost', { unit: '{USD}', description: "Model cost in US dollars, priced by the run's policy" });
    this.decisions = meter.createCounter('warden.policy.decisions', { unit: '{decision}', description: 'Policy decisions on proposed tool calls, by outcome and rule' });
    this.approvalWait = meter.createHistogram('warden.approval.wait', { unit: 's', description: 'Time from an approval request to its end, by outcome', advice: { explicitBucketBoundaries: WAIT_BUCKETS } });
    this.budgets = meter.createCounter('warden.budget.exhaustions', { unit: '{exhaustion}', description: 'Runs stopped by a budget limit or the loop breaker' });
    this.quotaUsed = meter.createCounter('warden.quota.used', { unit: '{amount}', description: "Amounts booked against fleet quotas (USD, tokens, calls, runs or an argument's sum, as the quota counts), by quota" });
    this.quotaExceeded = meter.createCounter('warden.quota.exceeded', { unit: '{threshold}', description: 'Quota thresholds reached, by quota and action (warn, require_approval, deny)' });
  }

  modelCall(facts: ModelCallFacts): void {
    const base: Attributes = { [GEN_AI.operationName]: 'chat', [GEN_AI.providerName]: facts.provider, [GEN_AI.requestModel]: facts.model, [GEN_AI.agentName]: facts.agent };
    this.duration.record(facts.durationS, facts.error ? { ...base, [WARDEN.errorType]: facts.error } : base);
    if (facts.error) return;
    this.tokens.record(facts.inputTokens, { ...base, [GEN_AI.tokenType]: 'input' });
    this.tokens.record(facts.outputTokens, { ...base, [GEN_AI.tokenType]: 'output' });
    this.cost.add(facts.costUsd, base);
  }

  /** An amount booked against a quota (a call's reservation, a model call's spend, a run started). */
  quotaBooked(quota: string, count: string, amount: number): void {
    this.quotaUsed.add(amount, { [WARDEN.quotaName]: quota, [WARDEN.quotaCount]: count });
  }

  /** A quota threshold reached: a warning, a call sent for approval, a call or a model call refused. */
  quotaReached(quota: string, action: string): void {
    this.quotaExceeded.add(1, { [WARDEN.quotaName]: quota, [WARDEN.quotaAction]: action });
  }

  /** A governance fact reported by a run (through the `wardenTelemetry` sink). */
  governance(fact: GovernanceFact): void {
    const agent = { [GEN_AI.agentName]: fact.agent };
    switch (fact.kind) {
      case 'decision':
        // An unknown tool's name is whatever the model made up: not an attribute (unbounded cardinality).
        this.decisions.add(1, { ...agent, [GEN_AI.toolName]: fact.ruleId === 'default:unknown-tool' ? '(unknown)' : fact.tool, [WARDEN.decision]: fact.decision, [WARDEN.ruleId]: fact.ruleId });
        return;
      case 'approval':
        this.approvalWait.record(fact.waitMs / 1000, { ...agent, [GEN_AI.toolName]: fact.tool, [WARDEN.approvalOutcome]: fact.outcome });
        return;
      case 'budget':
        this.budgets.add(1, { ...agent, [WARDEN.budgetLimit]: fact.limit });
        return;
    }
  }
}
