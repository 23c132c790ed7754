import { z } from 'zod';
import { DURATION_PATTERN } from './duration';
import { entryCovered, TOOL_NAME, TOOL_PREFIX } from './policy-tools';

const duration = z.string().regex(DURATION_PATTERN, 'must be a duration such as 30s, 10m, 24h or 7d');
const toolName = z
  .string()
  .refine((name) => TOOL_NAME.test(name) || TOOL_PREFIX.test(name), 'must be a tool name (letters, digits, _ and -; an MCP tool as mcp:<server>/<tool>, a delegate agent as agent:<name>) or a prefix ending in * (mcp:<server>/*, agent:*)');
const principal = z
  .string()
  .regex(/^(user|group):[^\s]+$/, 'must be "user:<id>" or "group:<name>"');

/** Retry settings for a tool's activity; the same fields as Temporal's RetryPolicy. */
export const retrySchema = z.strictObject({
  maximumAttempts: z.int().min(1).optional(),
  initialInterval: duration.optional(),
  backoffCoefficient: z.number().min(1).optional(),
  maximumInterval: duration.optional(),
  nonRetryableErrorTypes: z.array(z.string()).optional(),
});

export const toolPolicySchema = z.strictObject({
  /** Most calls of this tool in one run. */
  maxCalls: z.int().min(0).optional(),
  retry: retrySchema.optional(),
  /** Start-to-close timeout of one attempt. */
  timeout: duration.optional(),
  /** How long a worker running the tool may go silent before the attempt is retried elsewhere (default 10s). */
  heartbeatTimeout: duration.optional(),
  /**
   * Deny every call of this tool unless the run's requester was verified by a signed start.
   * Anyone with a Temporal client can start a run naming any requester, so a high-risk tool
   * should not trust an unverified name.
   */
  requireVerifiedRequester: z.boolean().default(false),
});

// A tool listed with an empty entry (`lookup_order:`) is null in YAML; it gets the same defaults as `{}`.
const TOOL_POLICY_DEFAULTS = toolPolicySchema.parse({});

export const escalationSchema = z.strictObject({
  approvers: z.array(principal).min(1),
  timeout: duration,
});

export const approvalRequirementSchema = z.strictObject({
  approvers: z.array(principal).min(1),
  quorum: z.int().min(1).default(1),
  timeout: duration.default('24h'),
  escalation: escalationSchema.optional(),
  notify: z.strictObject({ slack: z.strictObject({ channel: z.string().min(1) }).optional() }).optional(),
});

export const ruleSchema = z
  .strictObject({
    id: z.string().regex(/^[a-zA-Z0-9_.:-]+$/, 'must be an id (letters, digits, _ . : -)'),
    /** Tools the rule applies to; absent means every tool. */
    tools: z.array(toolName).min(1).optional(),
    /** CEL condition over `args`, `agent`, `run` and `tool`; absent means always. */
    when: z.string().min(1).optional(),
    decision: z.enum(['allow', 'deny', 'require_approval']),
    reason: z.string().min(1).optional(),
    approval: approvalRequirementSchema.optional(),
  })
  .superRefine((rule, ctx) => {
    if (rule.decision === 'require_approval' && !rule.approval) {
      ctx.addIssue({ code: 'custom', path: ['approval'], message: 'require_approval needs an approval block (approvers, timeout)' });
    }
    if (rule.decision !== 'require_approval' && rule.approval) {
      ctx.addIssue({ code: 'custom', path: ['approval'], message: `an approval block only goes with decision require_approval, not ${rule.decision}` });
    }
  });

export const budgetsSchema = z.strictObject({
  maxSteps: z.int().min(1).optional(),
  maxToolCalls: z.int().min(0).optional(),
  maxInputTokens: z.int().min(1).optional(),
  maxOutputTokens: z.int().min(1).optional(),
  maxCostUsd: z.number().positive().optional(),
  maxWallTime: duration.optional(),
});

export const priceSchema = z.strictObject({
  inputPerMTok: z.number().min(0),
  outputPerMTok: z.number().min(0),
});

export const loopSchema = z.strictObject({
  /** How many identical calls (same tool, same canonical arguments) trip the breaker. */
  maxRepeats: z.int().min(2).default(3),
  /** Among how many of the most recent calls. */
  window: z.int().min(2).default(10),
  /** What a trip does: end the run, refuse that tool from then on, or pause the run for a human. */
  action: z.enum(['fail_run', 'stop_tool', 'pause']).default('fail_run'),
});

/** Whether `zone` is an IANA time zone this runtime knows (`UTC`, `Europe/Berlin`). */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** What a quota may be scoped by: each named dimension gets its own counter (`[tenant]`: one counter per tenant). */
export const QUOTA_SCOPES = ['agent', 'tenant', 'requester', 'tool'] as const;

/** What a quota counts, as policies write it. */
export const QUOTA_COUNTS = ['runs', 'calls', 'costUsd', 'tokens'] as const;

/** `args.amount`, `args.refund.total`: a number among a call's arguments. */
export const QUOTA_SUM_PATH = /^args(\.[A-Za-z_][A-Za-z0-9_]*)+$/;

/**
 * A quota's window: a rolling duration (`{ rolling: 24h }`), or a calendar hour, day or month in an
 * IANA time zone (`{ calendar: day, timeZone: Europe/Berlin }`; default UTC).
 */
export const quotaWindowSchema = z
  .strictObject(
    {
      rolling: duration.optional(),
      calendar: z.enum(['hour', 'day', 'month']).optional(),
      timeZone: z.string().refine(isTimeZone, 'must be an IANA time zone such as UTC or Europe/Berlin').optional(),
    },
    { error: 'must be { rolling: <duration> } or { calendar: hour | day | month, timeZone: <IANA zone> }' },
  )
  .superRefine((w, ctx) => {
    if ((w.rolling === undefined) === (w.calendar === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'must be { rolling: <duration> } or { calendar: hour | day | month, timeZone: <IANA zone> }, exactly one of the two' });
    }
    if (w.rolling !== undefined && w.timeZone !== undefined) ctx.addIssue({ code: 'custom', path: ['timeZone'], message: 'a rolling window has no time zone (only calendar windows do)' });
  });

export const quotaThresholdSchema = z.strictObject({
  /** Acts when the quota's total, with this call counted, would be above this. */
  above: z.number({ error: 'must be a number (the total above which the action applies)' }).min(0),
  action: z.enum(['warn', 'require_approval', 'deny']),
  /** What the model (and the audit trail, and approvers) read. */
  reason: z.string({ error: 'must be a reason the model can read' }).min(1, 'must be a reason the model can read'),
  approval: approvalRequirementSchema.optional(),
  /** Tell people when a booking reaches this threshold (a worker configured for Slack posts to the channel). */
  notify: z.strictObject({ slack: z.strictObject({ channel: z.string().min(1) }) }).optional(),
});

const countName = (count: string | { sum: string }): string => (typeof count === 'string' ? count : `a sum over ${count.sum}`);

/** One quota: what it counts, per what, over which window, and what happens as the total grows. */
export const quotaSchema = z
  .strictObject({
    id: z.string({ error: 'must be an id (lower-case letters, digits, _ . -)' }).regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'must be an id (lower-case letters, digits, _ . -)'),
    description: z.string().optional(),
    count: z.union([z.enum(QUOTA_COUNTS), z.strictObject({ sum: z.string().regex(QUOTA_SUM_PATH, 'must be a path into the arguments, such as args.amount') })], {
      error: 'must be runs, calls, costUsd, tokens or { sum: args.<field> }',
    }),
    /** The tools whose calls count (`calls`, `sum`); absent: every tool. */
    tools: z.array(toolName).min(1).optional(),
    /** Fleet file only: the agents whose runs count; absent: every agent. */
    agents: z.array(z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be an agent name')).min(1).optional(),
    scope: z.array(z.enum(QUOTA_SCOPES)).default([]),
    window: quotaWindowSchema,
    thresholds: z.array(quotaThresholdSchema).min(1, 'a quota needs at least one threshold (warn, require_approval or deny)'),
  })
  .superRefine((q, ctx) => {
    const countsCalls = q.count === 'calls' || typeof q.count === 'object';
    if (q.tools && !countsCalls) ctx.addIssue({ code: 'custom', path: ['tools'], message: `tools applies only to quotas that count calls or a sum over arguments, not ${countName(q.count)}` });
    if (q.scope.includes('tool') && !countsCalls) ctx.addIssue({ code: 'custom', path: ['scope'], message: `scope "tool" applies only to quotas that count calls or a sum over arguments, not ${countName(q.count)}` });
    if (new Set(q.scope).size !== q.scope.length) ctx.addIssue({ code: 'custom', path: ['scope'], message: 'names a dimension twice' });
    q.thresholds.forEach((t, i) => {
      if (t.action === 'require_approval' && !t.approval) ctx.addIssue({ code: 'custom', path: ['thresholds', i, 'approval'], message: 'require_approval needs an approval block (approvers, timeout)' });
      if (t.action !== 'require_approval' && t.approval) ctx.addIssue({ code: 'custom', path: ['thresholds', i, 'approval'], message: `an approval block only goes with action require_approval, not ${t.action}` });
      if (t.action === 'require_approval' && (q.count === 'runs' || q.count === 'costUsd' || q.count === 'tokens')) {
        ctx.addIssue({ code: 'custom', path: ['thresholds', i, 'action'], message: `require_approval applies to quotas that count calls or a sum over arguments; a ${q.count} quota can warn or deny` });
      }
    });
    const deny = q.thresholds.filter((t) => t.action === 'deny');
    if (deny.length > 1) ctx.addIssue({ code: 'custom', path: ['thresholds'], message: 'at most one deny threshold (the hard limit)' });
  });

/** A rate limit on one tool: at most `rate` calls (`10/s`, `600/m`, `1000/h`); a call over it waits, durably, and never fails. */
export const rateLimitSchema = z.strictObject({
  tool: toolName,
  rate: z.string({ error: 'must be calls per second, minute or hour, such as 10/s or 600/m' }).regex(/^[1-9]\d{0,8}\/(s|m|h)$/, 'must be calls per second, minute or hour, such as 10/s or 600/m'),
  /** Calls that may go at once before the rate applies (default 1: evenly spaced). */
  burst: z.int().min(1).default(1),
  scope: z.array(z.enum(['agent', 'tenant', 'requester'])).default([]),
});

/** The fleet file (`policies/fleet.yaml`): quotas and rate limits across every agent a worker serves. */
export const fleetPolicySchema = z.strictObject({
  description: z.string().optional(),
  quotas: z.array(quotaSchema).default([]),
  rateLimits: z.array(rateLimitSchema).default([]),
}).superRefine((fleet, ctx) => checkQuotaIds(fleet.quotas, ctx, true));

/** Fields that policies used to carry and that are now worker settings. */
export const MOVED_TO_WORKER = ['allowUnsignedDecisions', 'trustedKeys'] as const;
export type MovedToWorkerField = (typeof MOVED_TO_WORKER)[number];

/** A field that only fails: present at all (even `false` or `{}`), it is an error that says where the setting went. */
function movedToWorker(field: MovedToWorkerField, where: string) {
  // The issue's path names the field; the message says where the setting went.
  return z.never({ error: `no longer a policy setting: ${where}; remove ${field} from the policy` }).optional();
}

/** A policy file: what one agent may do, with which limits. */
export const policySchema = z
  .strictObject({
    agent: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be an agent name (lower-case letters, digits and -)'),
    description: z.string().optional(),
    /** The tools this agent may call at all, with per-tool overrides. Any other tool is denied. */
    tools: z.record(toolName, toolPolicySchema.nullable().transform((v) => v ?? { ...TOOL_POLICY_DEFAULTS })),
    /** Ordered rules: the first whose tools and condition match decides. No match is a denial. */
    rules: z.array(ruleSchema).default([]),
    budgets: budgetsSchema.default({}),
    /** USD per million tokens, keyed by model id (e.g. `openai:gpt-4o-mini`, `scripted`). */
    pricing: z.record(z.string(), priceSchema).default({}),
    loop: loopSchema.optional(),
    /** Quotas on this agent's runs across every run and worker (docs/quotas.md). */
    quotas: z.array(quotaSchema).optional(),
    /** Rate limits on this agent's tools, across every run and worker. */
    rateLimits: z.array(rateLimitSchema).optional(),
    /**
     * The run's audit trail: `anchorEveryTurns` is how often a running run writes its chain's head
     * to Temporal (its memo), where the run store cannot rewrite it (default 10; 1 is every turn).
     * A run anchors as well before it waits for people or for a resume, and as it continues or ends.
     */
    audit: z
      .strictObject(
        { anchorEveryTurns: z.int({ error: 'must be a whole number of turns' }).min(1, 'must be at least 1 (every turn)').max(1000, 'must be at most 1000').optional() },
        { error: 'must be { anchorEveryTurns: <turns between anchors of the audit head> }' },
      )
      .optional(),
    /** After a tool has failed all its retries: tell the model and go on, or end the run as failed. */
    onToolFailure: z.enum(['continue', 'fail_run']).default('continue'),
    /** When the run fails: leave it, or run the compensations of what it did. */
    onRunFailure: z.enum(['none', 'rollback']).default('none'),
    /**
     * A candidate policy the worker decides every call with as well: only this policy acts, each
     * disagreement is audited (`policy_shadow_diff`). `file` is relative to this policy's file.
     */
    shadow: z
      .strictObject(
        { file: z.string({ error: 'must be the path of the candidate policy file' }).min(1, 'must be the path of the candidate policy file') },
        { error: 'must be { file: <path of the candidate policy file, relative to this one> }' },
      )
      .optional(),
    // Who may decide is the worker operator's call, never a policy's: a policy that could add keys or
    // accept unsigned decisions would let whoever applies it widen who approves.
    allowUnsignedDecisions: movedToWorker(
      'allowUnsignedDecisions',
      "whether unsigned approve/reject signals count is now a worker setting (the worker's allowUnsignedDecisions option, for development only)",
    ),
    trustedKeys: movedToWorker('trustedKeys', 'trusted keys are now a worker setting (the keyring file WARDEN_TRUSTED_KEYS names)'),
  })
  .superRefine((policy, ctx) => {
    checkQuotaIds(policy.quotas ?? [], ctx, false);
    const seen = new Set<string>();
    policy.rules.forEach((rule, i) => {
      if (seen.has(rule.id)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `duplicate rule id "${rule.id}"` });
      seen.add(rule.id);
      rule.tools?.forEach((tool, j) => {
        if (!entryCovered(Object.keys(policy.tools), tool)) {
          ctx.addIssue({ code: 'custom', path: ['rules', i, 'tools', j], message: `tool "${tool}" is not listed under tools` });
        }
      });
    });
  });

/** Quota ids are unique in a file; `agents` belongs to the fleet file, whose quotas span agents. */
export function checkQuotaIds(quotas: readonly { id: string; agents?: string[] | undefined }[], ctx: z.RefinementCtx, fleet: boolean): void {
  const ids = new Set<string>();
  quotas.forEach((q, i) => {
    if (ids.has(q.id)) ctx.addIssue({ code: 'custom', path: ['quotas', i, 'id'], message: `duplicate quota id "${q.id}"` });
    ids.add(q.id);
    if (!fleet && q.agents) ctx.addIssue({ code: 'custom', path: ['quotas', i, 'agents'], message: "agents belongs in the fleet file (policies/fleet.yaml); an agent's own quotas count that agent" });
  });
}

/** A validated policy, as plain JSON (it travels in workflow inputs and signals). */
export type Policy = Omit<z.output<typeof policySchema>, MovedToWorkerField>;
export type PolicyInput = Omit<z.input<typeof policySchema>, MovedToWorkerField>;
export type Rule = Policy['rules'][number];
export type ApprovalRequirement = z.output<typeof approvalRequirementSchema>;
export type RetrySettings = z.output<typeof retrySchema>;
export type ToolPolicy = z.output<typeof toolPolicySchema>;
export type Budgets = z.output<typeof budgetsSchema>;
export type LoopSettings = z.output<typeof loopSchema>;
export type Price = z.output<typeof priceSchema>;
export type QuotaDefinition = z.output<typeof quotaSchema>;
export type QuotaThreshold = z.output<typeof quotaThresholdSchema>;
export type QuotaWindow = z.output<typeof quotaWindowSchema>;
export type QuotaScope = (typeof QUOTA_SCOPES)[number];
export type RateLimitDefinition = z.output<typeof rateLimitSchema>;
export type FleetPolicy = z.output<typeof fleetPolicySchema>;
